// Attack: an in-process restart (@fastify/restartable, a test harness, a supervisor that rebuilds the app)
// closes the Fastify instance and builds a new one from the same loadServerTls() result. The first app's
// onClose closed the shared MaterialSource for good: the new app's plugin asks it to watch, and
// FileSource.watch() returns without a word because the source is closed. Rotations are never seen again.
// The closed app's apply listeners also stay on the source and keep calling setSecureContext on it.
// Worse, `httpsOptions` is a snapshot of the material loadServerTls() read first: a server built from it
// after a reload serves the first material (and its trust) while status() shows the current one.
import { writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import Fastify from 'fastify'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { fastifyMtls, loadServerTls, type ServerTls } from '../../src/index.js'
import { until } from 'mtls-test-support'
import { attempt, clientOf, tempDir, type Teardown } from '../helpers.js'

const pki = await createTestPki()

interface Files { certFile: string, keyFile: string, caFile: string }

// Material files in a fresh directory, and one ServerTls loaded from them that every app of a test shares.
async function sharedServerTls (t: Teardown, ca: string): Promise<{ files: Files, serverTls: ServerTls }> {
  const dir = await tempDir(t)
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }
  await writeFile(files.certFile, pki.server.chain)
  await writeFile(files.keyFile, pki.server.key)
  await writeFile(files.caFile, ca)
  return { files, serverTls: await loadServerTls(files) }
}

async function build (serverTls: ServerTls, watch: false | { debounceMs: number }): Promise<{ app: ReturnType<typeof Fastify>, port: number }> {
  const app = Fastify({ https: serverTls.httpsOptions })
  await app.register(fastifyMtls, { tls: serverTls, watch })
  app.get('/whoami', async () => 'ok')
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as AddressInfo).port }
}

async function renew (files: Files): Promise<IssuedCertificate> {
  const renewed = await pki.intermediate.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  await writeFile(files.keyFile, renewed.key)
  await writeFile(files.certFile, renewed.chain)
  return renewed
}

t.test('a restarted app on the same ServerTls still follows certificate rotations', async t => {
  const { files, serverTls } = await sharedServerTls(t, pki.ca)
  const first = await build(serverTls, { debounceMs: 20 })
  await first.app.close()
  const second = await build(serverTls, { debounceMs: 20 })
  t.teardown(() => second.app.close())

  const renewed = await renew(files)
  await until(() => second.app.mtls.status().certificate.fingerprint256 === renewed.fingerprint256, 'the renewed certificate in force')
  const served = (await attempt(second.port, clientOf(pki, pki.orderService))).serverFingerprint
  // This got through before the fix: the old certificate is still served and status() shows it; no error, no log line. Either the
  // plugin must refuse a closed source at registration, or closing an app must not close a source it
  // did not create (plugin.ts onClose calls source.close() and ticketKeys.close(), and never removes its
  // apply/update/error listeners).
  t.equal(served, renewed.fingerprint256, 'the renewed certificate is served')
  t.equal(second.app.mtls.status().certificate.fingerprint256, renewed.fingerprint256)
})

t.test('overlapping apps on one ServerTls: the first to close leaves the other watching', async t => {
  // A blue/green swap in process: the new app starts before the old one closes. Closing the old one
  // once stopped the shared watcher for both.
  const { files, serverTls } = await sharedServerTls(t, pki.ca)
  const first = await build(serverTls, { debounceMs: 20 })
  const second = await build(serverTls, { debounceMs: 20 })
  t.teardown(() => second.app.close())
  await first.app.close()

  const renewed = await renew(files)
  await until(() => second.app.mtls.status().certificate.fingerprint256 === renewed.fingerprint256, 'the rotation seen')
  t.pass('the rotation was seen')
  t.equal((await attempt(second.port, clientOf(pki, pki.orderService))).serverFingerprint, renewed.fingerprint256, 'and is served')
})

t.test('a server built after a reload serves the material in force, not the first one loaded', async t => {
  const partner = await createTestPki()
  const { files, serverTls } = await sharedServerTls(t, pki.ca + partner.ca)
  const first = await build(serverTls, false)
  // The partner CA is removed (a compromised partner), and the certificate renewed.
  const renewed = await pki.intermediate.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  await writeFile(files.caFile, pki.ca)
  await writeFile(files.certFile, renewed.chain)
  await writeFile(files.keyFile, renewed.key)
  await first.app.mtls.reload()
  const partnerClient = { ca: pki.ca, chain: partner.orderService.chain, key: partner.orderService.key }
  t.equal((await attempt(first.port, partnerClient)).status, null, 'the first app refuses the removed CA')
  await first.app.close()

  const second = await build(serverTls, false)
  t.teardown(() => second.app.close())
  t.equal(second.app.mtls.status().authorities.length, 1, 'status says one CA is trusted')
  const seen = await attempt(second.port, partnerClient)
  // This got through before the fix: 200 with the first certificate: the restarted server trusts the removed partner CA again and
  // serves the old certificate, while status() shows the renewed one and the single CA.
  t.equal(seen.status, null, 'the removed CA stays refused')
  t.equal((await attempt(second.port, clientOf(pki, pki.orderService))).serverFingerprint, renewed.fingerprint256, 'the renewed certificate serves')
})
