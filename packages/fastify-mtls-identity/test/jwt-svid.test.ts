// jwtSvid: an identity from a JWT-SVID bearer token, validated by spiffe-workload-api's JwtSource against the JWT
// bundles of a real (test) Workload API over gRPC; real TLS servers, real undici clients.
import t from 'tap'
import Fastify from 'fastify'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { fastifyMtlsAuthz } from 'fastify-mtls-authz'
import { createTestPki } from 'mtls-pki'
import { startFastifyServer, until, type Teardown } from 'mtls-test-support'
import { request } from 'undici'
import { fastifyMtlsIdentity, type FastifyMtlsIdentityOptions } from '../src/index.js'
import { agentFor } from './helpers.js'
import { jwksOf } from 'spiffe-workload-api/testing'
import { jwtTestKeys, workloadApi } from './jwt-helpers.js'

const pki = await createTestPki()
const ORDER = 'spiffe://mycompany.com/production/order-service'
const INVENTORY = 'spiffe://mycompany.com/production/inventory-service'
const PAYMENT = 'spiffe://mycompany.com/production/payment-service'
const { keyA, keyB, signJwt, claims, now } = jwtTestKeys

interface Who { id: string | null, source: string | null, error: string | null }

/** fastify-mtls (optional mode) + identity with jwtSvid + authz: /charge needs payments:charge (order-service), /who is public. */
async function startServer (t: Teardown, source: FastifyMtlsIdentityOptions['jwtSvid'] extends infer O ? O : never, seen: Who[] = []): Promise<string> {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  const { url } = await startFastifyServer(t, { https: serverTls.httpsOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls })
    // A hook before the plugin's own reads the identity before the token is judged: never the certificate's alone.
    app.addHook('onRequest', async request => { if (request.url === '/early') seen.push({ id: request.peerIdentity?.id ?? null, source: null, error: request.peerCertificateError }) })
    await app.register(fastifyMtlsIdentity, { jwtSvid: source })
    await app.register(fastifyMtlsAuthz, { policy: { acl: [{ identities: [ORDER], roles: ['payments:charge'] }], defaultPolicy: 'deny' } })
    const who = async (request: { peerIdentity: { id: string, source: string } | null, peerCertificateError: string | null }): Promise<Who> =>
      ({ id: request.peerIdentity?.id ?? null, source: request.peerIdentity?.source ?? null, error: request.peerCertificateError })
    app.get('/who', { config: { mtls: { public: true } } }, who)
    app.get('/early', { config: { mtls: { public: true } } }, who)
    app.post('/charge', { config: { mtls: { roles: ['payments:charge'] } } }, async () => 'charged')
  })
  return url
}

async function get (url: string, path: string, headers: string[] = [], cert?: { chain: string, key: string }, method = 'GET'): Promise<{ status: number, body: Who & { code?: string } }> {
  const response = await request(`${url}${path}`, { method: method as 'GET', headers, dispatcher: agentFor(t, pki, cert) })
  const text = await response.body.text()
  return { status: response.statusCode, body: text === 'charged' ? { id: null, source: null, error: null } : JSON.parse(text) }
}

t.test('a JWT-SVID from the Workload API identifies a caller without a certificate; fastify-mtls-authz policies apply unchanged', async t => {
  const { source } = await workloadApi(t)
  const url = await startServer(t, { source, audience: PAYMENT })
  const { token } = await source.fetchJWTSVID({ audience: PAYMENT })
  t.same((await get(url, '/who', ['authorization', `Bearer ${token}`])).body, { id: ORDER, source: 'jwt-svid', error: null })
  t.equal((await get(url, '/charge', ['authorization', `Bearer ${token}`], undefined, 'POST')).status, 200, 'the role route allows the token\'s SPIFFE ID')
  t.same((await get(url, '/who')).body, { id: null, source: null, error: 'ERR_MTLS_JWT_SVID_MISSING' }, 'neither certificate nor token')
  const refused = await get(url, '/charge', [], undefined, 'POST')
  t.equal(refused.status, 401)
  t.equal(refused.body.code, 'FST_MTLS_AUTHZ_PEER_REQUIRED')
})

t.test('a verified certificate wins: the same SPIFFE ID in the token is the certificate\'s identity, another is a 401', async t => {
  const { source } = await workloadApi(t)
  const url = await startServer(t, { source, audience: PAYMENT })
  const { token } = await source.fetchJWTSVID({ audience: PAYMENT })
  const bearer = ['authorization', `Bearer ${token}`]
  t.same((await get(url, '/who', bearer, pki.orderService)).body, { id: ORDER, source: 'tls', error: null })
  t.same((await get(url, '/who', bearer, pki.inventoryService)).body, { id: null, source: null, error: 'ERR_MTLS_JWT_SVID_MISMATCH' }, 'a route without requirements sees no identity and the reason')
  const charge = await get(url, '/charge', bearer, pki.inventoryService, 'POST')
  t.equal(charge.status, 401, 'certificate and token naming different SPIFFE IDs: refused')
  t.match(charge.body, { code: 'FST_MTLS_AUTHZ_PEER_REQUIRED' })
  t.same((await get(url, '/who', [], pki.inventoryService)).body, { id: INVENTORY, source: 'tls', error: null }, 'the certificate alone still serves')
  t.same((await get(url, '/who', bearer, pki.expired)).body, { id: null, source: null, error: 'CERT_HAS_EXPIRED' }, 'a certificate that failed is not rescued by a token')
  t.same((await get(url, '/who', ['authorization', 'Bearer a.b.c'], pki.orderService)).body, { id: null, source: null, error: 'ERR_MTLS_JWT_MALFORMED' }, 'a bad token beside a good certificate is not ignored')
})

t.test('tokens the validator refuses give no identity, with its code', async t => {
  const { source } = await workloadApi(t)
  const url = await startServer(t, { source, audience: PAYMENT })
  const cases: Array<[string, string, string]> = [
    ['expired', signJwt(keyA, claims({ iat: now() - 600, exp: now() - 120 })), 'ERR_MTLS_JWT_EXPIRED'],
    ['for another audience', signJwt(keyA, claims({ aud: 'spiffe://mycompany.com/production/inventory-service' })), 'ERR_MTLS_JWT_AUDIENCE'],
    ['from a foreign trust domain', signJwt(keyA, claims({ sub: 'spiffe://partner.example/billing' })), 'ERR_MTLS_JWT_TRUST_DOMAIN_UNKNOWN'],
    ['under an unknown kid', signJwt(keyA, claims(), 'zz'), 'ERR_MTLS_JWT_KEY_NOT_FOUND'],
    ['signed by another key under a known kid', signJwt(keyB, claims(), 'a'), 'ERR_MTLS_JWT_SIGNATURE']
  ]
  for (const [what, token, code] of cases) {
    t.same((await get(url, '/who', ['authorization', `Bearer ${token}`])).body, { id: null, source: null, error: code }, what)
    t.equal((await get(url, '/charge', ['authorization', `Bearer ${token}`], undefined, 'POST')).status, 401, `${what}: 401 on a role route`)
  }
  t.same((await get(url, '/who', ['authorization', `Bearer ${signJwt(keyB, claims(), 'b')}`])).body, { id: ORDER, source: 'jwt-svid', error: null }, 'a token of another bundle key is good')
})

t.test('plain HTTP behind a hop that terminated TLS; another header; the identity read before the token is judged', async t => {
  const { source } = await workloadApi(t)
  const { token } = await source.fetchJWTSVID({ audience: PAYMENT })
  const app = Fastify()
  t.teardown(() => app.close())
  const seen: Array<string | null> = []
  app.addHook('onRequest', async request => { seen.push(request.peerCertificateError) })
  await app.register(fastifyMtlsIdentity, { jwtSvid: { source, audience: PAYMENT, header: 'x-jwt-svid' } })
  app.get('/who', async request => ({ id: request.peerIdentity?.id ?? null, source: request.peerIdentity?.source ?? null, error: request.peerCertificateError, json: request.peerIdentity?.toJSON() ?? null }))
  const one = await app.inject({ url: '/who', headers: { 'x-jwt-svid': token } })
  t.match(one.json(), { id: ORDER, source: 'jwt-svid', error: null, json: { spiffeId: ORDER, uris: [ORDER], thumbprintS256: '', commonName: null, source: 'jwt-svid' } })
  t.same(seen, ['ERR_MTLS_JWT_SVID_PENDING'], 'an earlier hook saw no identity, not the certificate\'s verdict alone')
  t.match((await app.inject({ url: '/who', headers: { 'x-jwt-svid': `Bearer ${token}` } })).json(), { id: null, error: 'ERR_MTLS_JWT_SVID_MALFORMED' }, 'another header carries the token alone')
  t.match((await app.inject({ url: '/who', headers: { authorization: `Bearer ${token}` } })).json(), { id: null, error: 'ERR_MTLS_JWT_SVID_MISSING' }, 'Authorization is not read when another header is named')
  t.match((await app.inject({ url: '/who', headers: { 'x-jwt-svid': 'x'.repeat(20_000) } })).json(), { error: 'ERR_MTLS_JWT_SVID_TOO_LONG' })
})

t.test('a validator that cannot judge, or vouches for no workload, gives no identity', async t => {
  for (const validateJWTSVID of [
    () => { throw new Error('no bundles yet') },
    async () => ({ spiffeId: 'spiffe://mycompany.com', expiresAt: new Date(Date.now() + 60_000) }),
    () => ({ spiffeId: ORDER, expiresAt: new Date(Number.NaN) })
  ]) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(fastifyMtlsIdentity, { jwtSvid: { source: { validateJWTSVID }, audience: PAYMENT } })
    app.get('/who', async request => ({ id: request.peerIdentity?.id ?? null, error: request.peerCertificateError }))
    t.same((await app.inject({ url: '/who', headers: { authorization: `Bearer ${signJwt(keyA, claims())}` } })).json(), { id: null, error: 'ERR_MTLS_JWT_SVID_UNVERIFIED' })
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyMtlsIdentity, { jwtSvid: { source: { validateJWTSVID: () => ({ spiffeId: ORDER, expiresAt: new Date(Date.now() + 60_000), claims: { nbf: 1000 } }) }, audience: PAYMENT } })
  app.get('/who', async request => request.peerIdentity?.notBefore.getTime())
  t.equal((await app.inject({ url: '/who', headers: { authorization: `Bearer ${signJwt(keyA, claims())}` } })).body, '1000000', 'notBefore from nbf')
})

t.test('bad jwtSvid options fail ready() with FST_MTLS_IDENTITY_INVALID_OPTION, naming what is wrong', async t => {
  const source = { validateJWTSVID: () => ({ spiffeId: ORDER, expiresAt: new Date() }) }
  const cases: Array<[unknown, RegExp]> = [
    ['yes', /jwtSvid: must be \{ source, audience, header\? \}/],
    [null, /jwtSvid: must be/],
    [{ source, audience: PAYMENT, audiences: [] }, /unknown option "audiences" \(did you mean "audience"\?\)/],
    [{ source: {}, audience: PAYMENT }, /jwtSvid: source must validate tokens/],
    [{ source: null, audience: PAYMENT }, /jwtSvid: source must validate tokens/],
    [{ source, audience: '' }, /jwtSvid: audience must be a non-empty string/],
    [{ source, audience: PAYMENT, header: 'Authorization' }, /jwtSvid: header must be a lower-case header name; got "Authorization"/],
    [{ source, audience: PAYMENT, header: 7 }, /jwtSvid: header must be a lower-case header name/]
  ]
  for (const [jwtSvid, message] of cases) {
    const app = Fastify()
    app.register(fastifyMtlsIdentity, { jwtSvid } as unknown as FastifyMtlsIdentityOptions).then(() => {}, () => {})
    await t.rejects(async () => { await app.ready() }, { code: 'FST_MTLS_IDENTITY_INVALID_OPTION', message }, String(message))
    await app.close()
  }
})

t.test('a token signed by a key since removed from the bundle is refused once the bundle update arrives', async t => {
  const { api, source } = await workloadApi(t)
  const url = await startServer(t, { source, audience: PAYMENT })
  const token = signJwt(keyB, claims(), 'b')
  t.equal((await get(url, '/who', ['authorization', `Bearer ${token}`])).body.id, ORDER)
  api.setJwtBundles({ 'mycompany.com': jwksOf([{ key: keyA, kid: 'a' }]) })
  await until(() => source.bundles.get('mycompany.com')?.keys.has('b') === false, 'the bundle without key b')
  t.same((await get(url, '/who', ['authorization', `Bearer ${token}`])).body, { id: null, source: null, error: 'ERR_MTLS_JWT_KEY_NOT_FOUND' })
})

t.test('the early hook of a server sees no identity until the token is judged', async t => {
  const { source } = await workloadApi(t)
  const seen: Who[] = []
  const url = await startServer(t, { source, audience: PAYMENT }, seen)
  const { token } = await source.fetchJWTSVID({ audience: PAYMENT })
  t.same((await get(url, '/early', ['authorization', `Bearer ${token}`], pki.orderService)).body, { id: ORDER, source: 'tls', error: null })
  t.same(seen, [{ id: null, source: null, error: 'ERR_MTLS_JWT_SVID_PENDING' }])
})
