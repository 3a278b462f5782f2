// Federation through SPIFFE bundle endpoints, over real TLS on 127.0.0.1: one Fastify app serves its trust domain's
// bundle (bundle-endpoint plugin), another fetches it (https_web, https_spiffe) and trusts it by trust domain.
import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { hangLimit, startFastifyServer, until, type Teardown } from 'mtls-test-support'
import { request } from 'undici'
import { createMtlsAgent } from 'undici-mtls'
import bundleEndpointDefault, { bundleEndpoint } from '../src/bundle-endpoint.js'
import {
  FederatedBundleSource, WorkloadApiError, createBundleSource, createFederatedBundleSource, createX509Source, fetchBundle,
  formatSpiffeBundle, parseSpiffeBundle, type X509Source
} from '../src/index.js'
import { TestWorkloadApi, pemToDer, svidMessage } from './workload-api-server.js'

const PARTNER_TD = 'partner.example'
const PARTNER_SERVER = 'spiffe://partner.example/spire/server'
const PARTNER_CLIENT = 'spiffe://partner.example/production/order-service'
const PAYMENT = 'spiffe://mycompany.com/production/payment-service'
const pki = await createTestPki()
const partner = await createTestPki({ trustDomain: PARTNER_TD })
const partnerRoot = pemToDer(partner.ca)[0]!
const FAST = { initialMs: 20, maxMs: 200 }
const LIMIT = { timeout: hangLimit(60_000) }

async function x509Source (t: Teardown, spiffeId: string, issued: IssuedCertificate): Promise<X509Source> {
  const api = await TestWorkloadApi.start(t)
  api.setX509({ svids: [svidMessage(spiffeId, issued)] })
  const source = await createX509Source({ endpoint: api.endpoint, backoff: FAST, timeoutMs: hangLimit(30_000) })
  t.teardown(() => source.close())
  return source
}

/** The partner's bundle endpoint: https_web on an ordinary server certificate, or https_spiffe on its X509-SVID. */
async function partnerEndpoint (t: Teardown, profile: 'https_web' | 'https_spiffe') {
  const svid = await partner.intermediate.issue({ spiffeId: PARTNER_SERVER, usage: 'both' })
  const source = createBundleSource({ x509Source: await x509Source(t, PARTNER_SERVER, svid) })
  t.teardown(() => source.close())
  const https = profile === 'https_web'
    ? { cert: partner.server.chain, key: partner.server.key }
    : (await loadServerTls({ x509Source: source, mode: 'optional' })).httpsOptions
  const server = await startFastifyServer(t, { https }, async app => {
    // Bundle endpoint clients present no certificate: optional mode lets them in.
    if (profile === 'https_spiffe') await app.register(fastifyMtls, { tls: await loadServerTls({ x509Source: source, mode: 'optional' }) })
    await app.register(bundleEndpoint, { source, trustDomain: PARTNER_TD, path: '/bundle', refreshHintSeconds: 120 })
  })
  return { url: `${server.url}/bundle`, source }
}

t.test('https_web: the bundle served by one app is fetched by another, verified against the CA given', LIMIT, async t => {
  t.equal(bundleEndpointDefault, bundleEndpoint, 'default and named export are one plugin')
  const { url } = await partnerEndpoint(t, 'https_web')
  const response = await request(url, { dispatcher: undefined, method: 'GET' }).catch(err => err as Error)
  t.ok(response instanceof Error, 'Node\'s default roots do not know the test CA')
  const bundle = await fetchBundle({ url, trustDomain: PARTNER_TD, profile: 'https_web', ca: partner.ca })
  t.equal(bundle.trustDomain, PARTNER_TD)
  t.same(bundle.x509Authorities.map(der => der.toString('hex')), [partnerRoot.toString('hex')])
  t.equal(bundle.refreshHintSeconds, 120)
  t.ok(bundle.sequence! >= Math.floor(Date.now() / 1000) - 60, 'the sequence is the second of the last change')
  const again = await fetchBundle({ url, trustDomain: PARTNER_TD, profile: 'https_web', ca: [partner.ca] })
  t.equal(again.sequence, bundle.sequence, 'unchanged bundle, unchanged sequence')

  const untrusted = await fetchBundle({ url, trustDomain: PARTNER_TD, profile: 'https_web', ca: pki.ca }).catch(err => err as WorkloadApiError)
  t.ok(untrusted instanceof WorkloadApiError)
  t.equal((untrusted as WorkloadApiError).code, 'ERR_MTLS_BUNDLE_ENDPOINT_UNTRUSTED', 'a certificate from a CA not given is refused')
  const notFound = await fetchBundle({ url: url.replace('/bundle', '/nothing'), trustDomain: PARTNER_TD, profile: 'https_web', ca: partner.ca }).catch(err => err as WorkloadApiError)
  t.match(notFound, { code: 'ERR_MTLS_BUNDLE_FETCH_FAILED', message: /HTTP 404/ })
})

t.test('https_spiffe: the endpoint is authenticated by its SPIFFE ID against the bundle held; another ID is refused', LIMIT, async t => {
  const { url } = await partnerEndpoint(t, 'https_spiffe')
  const held = parseSpiffeBundle(formatSpiffeBundle({ x509Authorities: [partnerRoot] }), PARTNER_TD)
  const bundle = await fetchBundle({ url, trustDomain: PARTNER_TD, profile: 'https_spiffe', endpointSpiffeId: PARTNER_SERVER, bundle: held })
  t.ok(bundle.x509Authorities[0]!.equals(partnerRoot))
  const raw = await request(url, { dispatcher: undefined }).catch(() => null)
  t.equal(raw, null, 'not a Web PKI server')

  const wrongId = await fetchBundle({ url, trustDomain: PARTNER_TD, profile: 'https_spiffe', endpointSpiffeId: 'spiffe://partner.example/impostor', bundle: [partnerRoot] })
    .catch(err => err as WorkloadApiError)
  t.match(wrongId, { code: 'ERR_MTLS_BUNDLE_ENDPOINT_UNTRUSTED', message: /presented "spiffe:\/\/partner.example\/spire\/server", not "spiffe:\/\/partner.example\/impostor"/ })
  const wrongBundle = await fetchBundle({ url, trustDomain: PARTNER_TD, profile: 'https_spiffe', endpointSpiffeId: 'spiffe://mycompany.com/spire/server', bundle: pemToDer(pki.ca) })
    .catch(err => err as WorkloadApiError)
  t.match(wrongBundle, { code: 'ERR_MTLS_BUNDLE_ENDPOINT_UNTRUSTED' }, 'a chain to a bundle we do not hold for that trust domain is refused')

  // Self-served: the first bundle comes from the one given, every later fetch is verified with the one fetched before.
  const source = await createFederatedBundleSource({ url, trustDomain: PARTNER_TD, profile: 'https_spiffe', endpointSpiffeId: PARTNER_SERVER, bundle: held, minRefreshMs: 20 })
  t.teardown(() => source.close())
  t.equal(source.status().profile, 'https_spiffe')
  t.ok(source.current.x509Authorities[0]!.equals(partnerRoot))
})

t.test('bad options of fetchBundle and createFederatedBundleSource are refused with the option named', async t => {
  const base = { url: 'https://127.0.0.1:1/b', trustDomain: PARTNER_TD }
  const cases: Array<[unknown, RegExp]> = [
    [null, /options must be an object/],
    [{ ...base, profile: 'http' }, /profile must be/],
    [{ ...base, profile: 'https_web', endpointSpiffeId: PARTNER_SERVER }, /endpointSpiffeId/],
    [{ ...base, profile: 'https_web', url: 'not a url' }, /is not a URL/],
    [{ ...base, profile: 'https_web', url: 'http://127.0.0.1/' }, /must be https:/],
    [{ ...base, profile: 'https_web', trustDomain: 'A B' }, /trustDomain/],
    [{ ...base, profile: 'https_web', maxBytes: 0 }, /maxBytes/],
    [{ ...base, profile: 'https_web', ca: [] }, /ca must be/],
    [{ ...base, profile: 'https_spiffe', endpointSpiffeId: 'nope', bundle: [partnerRoot] }, /endpointSpiffeId/],
    [{ ...base, profile: 'https_spiffe', endpointSpiffeId: PARTNER_SERVER }, /bundle .* is required/],
    [{ ...base, profile: 'https_spiffe', endpointSpiffeId: PARTNER_SERVER, bundle: [] }, /non-empty list/],
    [{ ...base, profile: 'https_spiffe', endpointSpiffeId: PARTNER_SERVER, bundle: parseSpiffeBundle('{"keys":[]}', 'other.example') }, /bundle is of "other.example"/],
    [{ ...base, profile: 'https_spiffe', endpointSpiffeId: PARTNER_SERVER, bundle: parseSpiffeBundle('{"keys":[]}', PARTNER_TD) }, /no X.509 authority/]
  ]
  for (const [options, message] of cases) {
    await t.rejects(fetchBundle(options as Parameters<typeof fetchBundle>[0]), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION', message }, String(message))
  }
  const web = { ...base, profile: 'https_web' as const }
  t.throws(() => new FederatedBundleSource({ ...web, minRefreshMs: 0 }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION', message: /minRefreshMs/ })
  t.throws(() => new FederatedBundleSource({ ...web, minRefreshMs: 10, maxRefreshMs: 5 }), { message: /must not exceed/ })
  await t.rejects(createFederatedBundleSource({ ...web, startTimeoutMs: -1 }), { message: /timeoutMs/ })
})

/** An endpoint whose document the test sets, counting the fetches. */
async function scriptedEndpoint (t: Teardown) {
  const state = { document: formatSpiffeBundle({ x509Authorities: [partnerRoot], sequence: 5, refreshHintSeconds: 0.05 }), status: 200, fetches: 0 }
  const server = await startFastifyServer(t, { https: { cert: pki.server.chain, key: pki.server.key } }, app => {
    app.get('/bundle', async (_request, reply) => {
      state.fetches++
      return await reply.code(state.status).header('content-type', 'application/json').send(state.document)
    })
  })
  return { state, url: `${server.url}/bundle` }
}

t.test('a federated source refreshes as the hint says, refuses a sequence going back, and keeps the last good bundle through failures', LIMIT, async t => {
  const { state, url } = await scriptedEndpoint(t)
  const source = await createFederatedBundleSource({ url, trustDomain: PARTNER_TD, profile: 'https_web', ca: pki.ca, minRefreshMs: 20, maxRefreshMs: 60_000, backoff: FAST })
  t.teardown(() => source.close())
  const errors: WorkloadApiError[] = []
  source.on('error', error => errors.push(error))
  t.equal(source.current.sequence, 5)
  const fetched = state.fetches
  // A 50 ms hint: several fetches come where the default (5 minutes) would give none.
  await until(() => state.fetches >= fetched + 3, 'refreshes at the hint')
  t.ok(source.status().connected)

  const otherRoot = pemToDer(pki.ca)[0]!
  const updates: number[] = []
  source.on('update', bundle => updates.push(bundle.sequence!))
  state.document = formatSpiffeBundle({ x509Authorities: [otherRoot], sequence: 6, refreshHintSeconds: 0.05 })
  await until(() => updates.includes(6), 'the new bundle')
  t.ok(source.current.x509Authorities[0]!.equals(otherRoot))

  state.document = formatSpiffeBundle({ x509Authorities: [partnerRoot], sequence: 4, refreshHintSeconds: 0.05 })
  await until(() => errors.some(error => error.code === 'ERR_MTLS_BUNDLE_SEQUENCE_REGRESSION'), 'the regression refused')
  t.equal(source.current.sequence, 6, 'the bundle in force stays')
  t.ok(source.current.x509Authorities[0]!.equals(otherRoot))
  state.document = formatSpiffeBundle({ x509Authorities: [partnerRoot], refreshHintSeconds: 0.05 })
  await until(() => errors.filter(error => error.code === 'ERR_MTLS_BUNDLE_SEQUENCE_REGRESSION').length >= 3, 'no sequence after one: refused too')
  t.equal(source.current.sequence, 6)

  state.status = 503
  const failuresFrom = errors.length
  await until(() => errors.slice(failuresFrom).some(error => error.code === 'ERR_MTLS_BUNDLE_FETCH_FAILED'), 'the endpoint failing')
  t.equal(source.current.sequence, 6, 'the last good bundle serves on')
  t.ok(source.status().failures > 0)
  t.equal(source.status().connected, false)
  state.document = '{"keys": ['
  state.status = 200
  await until(() => errors.some(error => error.code === 'ERR_MTLS_BUNDLE_NOT_JSON'), 'a malformed document refused')
  state.document = formatSpiffeBundle({ x509Authorities: [partnerRoot], sequence: 9, refreshHintSeconds: 3600 })
  await until(() => source.status().sequence === 9, 'back')
  t.equal(source.status().failures, 0)
  t.equal(source.status().lastError, null)
  // A one-hour hint within a 60 s ceiling: the next fetch is due within the ceiling.
  t.ok(source.status().nextRefresh!.getTime() <= Date.now() + 60_000)
  source.close()
  t.equal(source.status().closed, true)
  t.throws(() => source.current, { code: 'ERR_MTLS_WORKLOAD_CLOSED' })
})

t.test('a hint below the floor is fetched at the floor; the first fetch failing past the start timeout rejects', LIMIT, async t => {
  const { state, url } = await scriptedEndpoint(t)
  const source = await createFederatedBundleSource({ url, trustDomain: PARTNER_TD, profile: 'https_web', ca: pki.ca, minRefreshMs: 60_000 })
  t.teardown(() => source.close())
  const next = source.status().nextRefresh!.getTime() - Date.now()
  t.ok(next > 50_000, `a 50 ms hint waits the 60 s floor (${next} ms)`)
  t.equal(state.fetches, 1)
  state.status = 500
  await t.rejects(createFederatedBundleSource({ url, trustDomain: PARTNER_TD, profile: 'https_web', ca: pki.ca, startTimeoutMs: 300, backoff: FAST }),
    { code: 'ERR_MTLS_WORKLOAD_TIMEOUT', message: /HTTP 500/ })
  const pending = new FederatedBundleSource({ url, trustDomain: PARTNER_TD, profile: 'https_web', ca: pki.ca })
  t.throws(() => pending.current, { message: /no bundle of "partner.example" yet/ })
  pending.close()
  pending.close()
})

t.test('a federated trust domain\'s client is refused before federation, accepted after, and refused once removed', LIMIT, async t => {
  const { url } = await partnerEndpoint(t, 'https_web')
  const federated = await createFederatedBundleSource({ url, trustDomain: PARTNER_TD, profile: 'https_web', ca: partner.ca })
  t.teardown(() => federated.close())
  const own = await x509Source(t, PAYMENT, await pki.intermediate.issue({ spiffeId: PAYMENT, usage: 'both' }))
  const bundles = createBundleSource({ x509Source: own })
  t.teardown(() => bundles.close())
  const tls = await loadServerTls({ x509Source: bundles, mode: 'require' })
  const service = await startFastifyServer(t, { https: tls.httpsOptions }, async app => {
    await app.register(fastifyMtls, { tls })
    app.get('/', async () => 'ok')
  })
  const partnerCall = async (): Promise<number> => {
    const agent = await createMtlsAgent({ cert: partner.orderService.chain, key: partner.orderService.key, ca: [pki.ca, partner.ca], verifyHostname: false, server: PAYMENT })
    try {
      const response = await request(service.url, { dispatcher: agent })
      await response.body.dump()
      return response.statusCode
    } catch {
      return 0
    } finally {
      await agent.close()
    }
  }
  t.equal(await partnerCall(), 0, 'not federated: refused at the handshake')
  bundles.addFederation(federated)
  t.same(bundles.status().federation, [{ trustDomain: PARTNER_TD, inForce: true, lastError: null }])
  t.ok(bundles.getX509Bundle(PARTNER_TD)![0]!.equals(partnerRoot))
  t.equal(bundles.trustDomain, 'mycompany.com')
  await until(() => service.app.mtls.status().authorities.length === 2, 'the federated bundle in force')
  t.equal(await partnerCall(), 200, `${PARTNER_CLIENT} is accepted`)
  t.throws(() => bundles.addFederation(federated), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION', message: /federated already/ })
  t.equal(bundles.removeFederation(PARTNER_TD), true)
  t.equal(bundles.removeFederation(PARTNER_TD), false)
  await until(() => service.app.mtls.status().authorities.length === 1, 'the federated bundle removed')
  t.equal(await partnerCall(), 0, 'removed: refused again')
})

t.test('a federated bundle never replaces our own trust domain\'s', LIMIT, async t => {
  const { state, url } = await scriptedEndpoint(t)
  const own = await x509Source(t, PAYMENT, await pki.intermediate.issue({ spiffeId: PAYMENT, usage: 'both' }))
  const ours = new FederatedBundleSource({ url, trustDomain: 'mycompany.com', profile: 'https_web', ca: pki.ca })
  t.teardown(() => ours.close())
  t.throws(() => createBundleSource({ x509Source: own, federation: [ours] }), { code: 'ERR_MTLS_BUNDLE_OWN_TRUST_DOMAIN' })
  await until(() => state.fetches > 0 && ours.status().lastFetch !== null, 'a bundle fetched for our trust domain')
  const bundles = createBundleSource({ x509Source: own })
  t.teardown(() => bundles.close())
  t.ok(bundles.x509Bundles.get('mycompany.com')![0]!.equals(pemToDer(pki.ca)[0]!), 'ours is the agent\'s')
  t.same(bundles.jwtBundles.size, 0)
  t.equal(bundles.getJwtBundle(PARTNER_TD), undefined)
  t.equal(bundles.status().connected, true)
  bundles.close()
  bundles.close()
  t.throws(() => bundles.x509Bundles, { code: 'ERR_MTLS_WORKLOAD_CLOSED' })
  t.equal(bundles.status().closed, true)
  t.throws(() => createBundleSource({ x509Source: 1 as never }), { message: /x509Source must be/ })
  t.throws(() => createBundleSource({ jwtSource: 1 as never }), { message: /jwtSource must be/ })
  t.throws(() => createBundleSource({ federation: 1 as never }), { message: /federation must be/ })
  t.throws(() => createBundleSource({ federation: [{} as never] }), { message: /FederatedBundleSource/ })
  const none = createBundleSource()
  t.throws(() => none.materialInput, { message: /needs an x509Source/ })
  t.same(none.status(), { endpoint: '', connected: true, lastUpdate: null, reconnects: 0, lastError: null, closed: false, trustDomain: null, federation: [] })
})

t.test('the bundle endpoint: bad options fail ready(), and a trust domain it holds no bundle of answers 503', LIMIT, async t => {
  const source = createBundleSource()
  const bad: Array<[object, RegExp]> = [
    [{ source, trustDomain: PARTNER_TD, nope: 1 }, /nope/],
    [{ source: {}, trustDomain: PARTNER_TD }, /source must be/],
    [{ source, trustDomain: 'A B' }, /trustDomain/],
    [{ source, trustDomain: PARTNER_TD, path: 'bundle' }, /path must start/],
    [{ source, trustDomain: PARTNER_TD, refreshHintSeconds: 0 }, /refreshHintSeconds/]
  ]
  for (const [options, message] of bad) {
    await t.rejects(startFastifyServer(t, { https: { cert: pki.server.chain, key: pki.server.key } }, async app => {
      await app.register(bundleEndpoint, options as never)
    }), { code: 'FST_MTLS_BUNDLE_ENDPOINT_INVALID_OPTION', message })
  }
  const server = await startFastifyServer(t, { https: { cert: pki.server.chain, key: pki.server.key } }, async app => {
    await app.register(bundleEndpoint, { source, trustDomain: PARTNER_TD })
  })
  const fetched = await fetchBundle({ url: `${server.url}/`, trustDomain: PARTNER_TD, profile: 'https_web', ca: pki.ca }).catch(err => err as Error)
  t.match(fetched, { code: 'ERR_MTLS_BUNDLE_FETCH_FAILED', message: /HTTP 503/ })
  source.close()
  const closed = await fetchBundle({ url: `${server.url}/`, trustDomain: PARTNER_TD, profile: 'https_web', ca: pki.ca }).catch(err => err as Error)
  t.match(closed, { message: /HTTP 503/ }, 'a closed source: 503')
})

t.test('JWT authorities of a federated trust domain are merged, served again by a bundle endpoint, and its errors reach the bundle source', LIMIT, async t => {
  const { state, url } = await scriptedEndpoint(t)
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  state.document = formatSpiffeBundle({ jwtAuthorities: new Map([['k1', publicKey]]), sequence: 1, refreshHintSeconds: 0.05 })
  const federated = await createFederatedBundleSource({ url, trustDomain: PARTNER_TD, profile: 'https_web', ca: pki.ca, minRefreshMs: 20, backoff: FAST })
  t.teardown(() => federated.close())
  const bundles = createBundleSource({ federation: [federated] })
  const errors: WorkloadApiError[] = []
  bundles.on('error', error => errors.push(error))
  t.ok(bundles.getJwtBundle(PARTNER_TD)!.keys.get('k1')!.equals(publicKey))
  t.same(bundles.getX509Bundle(PARTNER_TD), [], 'no X.509 authority')
  const server = await startFastifyServer(t, { https: { cert: pki.server.chain, key: pki.server.key } }, async app => {
    await app.register(bundleEndpoint, { source: bundles, trustDomain: PARTNER_TD })
  })
  const served = await fetchBundle({ url: `${server.url}/`, trustDomain: PARTNER_TD, profile: 'https_web', ca: pki.ca })
  t.ok(served.jwtAuthorities.keys.get('k1')!.equals(publicKey), 'served again as fetched')
  // The partner rotates its key: the federated source's update reaches the bundle source, which says so.
  const rotated = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey
  let updates = 0
  bundles.on('update', () => { updates++ })
  state.document = formatSpiffeBundle({ jwtAuthorities: new Map([['k2', rotated]]), sequence: 2, refreshHintSeconds: 0.05 })
  await until(() => updates > 0, 'the bundle source updated')
  t.ok(bundles.getJwtBundle(PARTNER_TD)!.keys.get('k2')!.equals(rotated), 'the rotated key is in force')
  t.equal(bundles.getJwtBundle(PARTNER_TD)!.keys.has('k1'), false, 'the old one is gone')
  state.status = 503
  await until(() => errors.some(error => error.code === 'ERR_MTLS_BUNDLE_FETCH_FAILED'), 'the federated source\'s error')
  t.match(bundles.status().federation, [{ trustDomain: PARTNER_TD, inForce: true, lastError: { code: 'ERR_MTLS_BUNDLE_FETCH_FAILED' } }])
  bundles.close()
  t.equal(federated.listenerCount('update'), 0, 'closed: no longer listening')
  // A JWT-only bundle source served for a trust domain it holds only X.509 authorities of: the agent's bundles.
  const jwtOnly = createBundleSource()
  const empty = await startFastifyServer(t, { https: { cert: pki.server.chain, key: pki.server.key } }, async app => {
    await app.register(bundleEndpoint, { source: jwtOnly, trustDomain: 'mycompany.com' })
  })
  await t.rejects(fetchBundle({ url: `${empty.url}/`, trustDomain: 'mycompany.com', profile: 'https_web', ca: pki.ca }), { message: /HTTP 503/ })
})
