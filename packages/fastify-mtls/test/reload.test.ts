import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { attempt, capturedLogger, clientOf, nextUpdate, sessionFrom, startServer, tempDir } from './helpers.js'

const pki = await createTestPki()
const other = await createTestPki({ trustDomain: 'partner.org' })

async function filesFor (t: Parameters<typeof tempDir>[0], ca: string, cert: IssuedCertificate = pki.server) {
  const dir = await tempDir(t)
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }
  await Promise.all([writeFile(files.certFile, cert.chain), writeFile(files.keyFile, cert.key), writeFile(files.caFile, ca)])
  return files
}

t.test('a reload rebuilds the whole context: TLS 1.2 stays refused, a removed CA is refused, the kept CA still connects', async t => {
  const files = await filesFor(t, pki.ca + other.ca)
  const { app, port, serverTls } = await startServer(t, files)
  const partner = { ca: pki.ca, chain: other.orderService.chain, key: other.orderService.key }
  t.equal((await attempt(port, partner)).status, 200, 'before: the partner CA is trusted')

  const reloaded = nextUpdate(serverTls)
  await writeFile(files.caFile, pki.ca)
  await reloaded
  t.equal((await attempt(port, partner)).status, null, 'after: the removed CA is refused')
  t.equal((await attempt(port, clientOf(pki, pki.orderService))).status, 200, 'after: the kept CA connects')
  t.equal((await attempt(port, clientOf(pki, pki.orderService), { maxVersion: 'TLSv1.2' })).errorCode, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'after: TLS 1.2 still refused')
  t.equal((await attempt(port, clientOf(pki))).errorCode, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'after: a certificate is still required')
  const stats = app.mtls.stats()
  t.equal(stats.reloads.succeeded, 1)
  t.equal(stats.failures.unknown_ca, 1)
  t.match(app.mtls.status().lastReload, { ok: true })
})

t.test('no resumed session outlives the trust it was verified under', async t => {
  const files = await filesFor(t, pki.ca + other.ca)
  const { port, serverTls } = await startServer(t, files)
  const partnerSession = await sessionFrom(port, other.orderService, pki.ca)
  const ourSession = await sessionFrom(port, pki.orderService, pki.ca)
  const partner = { ca: pki.ca, chain: other.orderService.chain, key: other.orderService.key }
  const resumed = await attempt(port, partner, { session: partnerSession })
  t.equal(resumed.reused, true, 'before the reload the session resumes')

  // A certificate-only reload (same names, new key) keeps the ticket keys: clients keep resuming.
  const newServer = await pki.intermediate.issue({ usage: 'server', commonName: 'localhost', spiffeId: 'spiffe://mycompany.com/production/payment-service', dnsNames: ['localhost'], ips: ['127.0.0.1', '::1'] })
  let reloaded = nextUpdate(serverTls)
  await writeFile(files.keyFile, newServer.key)
  await writeFile(files.certFile, newServer.chain)
  t.equal(await reloaded, newServer.fingerprint256)
  const kept = await attempt(port, clientOf(pki, pki.orderService), { session: ourSession })
  t.equal(kept.status, 200)
  t.equal(kept.reused, true, 'a certificate-only reload keeps sessions resumable')

  // A trust change rotates them: the partner's saved session is useless and its certificate is checked again.
  reloaded = nextUpdate(serverTls)
  await writeFile(files.caFile, pki.ca)
  await reloaded
  const refused = await attempt(port, partner, { session: partnerSession })
  t.equal(refused.reused, false, 'the session did not resume')
  t.equal(refused.status, null, 'and the no-longer-trusted certificate is refused')

  // A new identity rotates them too: a session made with payment-service does not resume into ledger-service.
  const before = await sessionFrom(port, pki.orderService, pki.ca)
  const ledger = await pki.intermediate.issue({ usage: 'server', commonName: 'localhost', spiffeId: 'spiffe://mycompany.com/production/ledger-service', dnsNames: ['localhost'], ips: ['127.0.0.1', '::1'] })
  reloaded = nextUpdate(serverTls)
  await writeFile(files.keyFile, ledger.key)
  await writeFile(files.certFile, ledger.chain)
  t.equal(await reloaded, ledger.fingerprint256)
  const renamed = await attempt(port, clientOf(pki, pki.orderService), { session: before })
  t.equal(renamed.status, 200)
  t.equal(renamed.reused, false, 'a session of the old identity does not resume into the new one')
})

t.test('bad replacements are refused, the old certificate keeps serving, and status() says why', async t => {
  const files = await filesFor(t, pki.ca)
  const { app, port } = await startServer(t, files, { watch: false })
  const cases: Array<[string, () => Promise<void>, string]> = [
    ['a corrupt file', async () => { await writeFile(files.certFile, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n') }, 'ERR_MTLS_MATERIAL_CERT_MALFORMED'],
    ['a key that does not match', async () => { await writeFile(files.certFile, pki.server.chain); await writeFile(files.keyFile, pki.orderService.key) }, 'ERR_MTLS_MATERIAL_KEY_MISMATCH'],
    ['an expired replacement', async () => {
      const expired = await pki.intermediate.issue({ usage: 'server', dnsNames: ['localhost'], notBefore: new Date(Date.now() - 10 * 86400e3), notAfter: new Date(Date.now() - 86400e3) })
      await writeFile(files.keyFile, expired.key)
      await writeFile(files.certFile, expired.chain)
    }, 'ERR_MTLS_MATERIAL_EXPIRED']
  ]
  for (const [what, replace, code] of cases) {
    await replace()
    await t.rejects(app.mtls.reload(), { code: 'FST_MTLS_RELOAD_FAILED', cause: { code } }, what)
    t.match(app.mtls.status().lastReload, { ok: false, error: { code } }, `${what}: status says why`)
    const served = await attempt(port, clientOf(pki, pki.orderService))
    t.equal(served.status, 200, `${what}: still serving`)
    t.equal(served.serverFingerprint, pki.server.fingerprint256, `${what}: with the old certificate`)
  }
  t.equal(app.mtls.stats().reloads.failed, 3)
  t.equal(app.mtls.stats().reloads.succeeded, 0)

  await writeFile(files.keyFile, pki.server.key)
  await writeFile(files.certFile, pki.server.chain)
  t.same(await app.mtls.reload(), { changed: false, fingerprint256: pki.server.fingerprint256 }, 'the original files again: nothing to change')
})

t.test('SIGHUP reloads when asked to', async t => {
  const files = await filesFor(t, pki.ca)
  const { port, serverTls } = await startServer(t, files, { watch: false, sighup: true })
  const next = await pki.intermediate.issue({ usage: 'server', dnsNames: ['localhost'] })
  await writeFile(files.keyFile, next.key)
  await writeFile(files.certFile, next.chain)
  const reloaded = nextUpdate(serverTls)
  process.kill(process.pid, 'SIGHUP')
  t.equal(await reloaded, next.fingerprint256)
  t.equal((await attempt(port, clientOf(pki, pki.orderService))).serverFingerprint, next.fingerprint256)
})

t.test('expiry is warned about once per threshold, with the days left', async t => {
  const soon = await pki.intermediate.issue({ usage: 'server', dnsNames: ['localhost'], days: 10 })
  const { logger, lines } = capturedLogger()
  const files = await filesFor(t, pki.ca, soon)
  const { app } = await startServer(t, files, { watch: false }, { logger })
  const warnings = (): Array<Record<string, unknown>> => lines.filter(line => line.level === 40)
  t.equal(warnings().length, 1)
  t.match(warnings()[0], { msg: 'the server certificate expires in 9 days (under 30)', daysLeft: 9, fingerprint256: soon.fingerprint256 })
  const sooner = await pki.intermediate.issue({ usage: 'server', dnsNames: ['localhost'], days: 3 })
  await writeFile(files.keyFile, sooner.key)
  await writeFile(files.certFile, sooner.chain)
  await app.mtls.reload()
  t.equal(warnings().length, 2)
  t.match(warnings()[1], { msg: 'the server certificate expires in 2 days (under 7)' })
  await app.mtls.reload()
  t.equal(warnings().length, 2, 'not repeated')
  t.notMatch(JSON.stringify(lines), 'PRIVATE KEY', 'no key is ever logged')
  t.notMatch(JSON.stringify(lines), 'BEGIN CERTIFICATE', 'no whole certificate is logged')
})
