import { writeFile } from 'node:fs/promises'
import { connect } from 'node:http2'
import { join } from 'node:path'
import t from 'tap'
import Fastify from 'fastify'
import underPressure from '@fastify/under-pressure'
import { createTestPki } from 'mtls-pki'
import defaultExport, { fastifyMtls, loadServerTls } from '../src/index.js'
import { attempt, clientOf, startServer, tempDir } from './helpers.js'

const pki = await createTestPki()
const material = { cert: pki.server.chain, key: pki.server.key, ca: pki.ca }

t.test('the default and the named export are the same plugin', async t => {
  t.equal(defaultExport, fastifyMtls)
  t.equal((fastifyMtls as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')], 'fastify-mtls')
})

t.test('loadServerTls: secure defaults, and the modes', async t => {
  const required = await loadServerTls(material)
  t.match(required.httpsOptions, { minVersion: 'TLSv1.3', requestCert: true, rejectUnauthorized: true })
  t.equal(required.mode, 'require')
  t.equal((required.httpsOptions.ticketKeys as Buffer).length, 48)
  t.ok(Object.isFrozen(required.httpsOptions))
  const optional = await loadServerTls({ ...material, mode: 'optional', tlsOptions: { ciphers: 'TLS_AES_256_GCM_SHA384', sessionTimeout: 600 } })
  t.match(optional.httpsOptions, { requestCert: true, rejectUnauthorized: false, ciphers: 'TLS_AES_256_GCM_SHA384', sessionTimeout: 600 })
  t.match(optional.secureContextOptions(optional.source.current), { ciphers: 'TLS_AES_256_GCM_SHA384', minVersion: 'TLSv1.3', ca: [pki.ca] }, 'user overrides are part of every rebuilt context')
})

t.test('wrong options fail with FST_MTLS_INVALID_OPTION, unusable material with its MaterialError', async t => {
  await t.rejects(loadServerTls({ ...material, mode: 'permissive' as 'optional' }), { code: 'FST_MTLS_INVALID_OPTION', message: /mode must be 'require' or 'optional'; got "permissive"/ })
  await t.rejects(loadServerTls({ ...material, minVersion: 'TLSv1.1' as 'TLSv1.2' }), { code: 'FST_MTLS_INVALID_OPTION', message: /minVersion/ })
  await t.rejects(loadServerTls({ ...material, ticketKeys: Buffer.alloc(10) }), { code: 'FST_MTLS_INVALID_OPTION', message: /48 bytes/ })
  await t.rejects(loadServerTls(null as unknown as Parameters<typeof loadServerTls>[0]), { code: 'FST_MTLS_INVALID_OPTION' })
  await t.rejects(loadServerTls({ cert: pki.expired.chain, key: pki.expired.key, ca: pki.ca }), { code: 'ERR_MTLS_MATERIAL_EXPIRED' })
  await t.rejects(loadServerTls({ cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca }), { code: 'ERR_MTLS_MATERIAL_EKU_UNSUITABLE' })
})

t.test('registration fails at ready() with a clear message', async t => {
  const serverTls = await loadServerTls(material)
  const plain = Fastify()
  await t.rejects(async () => { await plain.register(fastifyMtls, { tls: serverTls }).ready() }, { code: 'FST_MTLS_NOT_TLS_SERVER', message: /not a TLS server/ })
  const noTls = Fastify({ https: serverTls.httpsOptions })
  await t.rejects(async () => { await noTls.register(fastifyMtls, {} as { tls: typeof serverTls }).ready() }, { code: 'FST_MTLS_INVALID_OPTION', message: /the tls option must be what loadServerTls\(\) returned/ })
  const badDays = Fastify({ https: serverTls.httpsOptions })
  await t.rejects(async () => { await badDays.register(fastifyMtls, { tls: serverTls, expiryWarningDays: [-1] }).ready() }, { code: 'FST_MTLS_INVALID_OPTION', message: /expiryWarningDays/ })
  const badWindow = Fastify({ https: serverTls.httpsOptions })
  await t.rejects(async () => { await badWindow.register(fastifyMtls, { tls: serverTls, reloadFailureWindowMs: -5 }).ready() }, { code: 'FST_MTLS_INVALID_OPTION', message: /reloadFailureWindowMs/ })
})

t.test('status() describes the served certificate and the CAs', async t => {
  const { app } = await startServer(t, material)
  const status = app.mtls.status()
  t.equal(status.mode, 'require')
  t.equal(status.certificate.fingerprint256, pki.server.fingerprint256)
  t.same(status.certificate.uris, ['spiffe://mycompany.com/production/payment-service'])
  t.ok(status.certificate.daysToExpiry === 89 || status.certificate.daysToExpiry === 90)
  t.equal(status.authorities[0]?.subject, 'CN=mtls-pki test root CA')
  t.equal(status.intermediates.length, 1)
  t.equal(status.lastReload, null)
  t.same(status.files, [])
  t.same(await app.mtls.reload(), { changed: false, fingerprint256: pki.server.fingerprint256 })
})

t.test('HTTP/2: the same options and counters with http2: true', async t => {
  const { app, port } = await startServer(t, material, {}, { http2: true })
  const session = connect(`https://127.0.0.1:${port}`, { ca: pki.ca, cert: pki.orderService.chain, key: pki.orderService.key, servername: 'localhost' })
  t.teardown(() => session.close())
  for (let i = 0; i < 3; i++) {
    const body = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/whoami' })
      let data = ''
      stream.on('data', chunk => { data += String(chunk) })
      stream.on('end', () => resolve(data))
      stream.on('error', reject)
    })
    t.match(JSON.parse(body), { authorized: true, peer: 'URI:spiffe://mycompany.com/production/order-service' }, `stream ${i + 1}`)
  }
  const refused = await attempt(port, clientOf(pki, pki.expired), { ALPNProtocols: ['h2'] })
  t.equal(refused.status, null)
  t.match(app.mtls.stats(), { handshakes: 1, failures: { expired: 1 } }, 'three streams, one handshake')
})

t.test('healthCheck fits @fastify/under-pressure: unhealthy once reloads keep failing', async t => {
  const dir = await tempDir(t)
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }
  await Promise.all([writeFile(files.certFile, pki.server.chain), writeFile(files.keyFile, pki.server.key), writeFile(files.caFile, pki.ca)])
  const serverTls = await loadServerTls({ ...files, mode: 'optional' })
  const app = Fastify({ https: serverTls.httpsOptions })
  await app.register(fastifyMtls, { tls: serverTls, watch: false, reloadFailureWindowMs: 0 })
  await app.register(underPressure, { healthCheck: app.mtls.healthCheck, exposeStatusRoute: '/health' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const port = (app.server.address() as { port: number }).port

  const probe = async (): Promise<number | null> => (await attempt(port, clientOf(pki), {}, '/health')).status
  t.equal(await probe(), 200, 'healthy, and a probe without a certificate reaches /health in optional mode')
  await writeFile(files.certFile, 'not a certificate')
  await t.rejects(app.mtls.reload(), { code: 'FST_MTLS_RELOAD_FAILED' })
  t.equal(await app.mtls.healthCheck(), false)
  t.equal(await probe(), 503, 'under-pressure reports the failing reloads')
  await writeFile(files.certFile, pki.server.chain)
  await app.mtls.reload()
  t.equal(await probe(), 200, 'healthy again once a reload succeeds')
})
