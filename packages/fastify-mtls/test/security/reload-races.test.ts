// Attack: MaterialSource.reload(input) switches inputs before it joins a reload already running. The call
// then resolves with the running reload's result (its input never read), and when the follow-up reload of
// the new input is refused, the inputs are never restored: the source keeps reading the refused files while
// the old material serves, so a later rotation of the files in service is never picked up.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { attempt, clientOf, startServer, tempDir } from '../helpers.js'

const pki = await createTestPki()

async function filesIn (dir: string, cert: string, key: string): Promise<{ certFile: string, keyFile: string, caFile: string }> {
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }
  await writeFile(files.certFile, cert)
  await writeFile(files.keyFile, key)
  await writeFile(files.caFile, pki.ca)
  return files
}

t.test('reload(input) during another reload answers for the input it was given', async t => {
  const original = await filesIn(await tempDir(t), pki.server.chain, pki.server.key)
  const next = await pki.intermediate.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  const moved = await filesIn(await tempDir(t), next.chain, next.key)
  const { serverTls } = await startServer(t, original, { watch: false })

  const running = serverTls.source.reload() // a watcher event, SIGHUP or mtls.reload() in flight
  const switched = await serverTls.source.reload(moved)
  await running
  // This got through before the fix: reload(moved) resolves with the material that was in service (pki.server), read from the old
  // files; the new input is only applied later by a background reload the caller never hears of.
  t.equal(switched.leaf.fingerprint256, next.fingerprint256, 'the material it resolves with is the one read from the new input')
  t.equal(serverTls.source.current.leaf.fingerprint256, next.fingerprint256, 'and it is in service')
})

t.test('a refused reload(input) never leaves the source reading the refused files', async t => {
  const dir = await tempDir(t)
  const original = await filesIn(dir, pki.server.chain, pki.server.key)
  const broken = await filesIn(await tempDir(t), pki.server.chain, pki.orderService.key) // key mismatch
  const { app, port, serverTls } = await startServer(t, original, { watch: false })

  const running = serverTls.source.reload()
  const refused = serverTls.source.reload(broken).then(() => 'resolved', (err: { code?: string }) => err.code)
  await running
  // This got through before the fix: 'resolved': the refused input is reported as accepted (it was never read by this call).
  t.equal(await refused, 'ERR_MTLS_MATERIAL_KEY_MISMATCH', 'reload(broken) rejects')
  t.equal(serverTls.source.current.leaf.fingerprint256, pki.server.fingerprint256, 'the old material serves')

  // The operator (or cert-manager) renews the certificate at the paths in service.
  const renewed = await pki.intermediate.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  await writeFile(original.keyFile, renewed.key)
  await writeFile(original.certFile, renewed.chain)
  // This got through before the fix: rejects with ERR_MTLS_MATERIAL_KEY_MISMATCH for the broken files: the source still reads them, so the
  // renewal in the files that serve is never applied (the watcher, watching the old directory, reads the
  // broken input too) and the server runs into its certificate's expiry.
  const reloaded = await app.mtls.reload().then(result => result.fingerprint256, (err: Error) => err.message)
  t.equal(reloaded, renewed.fingerprint256, 'the renewal at the paths in service is applied')
  t.equal((await attempt(port, clientOf(pki, pki.orderService))).serverFingerprint, renewed.fingerprint256)
})

t.test('two concurrent refused reload(input) calls restore the inputs in service', async t => {
  const original = await filesIn(await tempDir(t), pki.server.chain, pki.server.key)
  const brokenA = await filesIn(await tempDir(t), pki.server.chain, pki.orderService.key)
  const brokenB = await filesIn(await tempDir(t), pki.orderService.chain, pki.server.key)
  const { app, serverTls } = await startServer(t, original, { watch: false })
  const a = serverTls.source.reload(brokenA).catch(() => {})
  const b = serverTls.source.reload(brokenB).catch(() => {})
  await Promise.all([a, b])
  // This got through before the fix: the second call's catch restores "its" previous input, which is brokenA: the source now reads
  // brokenA's files, so reload() of the files in service fails.
  const result = await app.mtls.reload().then(r => r.fingerprint256, (err: Error) => err.message)
  t.equal(result, pki.server.fingerprint256, 'reload() reads the files in service again')
})
