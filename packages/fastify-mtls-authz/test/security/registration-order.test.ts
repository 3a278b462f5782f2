// Checks used to be attached in onRoute, so every route the plugin did not see being added (registered
// before it, in a child plugin loaded earlier, or while the plugin's registration was not awaited)
// answered 200 under defaultPolicy 'deny'. Every route of the instance is now decided, however it was added.
import { connect as http2Connect } from 'node:http2'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { fastifyMtlsIdentity } from 'fastify-mtls-identity'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { fastifyMtlsAuthz, type FastifyMtlsAuthzOptions } from '../../src/index.js'
import { agentFor, call } from '../helpers.js'

const pki = await createTestPki()
const policy = { acl: [{ identities: ['spiffe://mycompany.com/production/order-service'], roles: ['payments:charge'] }] }
const charge = { config: { mtls: { roles: ['payments:charge' as const] } } }

// Routes everywhere a user may put them, each declared (needs payments:charge) and undeclared.
function routesAt (app: FastifyInstance, prefix: string): void {
  app.get(`/${prefix}/declared`, charge, async () => 'ok')
  app.get(`/${prefix}/undeclared`, async () => 'ok')
}

type Order = 'awaited' | 'not awaited'
async function build (t: Parameters<typeof agentFor>[0], order: Order, authz: FastifyMtlsAuthzOptions, http2 = false): Promise<string> {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  const app = Fastify({ https: serverTls.httpsOptions, ...(http2 ? { http2: true } : {}) } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance
  const register = async (plugin: FastifyPluginAsync<any>, options: Record<string, unknown> = {}): Promise<void> => {
    if (order === 'awaited') await app.register(plugin, options)
    else app.register(plugin, options)
  }
  routesAt(app, 'root-before')
  app.all('/all-before', async () => 'ok')
  await register(async child => { routesAt(child, 'early-child'); child.register(async grandchild => { routesAt(grandchild, 'early-grandchild') }) })
  await register(fastifyMtls as FastifyPluginAsync, { tls: serverTls })
  await register(fastifyMtlsIdentity as FastifyPluginAsync)
  await register(fastifyMtlsAuthz as FastifyPluginAsync, authz as Record<string, unknown>)
  routesAt(app, 'root-after')
  await register(async child => { routesAt(child, 'late-child') })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

const places = ['root-before', 'early-child', 'early-grandchild', 'root-after', 'late-child']

for (const order of ['awaited', 'not awaited'] as const) {
  t.test(`every route is decided whatever the registration order (${order})`, async t => {
    const url = await build(t, order, { policy })
    const order_ = agentFor(t, pki, pki.orderService)
    const inventory = agentFor(t, pki, pki.inventoryService)
    const anonymous = agentFor(t, pki)
    for (const place of places) {
      t.equal((await call(url, order_, 'GET', `/${place}/declared`)).status, 200, `${place}: the role holder passes`)
      t.equal((await call(url, inventory, 'GET', `/${place}/declared`)).status, 403, `${place}: declared route, no role: 403`)
      t.equal((await call(url, anonymous, 'GET', `/${place}/declared`)).status, 401, `${place}: declared route, no certificate: 401`)
      t.equal((await call(url, order_, 'GET', `/${place}/undeclared`)).status, 403, `${place}: undeclared route under deny: 403`)
      t.equal((await call(url, anonymous, 'GET', `/${place}/undeclared`)).status, 401, `${place}: undeclared route, no certificate: 401`)
      t.equal((await call(url, inventory, 'HEAD', `/${place}/declared`)).status, 403, `${place}: the HEAD route Fastify added is decided too`)
      t.equal((await call(url, order_, 'HEAD', `/${place}/declared`)).status, 200, `${place}: and allowed to the role holder`)
    }
    for (const method of ['GET', 'POST', 'DELETE', 'PATCH', 'OPTIONS']) {
      t.equal((await call(url, order_, method, '/all-before')).status, 403, `app.all: ${method}`)
    }
    t.equal((await call(url, anonymous, 'GET', '/nowhere')).status, 401, '404 handler, no certificate: 401, the route list is not disclosed')
    t.equal((await call(url, order_, 'GET', '/nowhere')).status, 403, '404 handler under deny: 403')
  })
}

t.test('under defaultPolicy allow, undeclared routes and the 404 handler answer as usual, declared ones are decided', async t => {
  const url = await build(t, 'not awaited', { policy: { ...policy, defaultPolicy: 'allow' } })
  const inventory = agentFor(t, pki, pki.inventoryService)
  for (const place of places) {
    t.equal((await call(url, inventory, 'GET', `/${place}/undeclared`)).status, 200, place)
    t.equal((await call(url, inventory, 'GET', `/${place}/declared`)).status, 403, place)
  }
  t.equal((await call(url, inventory, 'GET', '/nowhere')).status, 404)
})

t.test('HTTP/2: routes added before the plugin are decided on every stream', async t => {
  const url = await build(t, 'not awaited', { policy }, true)
  const get = async (cert: IssuedCertificate, path: string): Promise<number> => {
    const session = http2Connect(url, { ca: pki.ca, cert: cert.chain, key: cert.key, servername: 'localhost' })
    try {
      return await new Promise((resolve, reject) => {
        const stream = session.request({ ':path': path })
        stream.on('response', headers => { resolve(Number(headers[':status'])); stream.resume() })
        stream.on('error', reject)
      })
    } finally {
      session.close()
    }
  }
  for (const place of places) {
    t.equal(await get(pki.inventoryService, `/${place}/declared`), 403, place)
    t.equal(await get(pki.orderService, `/${place}/declared`), 200, place)
    t.equal(await get(pki.orderService, `/${place}/undeclared`), 403, place)
  }
})

t.test('the hook option moves the guard to preHandler for every route too', async t => {
  const url = await build(t, 'not awaited', { policy, hook: 'preHandler' })
  const inventory = agentFor(t, pki, pki.inventoryService)
  for (const place of places) t.equal((await call(url, inventory, 'GET', `/${place}/declared`)).status, 403, place)
})

t.test('a route added before the plugin with a config.mtls that does not compile refuses every request and says why', async t => {
  const lines: Array<Record<string, unknown>> = []
  const logger = { level: 'warn', stream: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } } }
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  const app = Fastify({ https: serverTls.httpsOptions, logger })
  app.get('/typo', { config: { mtls: { rolse: ['payments:charge'] } as never } }, async () => 'ok')
  app.get('/early', charge, async () => 'ok')
  app.register(fastifyMtls, { tls: serverTls })
  app.register(fastifyMtlsIdentity)
  app.register(fastifyMtlsAuthz, { policy })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const order = agentFor(t, pki, pki.orderService)
  for (let i = 0; i < 2; i++) {
    const refused = await call(url, order, 'GET', '/typo')
    t.equal(refused.status, 500, 'refused, never opened')
    t.equal(refused.code, 'FST_MTLS_AUTHZ_INVALID_OPTION')
  }
  t.equal(lines.filter(line => String(line.msg).includes('every request to /typo is refused')).length, 1, 'logged once, naming the route')
  t.match(lines.find(line => String(line.msg).includes('/typo is refused')), { msg: /unknown option "rolse" \(did you mean "roles"\?\)/ })
  t.equal((await call(url, order, 'GET', '/early')).status, 200)
  t.equal(lines.filter(line => String(line.msg).includes('route /early was added before the plugin')).length, 1, 'a route added before the plugin is pointed out once')
})
