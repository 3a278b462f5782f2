// loadServerTls({ x509Source }): material pushed by a feed (spiffe-workload-api's X509Source is one; its own
// tests run this against a Workload API) goes through the reload protocol like a file change.
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { PemFeed, capturedLogger, startFastifyServer, until } from 'mtls-test-support'
import type { CertificateSummary } from 'mtls-core'
import { LifetimeWarnings } from '../src/expiry-warnings.js'
import { fastifyMtls, loadServerTls, type ServerTlsOptions } from '../src/index.js'
import { attempt, startServer } from './helpers.js'

const pki = await createTestPki()
const client = { chain: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca }
const feedMaterial = { cert: pki.server.chain, key: pki.server.key, trustDomains: { 'mycompany.com': pki.ca } }

t.test('x509Source beside certificate material, or something that is no feed, is refused', async t => {
  const feed = new PemFeed(feedMaterial)
  await t.rejects(loadServerTls({ x509Source: feed, certFile: '/etc/tls/tls.crt', ca: pki.ca }), {
    code: 'FST_MTLS_INVALID_OPTION',
    message: /give x509Source or certificate material \(certFile, ca\), not both/
  })
  await t.rejects(loadServerTls({ x509Source: { materialInput: feedMaterial } } as unknown as ServerTlsOptions), {
    code: 'ERR_MTLS_MATERIAL_OPTION_INVALID',
    message: /x509Source must be a material feed/
  })
  feed.close()
  await t.rejects(loadServerTls({ x509Source: feed }), { code: 'ERR_TEST_FEED_CLOSED' }, 'a feed without material: its own error')
})

t.test('pushed material is applied to new connections and reported; a refused push keeps what serves, and feed failures are logged once per outage', async t => {
  const feed = new PemFeed(feedMaterial)
  const log = capturedLogger('debug')
  const { app, port, serverTls } = await startServer(t, { x509Source: feed }, {}, { logger: log.logger })
  t.equal((await attempt(port, client)).status, 200)
  t.match(app.mtls.status().x509Source, { endpoint: 'test://pem-feed', connected: true, lastError: null, reconnects: 0, closed: false })
  t.equal(app.mtls.status().files.length, 0, 'no files')

  const rotated = await pki.intermediate.issue({ spiffeId: 'spiffe://mycompany.com/production/payment-service', dnsNames: ['localhost'], usage: 'server' })
  feed.push({ ...feedMaterial, cert: rotated.chain, key: rotated.key })
  await until(() => app.mtls.status().certificate.fingerprint256 === rotated.fingerprint256, 'the pushed material')
  t.equal((await attempt(port, client)).serverFingerprint, rotated.fingerprint256, 'new connections present the pushed certificate')

  feed.push({ ...feedMaterial, cert: pki.expired.chain, key: pki.expired.key })
  await until(() => app.mtls.stats().reloads.failed === 1, 'the refusal')
  t.equal(app.mtls.status().certificate.fingerprint256, rotated.fingerprint256, 'the refused push changed nothing')
  t.match(app.mtls.status().lastReload, { ok: false, error: { code: 'ERR_MTLS_MATERIAL_EXPIRED' } })

  feed.connected = false
  feed.fail(Object.assign(new Error('agent gone'), { code: 'ERR_TEST_GONE' }))
  feed.fail(new Error('still gone'))
  t.match(app.mtls.status().x509Source, { connected: false, lastError: { code: 'ERR', message: 'still gone' } }, 'an error without a code is ERR')
  const warnings = log.lines.filter(line => line.level === 40 && String(line.msg).startsWith('x509Source: '))
  t.match(warnings, [{ code: 'ERR_TEST_GONE', endpoint: 'test://pem-feed', msg: 'x509Source: agent gone; the certificate in force keeps serving meanwhile' }], 'one warning for the outage')
  t.ok(log.lines.some(line => line.level === 20 && line.msg === 'x509Source: still failing (2 attempts): still gone'), 'later failures at debug')
  feed.connected = true
  feed.push({ ...feedMaterial, cert: rotated.chain, key: rotated.key })
  await until(() => log.lines.some(line => line.msg === 'x509Source: receiving again after 2 failed attempts'), 'the info line')
  t.equal((await attempt(port, client)).status, 200)
  feed.fail(new Error('a blip'))
  feed.push({ ...feedMaterial, cert: rotated.chain, key: rotated.key })
  await until(() => log.lines.some(line => line.msg === 'x509Source: receiving again after 1 failed attempt'), 'the info line after one failure')

  feed.close()
  feed.fail(Object.assign(new Error('refused for good'), { code: 'ERR_TEST_REFUSED' }))
  t.ok(log.lines.some(line => line.level === 50 && line.code === 'ERR_TEST_REFUSED' && /^x509Source: refused for good; the source no longer receives updates, the certificate in force serves until \d{4}-/.test(String(line.msg))), 'a feed that gave up: an error line')

  await app.close()
  const pushes = app.mtls.stats().reloads
  feed.emit('update')
  // Joins the reload the update would have started, had anything still listened: it has ended by then.
  await serverTls.source.reload().catch(() => {})
  t.same(app.mtls.stats().reloads, pushes, 'a closed app no longer listens')
})

t.test('trust kept by trust domain: a federated CA speaking for our trust domain is refused in require mode, and left unverified in optional mode', async t => {
  const partner = await createTestPki({ trustDomain: 'partner.example' })
  const forged = await partner.intermediate.issue({ spiffeId: 'spiffe://mycompany.com/production/order-service', usage: 'client' })
  const trustDomains = { 'mycompany.com': pki.ca, 'partner.example': partner.ca }
  const required = await startServer(t, { x509Source: new PemFeed({ ...feedMaterial, trustDomains }) })
  t.equal((await attempt(required.port, { ...forged, ca: pki.ca })).status, null, 'refused')
  t.equal(required.app.mtls.stats().failures.unknown_ca, 1, 'counted as a CA not trusted for it')
  t.equal((await attempt(required.port, { ...partner.orderService, ca: pki.ca })).status, 200, 'the partner\'s own SPIFFE ID passes')
  t.equal((await attempt(required.port, client)).status, 200, 'ours too')

  const optionalTls = await loadServerTls({ x509Source: new PemFeed({ ...feedMaterial, trustDomains }), mode: 'optional' })
  const optional = await startFastifyServer(t, { https: optionalTls.httpsOptions }, async app => {
    await app.register(fastifyMtls, { tls: optionalTls })
    app.get('/trust', async request => {
      const connection = app.mtls.connection(request.raw.socket)
      return { verified: connection?.verified, refusal: connection?.refusal }
    })
  })
  const forgedAttempt = await attempt(optional.port, { ...forged, ca: pki.ca }, {}, '/trust')
  t.same(JSON.parse(forgedAttempt.body), { verified: false, refusal: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED' }, 'OpenSSL let it through; its record says why it is not taken')
  t.equal(optional.app.mtls.stats().unverified, 1, 'counted as unverified')
  t.same(JSON.parse((await attempt(optional.port, { ...partner.orderService, ca: pki.ca }, {}, '/trust')).body), { verified: true, refusal: null })
})

t.test('pushed certificates are judged by their lifetime, not days left: a late rotation warns once per certificate', async t => {
  const fresh = await pki.intermediate.issue({ spiffeId: 'spiffe://mycompany.com/production/payment-service', dnsNames: ['localhost'], usage: 'server', notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000) })
  const feed = new PemFeed({ ...feedMaterial, cert: fresh.chain, key: fresh.key })
  const log = capturedLogger('debug')
  const { app } = await startServer(t, { x509Source: feed }, {}, { logger: log.logger })
  const expiryLines = (): Array<Record<string, unknown>> => log.lines.filter(line => /server certificate (expire|has passed)/.test(String(line.msg)))
  t.same(expiryLines(), [], 'an hour-long SVID just issued: nothing to say (days thresholds said "expires in 0 days" at every rotation)')

  // 3 minutes long, 2 of them gone: past 2/3 of its lifetime, and it expires within the test.
  const expiresSoon = new Date(Date.now() + 60_000)
  const late = await pki.intermediate.issue({ spiffeId: 'spiffe://mycompany.com/production/payment-service', dnsNames: ['localhost'], usage: 'server', notBefore: new Date(Date.now() - 120_000), notAfter: expiresSoon })
  feed.push({ ...feedMaterial, cert: late.chain, key: late.key })
  await until(() => app.mtls.status().certificate.fingerprint256 === late.fingerprint256, 'the late one applied')
  await until(() => expiryLines().length === 1, 'the warning')
  t.match(expiryLines()[0], { level: 40, fingerprint256: late.fingerprint256, msg: `the server certificate has passed 2/3 of its lifetime (it expires at ${expiresSoon.toISOString().replace(/\.\d+Z$/, '.000Z')}) and the feed sent no newer one: its rotation is late` })
  // A bundle update keeps the certificate: reloaded, and nothing more said about it.
  const reloads = app.mtls.stats().reloads.succeeded
  feed.push({ ...feedMaterial, cert: late.chain, key: late.key, trustDomains: { 'mycompany.com': pki.ca, 'partner.example': pki.otherCaAuthority.certificate } })
  await until(() => app.mtls.stats().reloads.succeeded > reloads, 'the bundle update')
  t.equal(expiryLines().length, 1, 'once per certificate')
})

t.test('a pushed certificate that lives a year sets no timer longer than Node takes (a longer one runs after 1 ms: a busy loop)', async t => {
  const warnings: Error[] = []
  const record = (warning: Error): void => { warnings.push(warning) }
  process.on('warning', record)
  t.teardown(() => { process.off('warning', record) })
  const yearLong = await pki.intermediate.issue({ spiffeId: 'spiffe://mycompany.com/production/payment-service', dnsNames: ['localhost'], usage: 'server', days: 365 })
  const feed = new PemFeed({ ...feedMaterial, cert: yearLong.chain, key: yearLong.key })
  const { app } = await startServer(t, { x509Source: feed })
  // An overflowing timer fires within a millisecond and warns each time: a few turns of the event loop show it.
  for (let turn = 0; turn < 5; turn++) await new Promise(resolve => setTimeout(resolve, 5))
  t.equal(app.mtls.status().certificate.fingerprint256, yearLong.fingerprint256)
  t.same(warnings.filter(warning => warning.name === 'TimeoutOverflowWarning').map(warning => warning.message), [], 'no timer overflows')
})

t.test('LifetimeWarnings: at 2/3 of the lifetime a warning, at the end an error, each once; the timer is set for the next of them', async t => {
  const start = Date.parse('2026-12-07T10:00:00Z')
  const cert = { fingerprint256: 'AA', notBefore: new Date(start), notAfter: new Date(start + 3_600_000) } as unknown as CertificateSummary
  const warnings = new LifetimeWarnings()
  t.equal(warnings.check(cert, start + 1_000), null, 'young: nothing')
  t.equal(warnings.nextCheck(cert, start + 1_000), 2_400_000 - 1_000 + 1, 'the next moment is 2/3 of the hour, 40 minutes in (a millisecond past it)')
  t.match(warnings.check(cert, start + 2_400_000), { level: 'warn', message: /passed 2\/3 of its lifetime \(it expires at 2026-12-07T11:00:00.000Z\)/ })
  t.equal(warnings.check(cert, start + 2_500_000), null, 'said once')
  t.equal(warnings.nextCheck(cert, start + 2_500_000), 1_100_000 + 1, 'then the end')
  t.match(warnings.check(cert, start + 3_600_000), { level: 'error', message: /expired at 2026-12-07T11:00:00.000Z and the feed sent no newer one/ })
  t.equal(warnings.check(cert, start + 3_700_000), null, 'said once')
  t.equal(warnings.nextCheck(cert, start + 3_700_000), null, 'nothing left to wait for')
  const year = { fingerprint256: 'BB', notBefore: new Date(start), notAfter: new Date(start + 365 * 86_400_000) } as unknown as CertificateSummary
  t.equal(warnings.nextCheck(year, start), 2 ** 31 - 1, 'a moment beyond what a timer takes: the longest timer, which checks and sets the next')
})
