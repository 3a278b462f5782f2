// Attacks on "one guard decides every route, whatever the registration order": plugins whose onRoute hooks
// shape a route's config.mtls, prototype pollution of the keys the plugin reads, and URL spellings that the
// router folds onto a route. Real TLS on 127.0.0.1, certificates from mtls-pki.
import type { AddressInfo } from 'node:net'
import t from 'tap'
import Fastify, { type FastifyInstance, type RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { fastifyMtlsIdentity } from 'fastify-mtls-identity'
import { createTestPki } from 'mtls-pki'
import { fastifyMtlsAuthz, type FastifyMtlsAuthzOptions } from '../../src/index.js'
import { agentFor, call } from '../helpers.js'

const pki = await createTestPki()
const order = 'spiffe://mycompany.com/production/order-service'
const inventory = 'spiffe://mycompany.com/production/inventory-service'

// A plugin of the kind teams write: every route under /admin needs the admin role, declared once here.
const adminRoutesNeedAdmin = fp(async app => {
  app.addHook('onRoute', (routeOptions: RouteOptions) => {
    if (routeOptions.url.startsWith('/admin')) routeOptions.config = { ...routeOptions.config, mtls: { roles: ['admin'] } } as never
  })
}, { name: 'admin-routes-need-admin' })

// Another: a compromised workload is refused on every /payments route, added to whatever the route declares.
const denyInventoryOnPayments = fp(async app => {
  app.addHook('onRoute', (routeOptions: RouteOptions) => {
    const config = routeOptions.config as { mtls?: Record<string, unknown> } | undefined
    if (routeOptions.url.startsWith('/payments') && config?.mtls !== undefined) config.mtls = { ...config.mtls, deny: [inventory] }
  })
}, { name: 'deny-inventory-on-payments' })

type Setup = (app: FastifyInstance) => unknown
async function serve (t: Parameters<typeof agentFor>[0], steps: Setup[], fastifyOptions: Record<string, unknown> = {}): Promise<string> {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  const app = Fastify({ https: serverTls.httpsOptions, ...fastifyOptions } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance
  await app.register(fastifyMtls, { tls: serverTls })
  await app.register(fastifyMtlsIdentity)
  for (const step of steps) await step(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}
const authz = (options: FastifyMtlsAuthzOptions): Setup => async app => { await app.register(fastifyMtlsAuthz, options) }
const routes: Setup = app => {
  app.get('/admin/users', async () => 'the user list')
  app.post('/payments/charge', { config: { mtls: { roles: ['payments:charge'] } } }, async () => 'charged')
}
const policy = {
  acl: [
    { identities: [order], roles: ['admin', 'payments:charge'] },
    { identities: [inventory], roles: ['payments:charge'] }
  ]
}

t.test('a config.mtls that another plugin\'s onRoute hook sets after the authz plugin\'s is enforced', async t => {
  for (const defaultPolicy of ['allow', 'deny'] as const) {
    // Control: the shaping plugin registered before authz. Its onRoute hook runs first; authz sees the result.
    const before = await serve(t, [app => app.register(adminRoutesNeedAdmin), app => app.register(denyInventoryOnPayments), authz({ policy: { ...policy, defaultPolicy } }), routes])
    // The same plugins registered after authz: only the order of two register() calls differs.
    const after = await serve(t, [authz({ policy: { ...policy, defaultPolicy } }), app => app.register(adminRoutesNeedAdmin), app => app.register(denyInventoryOnPayments), routes])
    const inventoryAgent = agentFor(t, pki, pki.inventoryService)
    const orderAgent = agentFor(t, pki, pki.orderService)
    for (const [where, url] of [['shaping plugins registered before authz', before], ['shaping plugins registered after authz', after]] as const) {
      t.equal((await call(url, orderAgent, 'GET', '/admin/users')).status, 200, `${defaultPolicy}, ${where}: the admin reads the user list`)
      t.equal((await call(url, orderAgent, 'POST', '/payments/charge')).status, 200, `${defaultPolicy}, ${where}: the order service charges`)
      // This got through before the fix: authz compiles a route's rule in its own onRoute hook and stores it in the config; onRoute hooks
      // run in registration order, so a plugin registered after authz that declares or tightens config.mtls
      // (roles for /admin, a deny for /payments) is ignored: the stale rule decides. Under defaultPolicy 'allow'
      // /admin/users is open to every caller; under either policy the denied workload still charges.
      t.equal((await call(url, inventoryAgent, 'GET', '/admin/users')).status, 403, `${defaultPolicy}, ${where}: a caller without admin is refused /admin/users`)
      t.equal((await call(url, inventoryAgent, 'POST', '/payments/charge')).status, 403, `${defaultPolicy}, ${where}: the denied workload is refused /payments/charge`)
    }
  }
})

t.test('prototype pollution of the keys authz reads does not open routes', async t => {
  // An attacker with a prototype-pollution primitive elsewhere in the process (a merge of request JSON, say)
  // while the server starts. The pollution is gone before the first request.
  const proto = Object.prototype as Record<string, unknown>
  const pollute = (key: string, value: unknown): Setup => () => { proto[key] = value }
  const clean: Setup = () => { delete proto.defaultPolicy; delete proto.mtls }
  t.teardown(() => { delete proto.defaultPolicy; delete proto.mtls })
  const inventoryAgent = agentFor(t, pki, pki.inventoryService)
  const anonymous = agentFor(t, pki)

  const defaultAllow = await serve(t, [pollute('defaultPolicy', 'allow'), authz({ policy: { acl: policy.acl } }), clean, app => { app.get('/undeclared', async () => 'secret') }])
  // This got through before the fix: compilePolicy reads policy.defaultPolicy through the prototype chain (and unknownOption() lists own
  // keys only), so Object.prototype.defaultPolicy = 'allow' at startup turns the default 'deny' into 'allow'.
  t.equal((await call(defaultAllow, anonymous, 'GET', '/undeclared')).status, 401, 'defaultPolicy stays deny: anonymous refused')
  t.equal((await call(defaultAllow, inventoryAgent, 'GET', '/undeclared')).status, 403, 'defaultPolicy stays deny: an identity without a rule refused')

  const publicEverywhere = await serve(t, [authz({ policy }), pollute('mtls', { public: true }), app => { app.get('/undeclared', async () => 'secret') }, clean])
  // This got through before the fix: the onRoute hook reads routeOptions.config.mtls through the prototype chain: Object.prototype.mtls =
  // { public: true } while routes are added makes every route that declares nothing public for good.
  t.equal((await call(publicEverywhere, anonymous, 'GET', '/undeclared')).status, 401, 'a route that declares nothing stays under defaultPolicy deny')
})

t.test('correctly refused: URL spellings the router folds onto a route are decided as that route', async t => {
  const fastifyOptions = { routerOptions: { caseSensitive: false, ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, useSemicolonDelimiter: true } }
  const url = await serve(t, [authz({ policy }), app => {
    app.get('/admin/users', { config: { mtls: { roles: ['admin'] } } }, async () => 'the user list')
    app.get('/files/:name', { config: { mtls: { roles: ['admin'] } } }, async () => 'a file')
    app.route({ method: ['GET', 'POST', 'PUT'], url: '/multi', config: { mtls: { roles: ['admin'] } }, handler: async () => 'ok' })
    app.get('/versioned', { constraints: { version: '2.0.0' }, config: { mtls: { roles: ['admin'] } } }, async () => 'v2')
    app.get('/versioned', { config: { mtls: { public: true } } }, async () => 'v1')
    app.register(async child => {
      child.setNotFoundHandler({ preValidation: async () => {} }, async (_request, reply) => reply.code(404).send('custom not found'))
      child.get('/', async () => 'the prefix root')
    }, { prefix: '/area' })
  }], fastifyOptions)
  const inventoryAgent = agentFor(t, pki, pki.inventoryService)
  const orderAgent = agentFor(t, pki, pki.orderService)
  const spellings = ['/ADMIN/users', '/admin/users/', '//admin//users', '/admin/users;jsessionid=1', '/admin/users?x=1', '/files/a%2Fb', '/files/..%2F..%2Fetc', '/Admin/Users/']
  for (const path of spellings) {
    t.equal((await call(url, inventoryAgent, 'GET', path)).status, 403, `${path}: refused to a caller without admin`)
    t.equal((await call(url, orderAgent, 'GET', path)).status, 200, `${path}: the admin passes (it is the route)`)
  }
  for (const method of ['GET', 'POST', 'PUT', 'HEAD']) t.equal((await call(url, inventoryAgent, method, '/multi')).status, 403, `method list: ${method}`)
  t.equal((await call(url, inventoryAgent, 'GET', '/versioned', ['accept-version', '2.0.0'])).status, 403, 'the constrained route keeps its own rule')
  t.equal((await call(url, inventoryAgent, 'GET', '/versioned')).status, 200, 'the unconstrained one is public')
  t.equal((await call(url, agentFor(t, pki), 'GET', '/area/nothing-here')).status, 401, 'a child\'s custom 404 handler with its own hook is decided')
  t.equal((await call(url, inventoryAgent, 'GET', '/area')).status, 403, 'a prefix root (prefixTrailingSlash both) without the slash')
  t.equal((await call(url, inventoryAgent, 'GET', '/area/')).status, 403, 'and with it')
})

t.test('correctly refused: authz registered again in a child layers on the parent\'s guard, it never replaces it', async t => {
  const inventoryAgent = agentFor(t, pki, pki.inventoryService)
  const looserChild = await serve(t, [authz({ policy: { acl: policy.acl, deny: [inventory] } }), app => {
    app.register(async child => {
      await child.register(fastifyMtlsAuthz, { policy: { defaultPolicy: 'allow' } })
      child.get('/child/open', async () => 'open?')
    })
  }])
  t.equal((await call(looserChild, inventoryAgent, 'GET', '/child/open')).status, 403, 'the parent\'s deny list and default deny still apply below a child registered with allow')
  const stricterChild = await serve(t, [authz({ policy: { defaultPolicy: 'allow' } }), app => {
    app.register(async child => {
      await child.register(fastifyMtlsAuthz, { policy: { defaultPolicy: 'deny' } })
      child.get('/child/secret', async () => 'secret')
    })
    app.get('/root', async () => 'root')
  }])
  t.equal((await call(stricterChild, inventoryAgent, 'GET', '/child/secret')).status, 403, 'a stricter child policy applies to its routes')
  t.equal((await call(stricterChild, agentFor(t, pki), 'GET', '/child/secret')).status, 401)
  t.equal((await call(stricterChild, inventoryAgent, 'GET', '/root')).status, 200, 'and only to them')
})
