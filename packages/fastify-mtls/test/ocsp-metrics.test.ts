// What OCSP reports in status(), in Prometheus metrics read at scrape time from a real prom-client registry: the
// staple's state and its time to nextUpdate (ocspStapling), and the client-certificate lookups (revocation), against
// the real OpenSSL responder that mtls-pki starts.
import { createServer as createHttpServer } from 'node:http'
import t from 'tap'
import { Registry } from 'prom-client'
import { createRootCa, type IssuedCertificate } from 'mtls-pki'
import { closedPort, until } from 'mtls-test-support'
import { readPemBlocks } from 'mtls-core/internal'
import { attempt, startServer } from './helpers.js'

const root = await createRootCa({ commonName: 'metrics root' })
const intermediate = await root.createIntermediate({ commonName: 'metrics CA' })
const responder = await intermediate.startOcspResponder()
t.teardown(responder.close)

async function issued (usage: 'server' | 'client', ocspUrl: string = responder.url): Promise<IssuedCertificate> {
  const cert = await intermediate.issue({ ...(usage === 'server' ? { dnsNames: ['localhost'], ips: ['127.0.0.1'] } : { commonName: 'caller' }), usage, ocspUrl })
  await responder.refresh()
  return cert
}

/** The URL of a responder that is down: a port nothing listens on. */
async function downResponder (): Promise<string> {
  return `http://127.0.0.1:${await closedPort()}/`
}

/** The samples of one metric in the registry's text, `{labels} value` by labels. */
async function samples (registry: Registry, name: string): Promise<Record<string, number>> {
  const found: Record<string, number> = {}
  for (const line of (await registry.metrics()).split('\n')) {
    const match = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line)
    if (match !== null) found[match[1] ?? ''] = Number(match[2])
  }
  return found
}

t.test('stapling: ocsp_staple_status is good with the seconds to nextUpdate; revoked at the responder, it says revoked and the seconds go', async t => {
  const cert = await issued('server')
  const registry = new Registry()
  // The whole hour of the response before its nextUpdate: fetched again each second (the least wait), so a revocation shows soon.
  const { app } = await startServer(t, { cert: cert.chain, key: cert.key, ca: root.certificate, mode: 'optional' }, { ocspStapling: { refreshBefore: 60 * 60_000, failMode: 'open' }, metrics: { registry } })
  t.same(await samples(registry, 'mtls_ocsp_staple_status'), { '{status="good"}': 1, '{status="revoked"}': 0, '{status="unknown"}': 0, '{status="none"}': 0 })
  const left = await samples(registry, 'mtls_ocsp_staple_next_update_seconds')
  const seconds = left[`{fingerprint256="${cert.fingerprint256}"}`] ?? 0
  const expected = ((app.mtls.status().ocsp?.nextUpdate?.getTime() ?? 0) - Date.now()) / 1000
  t.ok(seconds > 0 && Math.abs(seconds - expected) < 60, `seconds until status().ocsp.nextUpdate (${seconds}, about ${Math.round(expected)})`)
  t.same(Object.keys(left), [`{fingerprint256="${cert.fingerprint256}"}`], 'one sample, for the certificate stapled')

  intermediate.revoke(cert, { reason: 'keyCompromise' })
  await responder.refresh()
  await until(() => app.mtls.status().ocsp?.status === null, 'the next refresh, which finds the certificate revoked')
  t.same(await samples(registry, 'mtls_ocsp_staple_status'), { '{status="good"}': 0, '{status="revoked"}': 1, '{status="unknown"}': 0, '{status="none"}': 0 })
  t.same(await samples(registry, 'mtls_ocsp_staple_next_update_seconds'), {}, 'no sample while nothing is stapled')
})

t.test('stapling: a responder that is down is state none', async t => {
  const cert = await issued('server', await downResponder())
  const registry = new Registry()
  await startServer(t, { cert: cert.chain, key: cert.key, ca: root.certificate, mode: 'optional' }, { ocspStapling: { failMode: 'open' }, metrics: { registry } })
  t.same(await samples(registry, 'mtls_ocsp_staple_status'), { '{status="good"}': 0, '{status="revoked"}': 0, '{status="unknown"}': 0, '{status="none"}': 1 })
  t.same(await samples(registry, 'mtls_ocsp_staple_next_update_seconds'), {})
})

t.test('client revocation: cached certificates, lookups, responders, and the failing code until a lookup succeeds', async t => {
  const server = await issued('server')
  const registry = new Registry()
  const { port } = await startServer(t, { cert: server.chain, key: server.key, ca: root.certificate, mode: 'require' }, { revocation: { ocsp: true }, metrics: { registry } })
  const scrape = async (): Promise<Record<string, Record<string, number>>> => Object.fromEntries(await Promise.all(
    ['cached_certificates', 'pending_lookups', 'responders', 'failing'].map(async name => [name, await samples(registry, `mtls_revocation_ocsp_${name}`)] as const)))
  t.same(await scrape(), { cached_certificates: { '': 0 }, pending_lookups: { '': 0 }, responders: { '': 0 }, failing: {} }, 'nothing asked yet')

  const good = await issued('client')
  const revoked = await issued('client')
  intermediate.revoke(revoked)
  await responder.refresh()
  const as = (cert: IssuedCertificate): { ca: string, chain: string, key: string } => ({ ca: root.certificate, chain: cert.chain, key: cert.key })
  t.equal((await attempt(port, as(good))).status, 200)
  t.equal((await attempt(port, as(revoked))).status, null, 'the revoked certificate is refused')
  // The leaves and their intermediate (which names no responder) are cached.
  t.same(await scrape(), { cached_certificates: { '': 3 }, pending_lookups: { '': 0 }, responders: { '': 1 }, failing: {} })
  t.match(await registry.metrics(), /^mtls_handshake_failures_total\{reason="revoked"\} 1$/m, 'the refusal is counted where handshake refusals are')

  // A certificate whose responder is down: failing, by code, until a lookup succeeds.
  t.equal((await attempt(port, as(await issued('client', await downResponder())))).status, null)
  t.match(await scrape(), { responders: { '': 2 }, failing: { '{code="ERR_MTLS_OCSP_FETCH"}': 1 } })
  t.equal((await attempt(port, as(await issued('client')))).status, 200)
  const after = await scrape()
  t.same(after.failing, {}, 'a lookup that succeeds clears it')
  t.same(after.cached_certificates, { '': 4 })
  // good: two leaves and the intermediate (nothing to check); revoked: one; error: the one whose responder is down.
  t.same(await samples(registry, 'mtls_revocation_lookups_total'), { '{result="good"}': 3, '{result="revoked"}': 1, '{result="unknown"}': 0, '{result="error"}': 1 })
})

t.test('client revocation by CRL distribution points: the CRLs in use, seconds to their nextUpdate, and the failing code', async t => {
  const server = await issued('server')
  let crl = Buffer.alloc(0)
  let status = 200
  const point = createHttpServer((_, response) => { response.writeHead(status).end(crl) })
  await new Promise<void>(resolve => point.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { point.closeAllConnections(); point.close() })
  const url = `http://127.0.0.1:${(point.address() as { port: number }).port}/ca.crl`
  crl = Buffer.from((readPemBlocks(await intermediate.createCrl({ days: 1 }))[0] as { der: Uint8Array }).der)
  const registry = new Registry()
  const { port } = await startServer(t, { cert: server.chain, key: server.key, ca: root.certificate, mode: 'require' }, { revocation: { crlDistributionPoints: true }, metrics: { registry } })
  t.same(await samples(registry, 'mtls_revocation_crl_distribution_points'), { '': 0 })
  const cert = await intermediate.issue({ commonName: 'caller', usage: 'client', crlDistributionPoints: [url] })
  t.equal((await attempt(port, { ca: root.certificate, chain: cert.chain, key: cert.key })).status, 200)
  t.same(await samples(registry, 'mtls_revocation_crl_distribution_points'), { '': 1 })
  const seconds = (await samples(registry, 'mtls_revocation_crl_next_update_seconds'))[`{url="${url}"}`] as number
  t.ok(seconds > 0 && seconds <= 86_400, `about a day to the CRL's nextUpdate (${seconds} s)`)
  status = 503
  const other = await intermediate.issue({ commonName: 'caller', usage: 'client', crlDistributionPoints: [url.replace('ca.crl', 'other.crl')] })
  t.equal((await attempt(port, { ca: root.certificate, chain: other.chain, key: other.key })).status, null)
  t.same(await samples(registry, 'mtls_revocation_crl_failing'), { '{code="ERR_MTLS_CRL_FETCH"}': 1 })
})

t.test('without ocspStapling or revocation there are no OCSP metrics; they leave the registry when the app closes', async t => {
  const cert = await issued('server')
  const registry = new Registry()
  const { app } = await startServer(t, { cert: cert.chain, key: cert.key, ca: root.certificate, mode: 'optional' }, { metrics: { registry } })
  const text = await registry.metrics()
  t.match(text, /mtls_handshakes_total/)
  t.notMatch(text, /ocsp/)
  await app.close()

  const both = new Registry()
  const stapling = await startServer(t, { cert: cert.chain, key: cert.key, ca: root.certificate, mode: 'optional' }, { ocspStapling: true, revocation: { ocsp: true }, metrics: { registry: both, prefix: 'svc_' } })
  t.match(await both.metrics(), /^svc_ocsp_staple_status\{status="good"\} 1$/m)
  t.match(await both.metrics(), /^svc_revocation_ocsp_cached_certificates 0$/m)
  await stapling.app.close()
  t.notMatch(await both.metrics(), /svc_/, 'gone with the app')
})
