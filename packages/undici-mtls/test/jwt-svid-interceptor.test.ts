// jwtSvidInterceptor: a JWT-SVID from a JwtSource on a test Workload API (real gRPC), on every request of an mTLS agent.
import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { startFastifyServer, until, type Teardown } from 'mtls-test-support'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { createJWTSource } from 'spiffe-workload-api'
import { TestWorkloadApi, jwksOf } from 'spiffe-workload-api/testing'
import { fetch, request } from 'undici'
import { createMtlsAgent, jwtSvidInterceptor, type JwtSvidInterceptorOptions } from '../src/index.js'

const pki = await createTestPki()
const ORDER = 'spiffe://mycompany.com/production/order-service'
const PAYMENT = 'spiffe://mycompany.com/production/payment-service'
const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey

async function setup (t: Teardown, lifetimeSeconds = 300) {
  const api = await TestWorkloadApi.start()
  api.setJwtBundles({ 'mycompany.com': jwksOf([{ key, kid: 'a' }]) })
  api.setJwtSvids([{ spiffeId: ORDER, key, kid: 'a', lifetimeSeconds }])
  const source = await createJWTSource({ endpoint: api.endpoint })
  t.teardown(async () => { source.close(); await api.close() })
  const seen: Array<{ header: string | undefined, spiffeId: string | null }> = []
  const hits = { count: 0 }
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const { url } = await startFastifyServer(t, { https: serverTls.httpsOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls, watch: false })
    app.get('/whoami', async () => { hits.count++; return 'ok' })
    app.get('/token', async req => {
      const header = req.headers.authorization ?? (req.headers['x-jwt-svid'] as string | undefined)
      const token = header?.replace(/^Bearer /, '')
      const spiffeId = token === undefined ? null : await source.validateJWTSVID(token, PAYMENT).then(v => v.spiffeId, () => null)
      seen.push({ header, spiffeId })
      return { spiffeId }
    })
  })
  const agent = await createMtlsAgent({ cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca, server: PAYMENT, verifyHostname: false })
  t.teardown(() => agent.close())
  return { api, source, url, agent, seen, hits }
}

t.test('every request carries a JWT-SVID for the audience, which the server validates, one token cached by the source', async t => {
  const { api, source, url, agent, seen } = await setup(t)
  const client = agent.compose(jwtSvidInterceptor({ source, audience: PAYMENT }))
  const first = await request(`${url}/token`, { dispatcher: client })
  t.same(await first.body.json(), { spiffeId: ORDER })
  t.match(seen[0]?.header, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/)
  for (const headers of [new Map([['x-trace', '1']]), ['x-trace', '1'], { 'x-trace': '1' }] as const) {
    const res = await request(`${url}/token`, { dispatcher: client, headers: headers as never })
    t.same(await res.body.json(), { spiffeId: ORDER }, 'headers given in each form keep the token')
  }
  t.same(await (await fetch(`${url}/token`, { dispatcher: client, headers: { 'x-trace': '1' } })).json(), { spiffeId: ORDER }, 'fetch too')
  // A five-minute token: no refresh is due within the test, however slow the machine.
  t.equal(api.jwtIssued, 1, 'one token for five requests, cached by the source')
})

t.test('the source refreshes the token at half its life, and later requests carry the new one', async t => {
  const { api, source, url, agent, seen } = await setup(t, 2)
  const client = agent.compose(jwtSvidInterceptor({ source, audience: PAYMENT }))
  t.same(await (await request(`${url}/token`, { dispatcher: client })).body.json(), { spiffeId: ORDER })
  const issued = api.jwtIssued
  await until(() => api.jwtIssued > issued, 'a refreshed token')
  await until(() => source.cachedJWTSVID({ audience: PAYMENT })?.token !== seen[0]?.header?.replace(/^Bearer /, ''), 'the refreshed token in the source')
  t.same(await (await request(`${url}/token`, { dispatcher: client })).body.json(), { spiffeId: ORDER })
  t.not(seen.at(-1)?.header, seen[0]?.header, 'a newer token is sent')
})

t.test('the caller\'s own Authorization is left alone; another header carries the token alone', async t => {
  const { source, url, agent, seen } = await setup(t)
  const client = agent.compose(jwtSvidInterceptor({ source, audience: PAYMENT }))
  const own = await request(`${url}/token`, { dispatcher: client, headers: { Authorization: 'Bearer not.a.jwt' } })
  t.same(await own.body.json(), { spiffeId: null }, 'the server judged the caller\'s header, not one of ours')
  t.equal(seen.length, 1)
  t.equal(seen[0]?.header, 'Bearer not.a.jwt')
  for (const headers of [['authorization', 'Bearer x.y.z'], new Map([['Authorization', 'Bearer x.y.z']])]) {
    await (await request(`${url}/token`, { dispatcher: client, headers: headers as never })).body.text()
    t.equal(seen.at(-1)?.header, 'Bearer x.y.z')
  }
  const custom = agent.compose(jwtSvidInterceptor({ source, audience: PAYMENT, header: 'x-jwt-svid' }))
  t.same(await (await request(`${url}/token`, { dispatcher: custom })).body.json(), { spiffeId: ORDER })
  t.notMatch(seen.at(-1)?.header, /^Bearer /)
})

t.test('no token: the request fails with ERR_MTLS_CLIENT_JWT_SVID_UNAVAILABLE before anything is sent', async t => {
  const { api, source, url, agent, hits } = await setup(t)
  api.setJwtSvids([])
  const client = agent.compose(jwtSvidInterceptor({ source, audience: PAYMENT }))
  await t.rejects(request(`${url}/whoami`, { dispatcher: client }), { code: 'ERR_MTLS_CLIENT_JWT_SVID_UNAVAILABLE', message: /no JWT-SVID for audience "spiffe:\/\/mycompany.com\/production\/payment-service"/ })
  await t.rejects(fetch(`${url}/whoami`, { dispatcher: client }), { cause: { code: 'ERR_MTLS_CLIENT_JWT_SVID_UNAVAILABLE' } })
  t.equal(hits.count, 0, 'nothing reached the server')
})

t.test('bad options throw ERR_MTLS_CLIENT_INVALID_OPTION', async t => {
  const source = { fetchJWTSVID: async () => ({ token: 'a.b.c' }) }
  const cases: Array<[unknown, RegExp]> = [
    [null, /options must be/],
    [{ source, audience: PAYMENT, audiences: [] }, /unknown option "audiences"/],
    [{ source: {}, audience: PAYMENT }, /source must fetch JWT-SVIDs/],
    [{ source, audience: '' }, /audience must be a non-empty string/],
    [{ source, audience: PAYMENT, header: 'X-Jwt' }, /header must be a lower-case header name/]
  ]
  for (const [options, message] of cases) t.throws(() => jwtSvidInterceptor(options as JwtSvidInterceptorOptions), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION', message })
})
