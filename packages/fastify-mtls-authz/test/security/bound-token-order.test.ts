// A bound-token check that ran before the token was verified would see no claims; one that passed on "no claims"
// would let any certificate through with any (or no) token. The check runs after every onRequest hook (at
// preParsing, or in the preHandler guard), whatever the registration order, and no claims at that point is a 401.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { fastifyMtlsIdentity } from 'fastify-mtls-identity'
import { createTestPki } from 'mtls-pki'
import { thumbprintS256 } from 'mtls-core'
import { readPemBlocks } from 'mtls-core/internal'
import { startFastifyServer } from 'mtls-test-support'
import { request } from 'undici'
import { fastifyMtlsAuthz, type FastifyMtlsAuthzOptions } from '../../src/index.js'
import { agentFor, startServer } from '../helpers.js'

const pki = await createTestPki()
const secret = 'a test secret that is long enough for HS256'
const orderThumbprint = thumbprintS256(readPemBlocks(pki.orderService.certificate)[0]!.der)
const verify = async (request: { jwtVerify: () => Promise<unknown> }): Promise<void> => { await request.jwtVerify() }

/** mtls, identity, then (jwt and its onRequest verification) before or after authz. */
async function build (t: Parameters<typeof agentFor>[0], jwtFirst: boolean, authz: FastifyMtlsAuthzOptions, routes: (app: FastifyInstance) => void): Promise<{ url: string, token: string }> {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  let app!: FastifyInstance
  const { url } = await startFastifyServer(t, { https: serverTls.httpsOptions }, async instance => {
    app = instance
    await app.register(fastifyMtls, { tls: serverTls })
    await app.register(fastifyMtlsIdentity)
    const jwt = async (): Promise<void> => {
      await app.register(fastifyJwt, { secret })
      app.addHook('onRequest', verify)
    }
    if (jwtFirst) await jwt()
    await app.register(fastifyMtlsAuthz, authz)
    if (!jwtFirst) await jwt()
    routes(app)
  })
  return { url, token: app.jwt.sign({ cnf: { 'x5t#S256': orderThumbprint } }) }
}

async function post (url: string, path: string, token: string): Promise<{ status: number, code: string | undefined }> {
  const response = await request(`${url}${path}`, { dispatcher: agentFor(t, pki, pki.orderService), method: 'POST', headers: { authorization: `Bearer ${token}` } })
  const body = await response.body.json() as { code?: string } | string
  return { status: response.statusCode, code: typeof body === 'object' ? body.code : undefined }
}

for (const hook of ['onRequest', 'preHandler'] as const) {
  for (const jwtFirst of [true, false]) {
    t.test(`hook ${hook}, @fastify/jwt's onRequest verification registered ${jwtFirst ? 'before' : 'after'} authz: the bound token is checked after it`, async t => {
      const { url, token } = await build(t, jwtFirst, { hook }, app => {
        app.post('/charge', { config: { mtls: { boundToken: true } } }, async () => ({ ok: true }))
      })
      t.same(await post(url, '/charge', token), { status: 200, code: undefined })
    })
  }
}

t.test('verification placed after the check (a route preHandler) is no claims at decision time: 401, the handler never runs', async t => {
  let ran = 0
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  const { url, app } = await startFastifyServer(t, { https: serverTls.httpsOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls })
    await app.register(fastifyMtlsIdentity)
    await app.register(fastifyMtlsAuthz)
    await app.register(fastifyJwt, { secret })
    app.post('/late', { preHandler: verify, config: { mtls: { boundToken: true } } }, async () => { ran++; return { ok: true } })
    app.post('/hooked-early', { onRequest: [app.mtlsAuthorize({ boundToken: true }), verify] }, async () => { ran++; return { ok: true } })
  })
  const token = app.jwt.sign({ cnf: { 'x5t#S256': orderThumbprint } })
  t.same(await post(url, '/late', token), { status: 401, code: 'FST_MTLS_AUTHZ_TOKEN_REQUIRED' }, 'a valid, bound token, verified too late: refused')
  t.same(await post(url, '/hooked-early', token), { status: 401, code: 'FST_MTLS_AUTHZ_TOKEN_REQUIRED' }, 'mtlsAuthorize() put before the verification: refused')
  t.equal(ran, 0)
})

t.test('boundToken with nothing that verifies tokens fails ready(), for routes and mtlsAuthorize()', async t => {
  for (const where of ['route', 'mtlsAuthorize'] as const) {
    const app = Fastify()
    await app.register(fastifyMtlsIdentity)
    await app.register(fastifyMtlsAuthz)
    if (where === 'route') app.get('/bound', { config: { mtls: { boundToken: true } } }, async () => 'ok')
    else app.get('/bound', { preHandler: app.mtlsAuthorize({ boundToken: true }) }, async () => 'ok')
    await t.rejects(async () => await app.ready(), { code: 'FST_MTLS_AUTHZ_INVALID_OPTION', message: /boundToken but nothing verifies tokens: register @fastify\/jwt \(request\.user\) or give getClaims/ }, where)
  }
  const withClaims = Fastify()
  await withClaims.register(fastifyMtlsIdentity)
  await withClaims.register(fastifyMtlsAuthz, { getClaims: () => null })
  withClaims.get('/bound', { config: { mtls: { boundToken: true } } }, async () => 'ok')
  await t.resolves(async () => await withClaims.ready(), 'getClaims given: ready')
  await withClaims.close()
})

t.test('boundToken options are checked: a boolean, not with public; getClaims a function', async t => {
  const app = Fastify()
  await app.register(fastifyMtlsIdentity)
  await app.register(fastifyMtlsAuthz)
  t.throws(() => app.mtlsAuthorize({ boundToken: 'yes' } as never), { code: 'FST_MTLS_AUTHZ_INVALID_OPTION', message: /boundToken must be true or false/ })
  t.throws(() => app.mtlsAuthorize({ public: true, boundToken: true }), { message: /public cannot be combined with roles, allRoles, allow, deny or boundToken/ })
  await app.close()
  const bad = Fastify()
  bad.register(fastifyMtlsIdentity)
  bad.register(fastifyMtlsAuthz, { getClaims: 'user' } as never)
  await t.rejects(async () => await bad.ready(), { code: 'FST_MTLS_AUTHZ_INVALID_OPTION', message: /getClaims must be a function/ })
})

t.test('a getClaims that throws refuses the request; a polluted Object.prototype binds no token', async t => {
  const { url } = await startServer(t, pki, {
    getClaims: request => {
      if (request.headers['x-throw'] !== undefined) throw new Error('boom')
      return JSON.parse(request.headers['x-claims'] as string) as unknown
    }
  }, app => {
    app.get('/bound', { config: { mtls: { boundToken: true } } }, async () => 'ok')
  })
  const get = async (headers: Record<string, string>): Promise<number> => {
    const response = await request(`${url}/bound`, { dispatcher: agentFor(t, pki, pki.orderService), headers })
    await response.body.dump()
    return response.statusCode
  }
  t.equal(await get({ 'x-throw': '1' }), 401, 'getClaims threw')
  const proto = Object.prototype as Record<string, unknown>
  proto.cnf = { 'x5t#S256': orderThumbprint }
  try {
    t.equal(await get({ 'x-claims': '{}' }), 401, 'cnf inherited from Object.prototype')
    t.equal(await get({ 'x-claims': '{"cnf":{}}' }), 401, 'cnf without x5t#S256 while Object.prototype has cnf')
  } finally {
    delete proto.cnf
  }
  proto['x5t#S256'] = orderThumbprint
  try {
    t.equal(await get({ 'x-claims': '{"cnf":{}}' }), 401, 'x5t#S256 inherited by cnf from Object.prototype')
  } finally {
    delete proto['x5t#S256']
  }
  t.equal(await get({ 'x-claims': JSON.stringify({ cnf: { 'x5t#S256': orderThumbprint } }) }), 200, 'its own claims pass')
})
