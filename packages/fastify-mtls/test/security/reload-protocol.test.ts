// MaterialSource used to commit new material before the server applied it. When setSecureContext refused
// it, status() already showed the new certificate and trust, the next reload() said { changed: false },
// lastReload turned ok and health stayed true, while the old context went on serving.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { attempt, capturedLogger, clientOf, startServer, tempDir } from '../helpers.js'

// Security level 4 wants 192-bit keys: the P-384 test set passes, a P-256 certificate is refused by
// setSecureContext (ERR_SSL_EE_KEY_TOO_SMALL) though the material itself is valid.
const pki = await createTestPki({ keyType: 'p384' })
const other = await createTestPki({ keyType: 'p384' })
const strict = { ciphers: 'DEFAULT@SECLEVEL=4', ecdhCurve: 'P-384' }

t.test('what setSecureContext refuses is never committed: status, reload(), health and the served context agree', async t => {
  const dir = await tempDir(t)
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }
  await writeFile(files.certFile, pki.server.chain)
  await writeFile(files.keyFile, pki.server.key)
  await writeFile(files.caFile, pki.ca + other.ca)
  const { logger, lines } = capturedLogger()
  const { app, port } = await startServer(t, { ...files, tlsOptions: strict }, { watch: false, reloadFailureWindowMs: 0 }, { logger })
  const partner = { ca: pki.ca, chain: other.orderService.chain, key: other.orderService.key }
  t.equal((await attempt(port, partner)).status, 200, 'the partner CA is trusted')

  // One reload: a P-256 certificate (refused by the TLS layer at this security level) and the partner CA removed.
  const weak = await pki.intermediate.issue({ usage: 'server', keyType: 'p256', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  await writeFile(files.certFile, weak.chain)
  await writeFile(files.keyFile, weak.key)
  await writeFile(files.caFile, pki.ca)
  for (let i = 0; i < 2; i++) {
    await t.rejects(app.mtls.reload(), { code: 'FST_MTLS_RELOAD_FAILED', cause: { code: 'ERR_SSL_EE_KEY_TOO_SMALL' } }, `reload ${i + 1} is refused, not "unchanged"`)
  }
  const status = app.mtls.status()
  t.equal(status.certificate.fingerprint256, pki.server.fingerprint256, 'status shows the certificate that serves')
  t.equal(status.authorities.length, 2, 'and the trust that serves')
  t.match(status.lastReload, { ok: false, error: { code: 'ERR_SSL_EE_KEY_TOO_SMALL' } })
  t.equal(await app.mtls.healthCheck(), false, 'unhealthy once the failure window is over')
  t.equal(app.mtls.stats().reloads.failed, 1, 'counted once')
  t.equal(lines.filter(line => String(line.msg).startsWith('TLS material reload refused')).length, 1, 'logged once')
  const served = await attempt(port, partner)
  t.equal(served.status, 200, 'the partner is still served: the old context is what is in force')
  t.equal(served.serverFingerprint, pki.server.fingerprint256)

  // Fixed files: applied, committed and logged as the end of the failures.
  const good = await pki.intermediate.issue({ usage: 'server', keyType: 'p384', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  await writeFile(files.certFile, good.chain)
  await writeFile(files.keyFile, good.key)
  t.match(await app.mtls.reload(), { changed: true, fingerprint256: good.fingerprint256 })
  t.match(lines.find(line => String(line.msg).startsWith('TLS material reloaded')), { msg: 'TLS material reloaded after 2 failed attempts' })
  t.match(app.mtls.status().lastReload, { ok: true })
  t.equal(await app.mtls.healthCheck(), true)
  t.equal((await attempt(port, partner)).status, null, 'now the partner CA is gone, as status says')
  t.equal((await attempt(port, clientOf(pki, pki.orderService))).serverFingerprint, good.fingerprint256)
})
