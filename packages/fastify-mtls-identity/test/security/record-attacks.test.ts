// Attacks on the identity read from fastify-mtls's record of the connection (fastify.mtls.connection()), from the
// outside: what `request.peerIdentity` says for a chain the client arranged, and for an application whose
// fastify-mtls lives in another encapsulation context than the identity plugin.
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import http2 from 'node:http2'
import { join } from 'node:path'
import * as tls from 'node:tls'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { fastifyMtls, loadServerTls, type ServerTlsOptions } from 'fastify-mtls'
import { createTestPki } from 'mtls-pki'
import { PemFeed, decoyCertificate, startFastifyServer, tempDir, until, type Teardown } from 'mtls-test-support'
import { fastifyMtlsIdentity } from '../../src/index.js'

const ORDER = 'spiffe://mycompany.com/production/order-service'
// One test set for every test (each revokes a certificate of its own), and a federated partner's.
const [pki, partner] = await Promise.all([createTestPki(), createTestPki({ trustDomain: 'partner.example' })])

// One kept-alive connection asking GET /who; '(closed)' once the server closed it.
async function keptAlive (t: Teardown, port: number, ca: string, chain: string, key: string): Promise<() => Promise<string>> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, cert: chain, key })
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  let closed = false
  socket.on('close', () => { closed = true })
  await Promise.race([once(socket, 'secureConnect'), once(socket, 'close')])
  return async () => {
    if (closed) return '(closed)'
    socket.write('GET /who HTTP/1.1\r\nHost: localhost\r\n\r\n')
    const [chunk] = await Promise.race([once(socket, 'data'), once(socket, 'close').then(() => ['(closed)'])]) as [Buffer | string]
    return String(chunk).split('\r\n\r\n')[1] ?? String(chunk)
  }
}

const whoRoute = (app: FastifyInstance): void => {
  app.get('/who', async request => ({ id: request.peerIdentity?.id ?? null, error: request.peerCertificateError }))
}

t.test('trust kept by trust domain: a federated CA\'s certificate for our trust domain gets no identity, even with a decoy naming our root above its CA', async t => {
  const forged = await partner.intermediate.issue({ spiffeId: ORDER, usage: 'client' })
  for (const mode of ['require', 'optional'] as const) {
    const feed = new PemFeed({ cert: pki.server.chain, key: pki.server.key, trustDomains: { 'mycompany.com': pki.ca, 'partner.example': partner.ca } })
    const serverTls = await loadServerTls({ x509Source: feed, mode })
    const { port } = await startFastifyServer(t, { https: serverTls.httpsOptions }, async app => {
      await app.register(fastifyMtls, { tls: serverTls })
      await app.register(fastifyMtlsIdentity)
      whoRoute(app)
    })
    const honest = await keptAlive(t, port, pki.ca, forged.chain, forged.key)
    t.equal(await honest(), mode === 'require' ? '(closed)' : '{"id":null,"error":"ERR_MTLS_TRUST_DOMAIN_UNTRUSTED"}', `${mode}: its own chain gets nothing`)
    // Above the partner's intermediate: a decoy carrying the partner root's name and key "issued" by our root, then our root.
    const lured = await keptAlive(t, port, pki.ca, forged.chain + await decoyCertificate(partner.ca, pki.ca) + pki.ca, forged.key)
    // This got through before the fix (found by review): fastify-mtls takes the chain Node shows (linked by names) and ends it at our root, which the client
    // sent (mtls-core trust.ts presentedChain, line 173; fastify-mtls leaf-refusal.ts), while OpenSSL verified it
    // under the partner's root: the partner's CA speaks for mycompany.com.
    const answer = await lured()
    t.not(answer, `{"id":"${ORDER}","error":null}`, `${mode}: the lured chain gets no identity of ours`)
    t.equal(answer, mode === 'require' ? '(closed)' : '{"id":null,"error":"ERR_MTLS_TRUST_DOMAIN_UNTRUSTED"}', `${mode}: refused as its own chain is`)
  }
})

t.test('fastify-mtls registered in an encapsulated context: the identity plugin at the root follows its records or refuses to start', async t => {
  const doomed = await pki.intermediate.issue({ spiffeId: ORDER, usage: 'client' })
  const dir = await tempDir(t)
  const crlFile = join(dir, 'crl.pem')
  await writeFile(crlFile, pki.crl.join(''))
  const files: ServerTlsOptions = { cert: pki.server.chain, key: pki.server.key, ca: pki.ca, crlFile, mode: 'optional' }
  const serverTls = await loadServerTls(files)
  let mtlsApp: FastifyInstance | null = null
  let started: Awaited<ReturnType<typeof startFastifyServer>>
  try {
    started = await startFastifyServer(t, { https: serverTls.httpsOptions }, async app => {
      // The mTLS routes in a context of their own (fastify-mtls stays inside it); identity for the whole application.
      await app.register(async scoped => {
        await scoped.register(fastifyMtls, { tls: serverTls, watch: { debounceMs: 20 } })
        mtlsApp = scoped
      })
      await app.register(fastifyMtlsIdentity)
      whoRoute(app)
    })
  } catch (err) {
    t.pass(`refused to start: ${(err as Error).message}`)
    return
  }
  const ask = await keptAlive(t, started.port, pki.ca, doomed.chain, doomed.key)
  t.equal(await ask(), `{"id":"${ORDER}","error":null}`, 'identified before')
  const scoped = mtlsApp as unknown as FastifyInstance
  const before = scoped.mtls.stats().reloads.succeeded
  pki.intermediate.revoke(doomed)
  await writeFile(crlFile, (await pki.intermediate.createCrls()).join(''))
  await until(() => scoped.mtls.stats().reloads.succeeded > before, 'the revoking CRL applied')
  // This got through before the fix (found by review): fastify-mtls-identity.ts looks for fastify-mtls with hasPlugin() in its own context only; not
  // finding it, it reads OpenSSL's verdict from the socket and keeps the identity that fastify-mtls's
  // record of the same connection has withdrawn (CERT_REVOKED), with no warning.
  t.equal(await ask(), '{"id":null,"error":"CERT_REVOKED"}', 'the revoked certificate has no identity any more')
})

t.test('identity registered before fastify-mtls, neither awaited, over HTTP/2: a certificate a new CRL revokes loses its identity on the session it holds', async t => {
  const dir = await tempDir(t)
  const crlFile = join(dir, 'crl.pem')
  await writeFile(crlFile, pki.crl.join(''))
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, crlFile, mode: 'optional' })
  const { app, url } = await startFastifyServer(t, { https: { ...serverTls.httpsOptions, allowHTTP1: true }, fastify: { http2: true } }, async app => {
    void app.register(fastifyMtlsIdentity) // eslint-disable-line no-void
    void app.register(fastifyMtls, { tls: serverTls, watch: { debounceMs: 20 } }) // eslint-disable-line no-void
    whoRoute(app)
  })
  const session = http2.connect(url, { ca: pki.ca, servername: 'localhost', cert: pki.inventoryService.chain, key: pki.inventoryService.key })
  t.teardown(() => session.close())
  session.on('error', () => {})
  const who = async (): Promise<unknown> => await new Promise((resolve, reject) => {
    const stream = session.request({ ':path': '/who' })
    let body = ''
    stream.setEncoding('utf8').on('data', chunk => { body += chunk }).on('end', () => resolve(JSON.parse(body))).on('error', reject)
  })
  t.same(await who(), { id: 'spiffe://mycompany.com/production/inventory-service', error: null }, 'before the revocation')
  pki.intermediate.revoke(pki.inventoryService)
  const before = app.mtls.stats().reloads.succeeded
  await writeFile(crlFile, (await pki.intermediate.createCrls()).join(''))
  await until(() => app.mtls.stats().reloads.succeeded > before, 'the new CRL applied')
  t.same(await who(), { id: null, error: 'CERT_REVOKED' }, 'the same HTTP/2 session, after it')
})
