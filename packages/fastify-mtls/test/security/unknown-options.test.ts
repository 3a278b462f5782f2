import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import Fastify from 'fastify'
import { createTestPki } from 'mtls-pki'
import { Registry } from 'prom-client'
import { fastifyMtls, loadServerTls, type FastifyMtlsOptions, type ServerTlsOptions } from '../../src/index.js'
import { attempt, clientOf, startServer, tempDir } from '../helpers.js'

// The attack: from JavaScript, `loadServerTls({ crlfile })` served without the CRL, so a revoked client
// certificate was accepted, and `register(fastifyMtls, { sighub: true })` left reloads off. Unknown keys
// are now refused with FST_MTLS_INVALID_OPTION, and the registration fails at ready().

const pki = await createTestPki()
const material = { cert: pki.server.chain, key: pki.server.key, ca: pki.ca }

t.test('loadServerTls refuses a misspelt crlFile; spelt right, the CRL refuses a revoked client', async t => {
  const dir = await tempDir(t)
  const crlFile = join(dir, 'crl.pem')
  await writeFile(crlFile, pki.crl.join(''))
  await t.rejects(loadServerTls({ ...material, crlfile: crlFile } as ServerTlsOptions), {
    code: 'FST_MTLS_INVALID_OPTION',
    message: /^fastify-mtls: loadServerTls: unknown option "crlfile" \(did you mean "crlFile"\?\); known options: certFile, cert, keyFile, /
  })
  const { app, port } = await startServer(t, { ...material, crlFile })
  const revoked = await attempt(port, clientOf(pki, pki.revoked))
  t.equal(revoked.status, null, 'the revoked client gets no answer')
  t.equal(app.mtls.stats().failures.revoked, 1)
  t.equal((await attempt(port, clientOf(pki, pki.orderService))).status, 200, 'a good client is still served')
})

t.test('loadServerTls refuses other unknown keys, and a tlsOptions that is not an object; its contents are Node\'s', async t => {
  await t.rejects(loadServerTls({ ...material, rejectUnauthorized: false } as ServerTlsOptions), { code: 'FST_MTLS_INVALID_OPTION', message: /unknown option "rejectUnauthorized"/ })
  await t.rejects(loadServerTls({ ...material, Mode: 'optional' } as ServerTlsOptions), { code: 'FST_MTLS_INVALID_OPTION', message: /unknown option "Mode" \(did you mean "mode"\?\)/ })
  await t.rejects(loadServerTls({ ...material, tlsOptions: null } as unknown as ServerTlsOptions), { code: 'FST_MTLS_INVALID_OPTION', message: /tlsOptions must be an object/ })
  const passed = await loadServerTls({ ...material, tlsOptions: { sessionTimeout: 60, honorCipherOrder: true } })
  t.match(passed.httpsOptions, { sessionTimeout: 60, honorCipherOrder: true }, 'tlsOptions go to Node as they are')
})

t.test('the plugin refuses unknown keys (top level, watch, metrics) and wrong values at ready()', async t => {
  const serverTls = await loadServerTls(material)
  const registry = new Registry()
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['sighub', { tls: serverTls, sighub: true }, /^fastify-mtls: plugin options: unknown option "sighub" \(did you mean "sighup"\?\); known options: tls, watch, sighup, expiryWarningDays, reloadFailureWindowMs, metrics, refusalLogIntervalMs, openTelemetry, ocspStapling, revocation$/],
    ['tsl', { tsl: serverTls }, /unknown option "tsl" \(did you mean "tls"\?\)/],
    ['watch.debounceMS', { tls: serverTls, watch: { debounceMS: 10 } }, /^fastify-mtls: watch: unknown option "debounceMS" \(did you mean "debounceMs"\?\); known options: debounceMs, poll$/],
    ['metrics.prefx', { tls: serverTls, metrics: { registry, prefx: 'edge_' } }, /^fastify-mtls: metrics: unknown option "prefx" \(did you mean "prefix"\?\); known options: registry, prefix$/],
    ['watch a string', { tls: serverTls, watch: 'yes' }, /watch must be true, false or \{ debounceMs, poll \}; got "yes"/],
    ['sighup a string', { tls: serverTls, sighup: 'true' }, /sighup must be true or false/],
    ['metrics without a registry', { tls: serverTls, metrics: { registry: {} } }, /metrics must be \{ registry, prefix\? \}/],
    ['refusalLogIntervalMs 0', { tls: serverTls, refusalLogIntervalMs: 0 }, /refusalLogIntervalMs must be a number of milliseconds above 0 and at most 2147483647/],
    ['refusalLogIntervalMs NaN', { tls: serverTls, refusalLogIntervalMs: Number.NaN }, /refusalLogIntervalMs/],
    ['refusalLogIntervalMs beyond a timer', { tls: serverTls, refusalLogIntervalMs: 2 ** 31 }, /refusalLogIntervalMs/],
    ['refusalLogIntervalMs a string', { tls: serverTls, refusalLogIntervalMs: '60000' }, /refusalLogIntervalMs/],
    // A misspelt or empty revocation would check no certificate at all, silently.
    ['revocation.ocps', { tls: serverTls, revocation: { ocps: true } }, /^fastify-mtls: revocation: unknown option "ocps" \(did you mean "ocsp"\?\); known options: ocsp, crlDistributionPoints, failMode, timeoutMs, maxResponders, allowHttps, maxCrlBytes, crlRefreshMs$/],
    ['revocation.crlDistributionPoint', { tls: serverTls, revocation: { ocsp: true, crlDistributionPoint: true } }, /revocation: unknown option "crlDistributionPoint" \(did you mean "crlDistributionPoints"\?\)/],
    ['revocation without a check', { tls: serverTls, revocation: {} }, /revocation turns no check on: set revocation\.ocsp and\/or revocation\.crlDistributionPoints to true/],
    ['revocation with both checks off', { tls: serverTls, revocation: { ocsp: false, crlDistributionPoints: false } }, /revocation turns no check on/],
    ['revocation.crlDistributionPoints a string', { tls: serverTls, revocation: { crlDistributionPoints: 'yes' } }, /revocation\.crlDistributionPoints must be true or false/],
    ['revocation.crlRefreshMs', { tls: serverTls, revocation: { crlDistributionPoints: true, crlRefreshMs: -1 } }, /revocation\.crlRefreshMs must be a positive number/],
    ['revocation.maxCrlBytes', { tls: serverTls, revocation: { crlDistributionPoints: true, maxCrlBytes: 1.5 } }, /revocation\.maxCrlBytes must be a whole number/],
    ['revocation true', { tls: serverTls, revocation: true }, /revocation must be \{ ocsp\?: true, crlDistributionPoints\?: true, failMode\?, timeoutMs\?, maxResponders\?, allowHttps\?, maxCrlBytes\?, crlRefreshMs\? \}; got true/],
    ['revocation.ocsp a string', { tls: serverTls, revocation: { ocsp: 'yes' } }, /revocation\.ocsp must be true or false/],
    ['revocation.failMode', { tls: serverTls, revocation: { ocsp: true, failMode: 'opne' } }, /revocation\.failMode must be 'closed' or 'open'; got "opne"/],
    ['revocation.timeoutMs', { tls: serverTls, revocation: { ocsp: true, timeoutMs: 0 } }, /revocation\.timeoutMs must be a positive number/],
    ['revocation.maxResponders', { tls: serverTls, revocation: { ocsp: true, maxResponders: 1.5 } }, /revocation\.maxResponders must be a whole number, at least 1/],
    ['revocation.allowHttps', { tls: serverTls, revocation: { ocsp: true, allowHttps: 1 } }, /revocation\.allowHttps must be true or false/]
  ]
  for (const [what, options, message] of cases) {
    const app = Fastify({ https: serverTls.httpsOptions })
    await t.rejects(async () => { await app.register(fastifyMtls, options as unknown as FastifyMtlsOptions).ready() }, { code: 'FST_MTLS_INVALID_OPTION', message }, what)
    t.equal(registry.getMetricsAsArray().length, 0, `${what}: nothing was registered`)
  }
  const app = Fastify({ https: serverTls.httpsOptions })
  t.teardown(() => app.close())
  await app.register(fastifyMtls, { tls: serverTls, watch: { debounceMs: 10, poll: false }, sighup: false, metrics: { registry, prefix: 'edge_' }, refusalLogIntervalMs: 1000, revocation: { ocsp: true, failMode: 'open', timeoutMs: 1000, maxResponders: 2, allowHttps: false } })
  await app.ready()
  t.ok(registry.getSingleMetric('edge_handshakes_total'), 'every known key is accepted')
})
