// RFC 8705 certificate-bound access tokens: config.mtls.boundToken and mtlsAuthorize({ boundToken: true }), with
// tokens verified by the real @fastify/jwt over real mTLS.
import t from 'tap'
import fastifyJwt from '@fastify/jwt'
import type { FastifyInstance } from 'fastify'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { thumbprintS256 } from 'mtls-core'
import { readPemBlocks } from 'mtls-core/internal'
import { request, type Agent } from 'undici'
import type { AuthzDecision, FastifyMtlsAuthzOptions } from '../src/index.js'
import { agentFor, startServer } from './helpers.js'

const pki = await createTestPki()
const secret = 'a test secret that is long enough for HS256'
const policy = { acl: [{ identities: ['spiffe://mycompany.com/production/*'], roles: ['payments:charge'] }] }
const thumbprintOf = (cert: IssuedCertificate): string => thumbprintS256(readPemBlocks(cert.certificate)[0]!.der)

/** The server of the helpers, with @fastify/jwt verifying at onRequest, registered after fastify-mtls-authz. */
async function start (t: Parameters<typeof agentFor>[0], authz: FastifyMtlsAuthzOptions = {}, routes: (app: FastifyInstance) => void = () => {}): Promise<{ app: FastifyInstance, url: string, sign: (claims: object) => string, decisions: AuthzDecision[] }> {
  const decisions: AuthzDecision[] = []
  const { app, url } = await startServer(t, pki, { policy, onDecision: decision => { decisions.push(decision) }, ...authz }, app => {
    app.register(fastifyJwt, { secret })
    app.addHook('onRequest', async request => { if (request.headers.authorization !== undefined) await request.jwtVerify() })
    app.post('/charge', { config: { mtls: { roles: ['payments:charge'], boundToken: true } } }, async () => 'charged')
    app.get('/bound', { config: { mtls: { boundToken: true } } }, async () => 'bound')
    routes(app)
  })
  return { app, url, sign: claims => app.jwt.sign(claims), decisions }
}

async function send (url: string, agent: Agent, method: string, path: string, token?: string): Promise<{ status: number, code: string | null, authenticate: string | null, body: string }> {
  const response = await request(`${url}${path}`, { dispatcher: agent, method: method as 'GET', headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
  const body = await response.body.text()
  const authenticate = response.headers['www-authenticate']
  return { status: response.statusCode, code: body.startsWith('{') ? (JSON.parse(body) as { code?: string }).code ?? null : null, authenticate: typeof authenticate === 'string' ? authenticate : null, body }
}

t.test('a token bound to the certificate presented passes; the same token from another certificate is invalid_token', async t => {
  const { url, sign, decisions } = await start(t)
  const token = sign({ sub: 'order-service', cnf: { 'x5t#S256': thumbprintOf(pki.orderService) } })
  const allowed = await send(url, agentFor(t, pki, pki.orderService), 'POST', '/charge', token)
  t.same({ status: allowed.status, body: allowed.body, authenticate: allowed.authenticate }, { status: 200, body: 'charged', authenticate: null })
  t.match(decisions.at(-1), { decision: 'allow', status: 200, code: null, rule: 'role payments:charge; token bound to this certificate' })
  t.equal((await send(url, agentFor(t, pki, pki.orderService), 'GET', '/bound', token)).status, 200, 'boundToken alone: any verified peer with its own token')

  const replayed = await send(url, agentFor(t, pki, pki.inventoryService), 'POST', '/charge', token)
  t.equal(replayed.status, 401)
  t.equal(replayed.code, 'FST_MTLS_AUTHZ_TOKEN_MISMATCH')
  t.equal(replayed.authenticate, 'Bearer error="invalid_token", error_description="token is bound to another certificate"')
  t.match(decisions.at(-1), { decision: 'deny', status: 401, code: 'FST_MTLS_AUTHZ_TOKEN_MISMATCH', identity: 'spiffe://mycompany.com/production/inventory-service', rule: 'token is bound to another certificate' })
})

t.test('the identity checks still come first: no certificate is 401 PEER_REQUIRED, a missing role 403', async t => {
  const { url, sign } = await start(t)
  const token = sign({ cnf: { 'x5t#S256': thumbprintOf(pki.orderService) } })
  t.equal((await send(url, agentFor(t, pki), 'POST', '/charge', token)).code, 'FST_MTLS_AUTHZ_PEER_REQUIRED')
  const partner = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://partner.example/billing' })
  const forbidden = await send(url, agentFor(t, pki, partner), 'POST', '/charge', sign({ cnf: { 'x5t#S256': thumbprintOf(partner) } }))
  t.same({ status: forbidden.status, code: forbidden.code }, { status: 403, code: 'FST_MTLS_AUTHZ_FORBIDDEN' })
})

t.test('tokens without a usable confirmation are invalid_token, each with its reason', async t => {
  const { url, sign, decisions } = await start(t)
  const order = agentFor(t, pki, pki.orderService)
  const cases: Array<[string, object, string, string]> = [
    ['no cnf', { sub: 'order-service' }, 'FST_MTLS_AUTHZ_TOKEN_UNBOUND', 'token has no cnf claim'],
    ['cnf not an object', { cnf: 'x' }, 'FST_MTLS_AUTHZ_TOKEN_UNBOUND', 'token has no cnf claim'],
    ['cnf with another confirmation method', { cnf: { jkt: 'abc' } }, 'FST_MTLS_AUTHZ_TOKEN_UNBOUND', 'token cnf has no x5t#S256'],
    ['a hex SHA-256', { cnf: { 'x5t#S256': Buffer.from(thumbprintOf(pki.orderService), 'base64url').toString('hex') } }, 'FST_MTLS_AUTHZ_TOKEN_UNBOUND', 'token cnf x5t#S256 is malformed'],
    ['padded base64url', { cnf: { 'x5t#S256': `${thumbprintOf(pki.orderService)}=` } }, 'FST_MTLS_AUTHZ_TOKEN_UNBOUND', 'token cnf x5t#S256 is malformed'],
    ['a number', { cnf: { 'x5t#S256': 42 } }, 'FST_MTLS_AUTHZ_TOKEN_UNBOUND', 'token cnf x5t#S256 is malformed'],
    ['the fingerprint256 form', { cnf: { 'x5t#S256': pki.orderService.fingerprint256 } }, 'FST_MTLS_AUTHZ_TOKEN_UNBOUND', 'token cnf x5t#S256 is malformed']
  ]
  for (const [what, claims, code, reason] of cases) {
    const refused = await send(url, order, 'POST', '/charge', sign(claims))
    t.same({ status: refused.status, code: refused.code, authenticate: refused.authenticate }, { status: 401, code, authenticate: `Bearer error="invalid_token", error_description="${reason}"` }, what)
    t.equal(decisions.at(-1)?.rule, reason, `${what}: the audit line names why`)
  }
  const none = await send(url, order, 'POST', '/charge')
  t.same({ status: none.status, code: none.code }, { status: 401, code: 'FST_MTLS_AUTHZ_TOKEN_REQUIRED' }, 'no token at all')
  t.equal(decisions.at(-1)?.rule, 'no verified token claims')
})

t.test('a rotated client certificate: the old token stops working, a token bound to the new one works', async t => {
  const { url, sign } = await start(t)
  const oldToken = sign({ cnf: { 'x5t#S256': thumbprintOf(pki.orderService) } })
  const rotated = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/order-service' })
  const agent = agentFor(t, pki, rotated)
  const stale = await send(url, agent, 'POST', '/charge', oldToken)
  t.same({ status: stale.status, code: stale.code }, { status: 401, code: 'FST_MTLS_AUTHZ_TOKEN_MISMATCH' }, 'same SPIFFE ID, new certificate: the old token is refused')
  t.equal((await send(url, agent, 'POST', '/charge', sign({ cnf: { 'x5t#S256': thumbprintOf(rotated) } }))).status, 200)
})

t.test('a certificate forwarded by a trusted proxy is the one the token must be bound to', async t => {
  const { url, sign } = await start(t)
  const proxy = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/infra/envoy' })
  const xfcc = `By=spiffe://mycompany.com/production/payment-service;Cert="${encodeURIComponent(pki.orderService.certificate)}"`
  const forwarded = async (token: string): Promise<number> => {
    const response = await request(`${url}/charge`, { dispatcher: agentFor(t, pki, proxy), method: 'POST', headers: { authorization: `Bearer ${token}`, 'x-forwarded-client-cert': xfcc } })
    await response.body.dump()
    return response.statusCode
  }
  t.equal(await forwarded(sign({ cnf: { 'x5t#S256': thumbprintOf(pki.orderService) } })), 200, 'bound to the forwarded certificate')
  t.equal(await forwarded(sign({ cnf: { 'x5t#S256': thumbprintOf(proxy) } })), 401, "bound to the proxy's own certificate: refused")
})

t.test('getClaims reads the claims of another verifier', async t => {
  const { url } = await startServer(t, pki, { policy, getClaims: request => (request as unknown as { claims?: unknown }).claims }, app => {
    app.decorateRequest('claims', null)
    app.addHook('onRequest', async request => {
      const header = request.headers['x-test-claims']
      if (typeof header === 'string') (request as unknown as { claims: unknown }).claims = JSON.parse(header)
    })
    app.get('/bound', { config: { mtls: { boundToken: true } } }, async () => 'ok')
  })
  const get = async (claims?: object): Promise<number> => {
    const response = await request(`${url}/bound`, { dispatcher: agentFor(t, pki, pki.orderService), headers: claims === undefined ? {} : { 'x-test-claims': JSON.stringify(claims) } })
    await response.body.dump()
    return response.statusCode
  }
  t.equal(await get({ cnf: { 'x5t#S256': thumbprintOf(pki.orderService) } }), 200)
  t.equal(await get({ cnf: { 'x5t#S256': thumbprintOf(pki.inventoryService) } }), 401)
  t.equal(await get(), 401)
})

t.test('mtlsAuthorize({ boundToken: true }) hands the invalid_token denial on with its header', async t => {
  const { url, sign } = await start(t, {}, app => {
    app.get('/hooked', { preHandler: app.mtlsAuthorize({ boundToken: true, roles: ['payments:charge'] }) }, async () => 'ok')
  })
  const token = sign({ cnf: { 'x5t#S256': thumbprintOf(pki.orderService) } })
  t.equal((await send(url, agentFor(t, pki, pki.orderService), 'GET', '/hooked', token)).status, 200)
  const replayed = await send(url, agentFor(t, pki, pki.inventoryService), 'GET', '/hooked', token)
  t.same({ status: replayed.status, code: replayed.code, authenticate: replayed.authenticate },
    { status: 401, code: 'FST_MTLS_AUTHZ_TOKEN_MISMATCH', authenticate: 'Bearer error="invalid_token", error_description="token is bound to another certificate"' })
})
