import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import { createTestPki } from 'mtls-pki'
import { fastifyMtls, loadServerTls } from '../src/index.js'
import { attempt, capturedLogger, clientOf, sessionFrom, startServer, tempDir } from './helpers.js'

const pki = await createTestPki()
const material = { cert: pki.server.chain, key: pki.server.key, ca: pki.ca }

t.test('replicas sharing a ticket keys file resume each other\'s sessions; a new file ends them', async t => {
  const dir = await tempDir(t)
  const ticketKeysFile = join(dir, 'ticket.key')
  await writeFile(ticketKeysFile, randomBytes(48).toString('base64') + '\n')
  const a = await startServer(t, { ...material, ticketKeysFile }, { watch: { debounceMs: 20 } })
  const b = await startServer(t, { ...material, ticketKeysFile })
  const session = await sessionFrom(a.port, pki.orderService, pki.ca)
  const onB = await attempt(b.port, clientOf(pki, pki.orderService), { session })
  t.equal(onB.status, 200)
  t.equal(onB.reused, true, 'a session from replica A resumes on replica B')

  const { logger, lines } = capturedLogger()
  const c = await startServer(t, { ...material, ticketKeysFile }, { watch: false }, { logger })
  await writeFile(ticketKeysFile, randomBytes(48))
  t.same(await c.app.mtls.reload(), { changed: false, fingerprint256: pki.server.fingerprint256 }, 'reload() also re-reads the ticket keys')
  t.match(lines.find(line => line.msg === 'session ticket keys rotated'), { file: ticketKeysFile })
  const afterRotation = await attempt(c.port, clientOf(pki, pki.orderService), { session })
  t.equal(afterRotation.status, 200)
  t.equal(afterRotation.reused, false, 'after the keys rotated, the old session no longer resumes')

  await writeFile(ticketKeysFile, 'too short')
  await c.app.mtls.reload()
  await c.app.mtls.reload()
  const kept = lines.filter(line => typeof line.msg === 'string' && line.msg.startsWith('session ticket keys kept'))
  t.equal(kept.length, 1, 'a bad keys file is logged once')
  t.match(kept[0]?.msg, /expected 48 bytes, raw or base64; found 9 bytes/)
  const fresh = await sessionFrom(c.port, pki.orderService, pki.ca)
  t.equal((await attempt(c.port, clientOf(pki, pki.orderService), { session: fresh })).reused, true, 'the previous keys stay in use')
})

t.test('ticket key options are checked', async t => {
  await t.rejects(loadServerTls({ ...material, ticketKeys: randomBytes(48), ticketKeysFile: '/x' }), { code: 'FST_MTLS_INVALID_OPTION', message: /not both/ })
  await t.rejects(loadServerTls({ ...material, ticketKeysFile: '/nonexistent/ticket.key' }), { code: 'FST_MTLS_INVALID_OPTION', message: /ticketKeysFile \/nonexistent\/ticket.key: cannot read \(no such file\)/ })
  const serverTls = await loadServerTls({ ...material, ticketKeys: Buffer.alloc(48, 7) })
  t.equal(serverTls.ticketKeys.file, undefined)
  t.equal(serverTls.ticketKeys.source, null, 'nothing to re-read without a file')
  t.same(serverTls.ticketKeys.for(serverTls.source.current), (await loadServerTls({ ...material, ticketKeys: Buffer.alloc(48, 7) })).ticketKeys.for(serverTls.source.current), 'the same base and trust give the same keys')
  t.notSame(serverTls.ticketKeys.for(serverTls.source.current), serverTls.ticketKeys.for({ ...serverTls.source.current, ca: [pki.otherCaAuthority.root.certificate] }), 'another trust gives other keys')
  const current = serverTls.source.current
  t.notSame(serverTls.ticketKeys.for(current), serverTls.ticketKeys.for({ ...current, leaf: { ...current.leaf, uris: ['spiffe://mycompany.com/production/ledger-service'] } }), 'another identity gives other keys')
  t.same(serverTls.ticketKeys.for(current), serverTls.ticketKeys.for({ ...current, leaf: { ...current.leaf, fingerprint256: 'another certificate', notAfter: new Date(0) } }), 'a new certificate of the same identity keeps them')
})

t.test('Prometheus metrics read the counters at scrape time', async t => {
  const serverTls = await loadServerTls(material)
  const registry = new Registry()
  const app = Fastify({ https: serverTls.httpsOptions })
  await app.register(fastifyMtls, { tls: serverTls, metrics: { registry } })
  app.get('/whoami', async () => 'ok')
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const port = (app.server.address() as { port: number }).port
  await attempt(port, clientOf(pki, pki.orderService))
  await attempt(port, clientOf(pki, pki.expired))
  await attempt(port, clientOf(pki))
  const text = await registry.metrics()
  t.match(text, /^mtls_handshakes_total 1$/m)
  t.match(text, /^mtls_handshake_failures_total\{reason="expired"\} 1$/m)
  t.match(text, /^mtls_handshake_failures_total\{reason="no_certificate"\} 1$/m)
  t.match(text, /^mtls_handshake_failures_total\{reason="revoked"\} 0$/m)
  t.match(text, /^mtls_reloads_total\{result="success"\} 0$/m)
  t.match(text, /^mtls_resumed_sessions_total 0$/m)
  const expiry = new RegExp(`^mtls_certificate_expiry_seconds\\{certificate="leaf",subject="CN=localhost",fingerprint256="${pki.server.fingerprint256}"\\} (\\d+)$`, 'm').exec(text)
  t.ok(expiry !== null && Number(expiry[1]) > 89 * 86400, 'the leaf expiry in seconds')
  t.match(text, /mtls_certificate_expiry_seconds\{certificate="ca",subject="CN=mtls-pki test root CA"/)
})

t.test('metrics leave the registry when the app closes: a second app on the same registry starts', async t => {
  const registry = new Registry()
  for (let i = 0; i < 2; i++) {
    const serverTls = await loadServerTls(material)
    const app = Fastify({ https: serverTls.httpsOptions })
    await app.register(fastifyMtls, { tls: serverTls, metrics: { registry } })
    await t.resolves(async () => await app.ready(), `app ${i + 1} is ready`)
    t.match(await registry.metrics(), /mtls_handshakes_total/)
    await app.close()
    t.notMatch(await registry.metrics(), /mtls_/, `app ${i + 1} closed: its metrics are gone`)
  }
})
