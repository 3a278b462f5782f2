import { writeFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import Fastify from 'fastify'
import fastifyAuth from '@fastify/auth'
import { createTestPki } from 'mtls-pki'
import { toPeerIdentity } from 'mtls-core'
import { readPemBlocks } from 'mtls-core/internal'
import defaultExport, { fastifyMtlsAuthz, type AuthzDecision } from '../src/index.js'
import { agentFor, call, startServer } from './helpers.js'

const pki = await createTestPki()
const identityOf = (pem: string) => toPeerIdentity(readPemBlocks(pem)[0]!.der)
const policy = {
  acl: [
    { identities: ['spiffe://mycompany.com/production/order-service'], roles: ['payments:charge'] },
    { identities: ['spiffe://mycompany.com/production/**'], roles: ['payments:read'] }
  ]
}

t.test('the default and the named export are the same plugin', async t => {
  t.equal(defaultExport, fastifyMtlsAuthz)
  t.equal((fastifyMtlsAuthz as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')], 'fastify-mtls-authz')
})

t.test('at onRequest an unauthorized caller\'s body is never read; at preHandler it is, and still refused', async t => {
  for (const hook of ['onRequest', 'preHandler'] as const) {
    let parsed = 0
    const { url } = await startServer(t, pki, { policy, hook }, app => {
      app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => { parsed++; done(null, JSON.parse(body as string)) })
      app.post('/charge', { config: { mtls: { roles: ['payments:charge'] } } }, async () => 'charged')
    })
    const denied = await call(url, agentFor(t, pki, pki.inventoryService), 'POST', '/charge', ['content-type', 'application/json'], '{"amount":1}')
    t.equal(denied.status, 403)
    t.equal(parsed, hook === 'onRequest' ? 0 : 1, `${hook}: body parsed ${hook === 'onRequest' ? 'never' : 'before the check'}`)
    const allowed = await call(url, agentFor(t, pki, pki.orderService), 'POST', '/charge', ['content-type', 'application/json'], '{"amount":1}')
    t.equal(allowed.status, 200)
  }
})

t.test('fastify.mtlsAuthorize() works as a hook and composes with @fastify/auth', async t => {
  const { url } = await startServer(t, pki, { policy }, app => {
    app.get('/hooked', { onRequest: app.mtlsAuthorize({ roles: ['payments:charge'] }) }, async () => 'ok')
    app.get('/pre', { preHandler: app.mtlsAuthorize({ allow: ['spiffe://mycompany.com/production/inventory-service'] }) }, async () => 'ok')
  }, {})
  const order = agentFor(t, pki, pki.orderService)
  const inventory = agentFor(t, pki, pki.inventoryService)
  t.equal((await call(url, order, 'GET', '/hooked')).status, 200)
  t.equal((await call(url, inventory, 'GET', '/hooked')).status, 403)
  t.equal((await call(url, inventory, 'GET', '/pre')).status, 200)
  t.equal((await call(url, order, 'GET', '/pre')).code, 'FST_MTLS_AUTHZ_FORBIDDEN')

  const { app: authApp, url: authUrl } = await startServerWithAuth(t)
  t.equal((await call(authUrl, order, 'GET', '/either')).status, 200, 'mtls strategy passes')
  t.equal((await call(authUrl, inventory, 'GET', '/either', ['x-api-key', 'secret'])).status, 200, 'the other strategy passes')
  const refused = await call(authUrl, inventory, 'GET', '/either')
  t.equal(refused.status, 401, 'both fail: @fastify/auth answers with the last strategy\'s error')
  t.ok(authApp.hasDecorator('auth'))
})

async function startServerWithAuth (t: Parameters<typeof startServer>[0]) {
  return await startServer(t, pki, { policy }, app => {
    app.register(fastifyAuth).after(() => {
      const apiKey = (request: { headers: Record<string, unknown> }, _reply: unknown, done: (err?: Error) => void): void => {
        done(request.headers['x-api-key'] === 'secret' ? undefined : Object.assign(new Error('bad key'), { statusCode: 401 }))
      }
      app.get('/either', { config: { mtls: { public: true } }, onRequest: app.auth([app.mtlsAuthorize({ roles: ['payments:charge'] }), apiKey]) }, async () => 'ok')
    })
  })
}

t.test('every decision is audited once, denials at warn, and passed to onDecision', async t => {
  const lines: Array<Record<string, unknown>> = []
  const decisions: AuthzDecision[] = []
  const logger = { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } } }
  const { url } = await startServer(t, pki, { policy, onDecision: decision => decisions.push(decision) }, app => {
    app.post('/charge', { config: { mtls: { roles: ['payments:charge'] } } }, async () => 'charged')
  }, { logger })
  await call(url, agentFor(t, pki, pki.orderService), 'POST', '/charge')
  await call(url, agentFor(t, pki, pki.inventoryService), 'POST', '/charge')
  t.same(decisions, [
    { decision: 'allow', status: 200, code: null, identity: 'spiffe://mycompany.com/production/order-service', source: 'tls', method: 'POST', url: '/charge', route: '/charge', rule: 'role payments:charge' },
    { decision: 'deny', status: 403, code: 'FST_MTLS_AUTHZ_FORBIDDEN', identity: 'spiffe://mycompany.com/production/inventory-service', source: 'tls', method: 'POST', url: '/charge', route: '/charge', rule: 'lacks role: one of payments:charge' }
  ])
  const audit = lines.filter(line => line.mtlsAuthz !== undefined)
  t.equal(audit.length, 2, 'one line per decision')
  t.same(audit[0]?.msg, 'mtls authz allow')
  t.match(audit[0], { level: 30, mtlsAuthz: decisions[0] })
  t.same(audit[1]?.msg, 'mtls authz deny: spiffe://mycompany.com/production/inventory-service may not POST /charge')
  t.match(audit[1], { level: 40, mtlsAuthz: decisions[1] })
})

t.test('explain() gives the decision and the rule that made it', async t => {
  const { app } = await startServer(t, pki, { policy: { ...policy, deny: ['spiffe://mycompany.com/production/revoked-service'] } }, app => {
    app.get('/api/payments/:id', { config: { mtls: { roles: ['payments:read'] } } }, async () => 'ok')
    app.get('/health', { config: { mtls: { public: true } } }, async () => 'ok')
  })
  t.same(app.mtlsAuthz.explain(identityOf(pki.orderService.certificate), 'GET', '/api/payments/42'), { allowed: true, status: 200, rule: 'role payments:read', route: '/api/payments/:id' })
  t.same(app.mtlsAuthz.explain(identityOf(pki.revoked.certificate), 'GET', '/api/payments/42'), { allowed: false, status: 403, rule: 'policy deny spiffe://mycompany.com/production/revoked-service', route: '/api/payments/:id' })
  t.same(app.mtlsAuthz.explain(null, 'GET', '/api/payments/42'), { allowed: false, status: 401, rule: 'no verified peer', route: '/api/payments/:id' })
  t.same(app.mtlsAuthz.explain(null, 'GET', '/health'), { allowed: true, status: 200, rule: 'route is public', route: '/health' })
  t.equal(app.mtlsAuthz.explain(null, 'GET', '/nowhere'), null)
  t.same(app.mtlsAuthz.rolesOf(identityOf(pki.orderService.certificate)).sort(), ['payments:charge', 'payments:read'])
})

t.test('setPolicy swaps the whole policy atomically under load; an invalid one is refused and the old one stays', async t => {
  const grant = { acl: [{ identities: ['spiffe://mycompany.com/production/inventory-service'], roles: ['a', 'b'] }] }
  const revoke = { acl: [] }
  const { app, url } = await startServer(t, pki, { policy: grant }, app => {
    app.get('/both', { config: { mtls: { allRoles: ['a', 'b'] } } }, async () => 'ok')
  })
  const agent = agentFor(t, pki, pki.inventoryService)
  const seen = new Map<number, number>()
  let swaps = 0
  const control = { stop: false }
  const load = (async () => {
    for (let i = 0; i < 2000 && !control.stop; i++) {
      const { status } = await call(url, agent, 'GET', '/both')
      seen.set(status, (seen.get(status) ?? 0) + 1)
    }
  })()
  for (; swaps < 200; swaps++) {
    app.mtlsAuthz.setPolicy(swaps % 2 === 0 ? revoke : grant)
    await new Promise(resolve => setImmediate(resolve))
  }
  control.stop = true
  await load
  t.same([...seen.keys()].filter(status => status !== 200 && status !== 403), [], 'only 200 and 403, never an error from half a policy')
  t.ok((seen.get(200) ?? 0) + (seen.get(403) ?? 0) > 0)
  t.throws(() => app.mtlsAuthz.setPolicy({ acl: [{ identities: ['not a pattern'], roles: ['a'] }] }), { code: 'FST_MTLS_AUTHZ_INVALID_POLICY', message: /identity pattern "not a pattern"/ })
  t.throws(() => app.mtlsAuthz.setPolicy({ defaultPolicy: 'maybe' } as never), { code: 'FST_MTLS_AUTHZ_INVALID_POLICY', message: /defaultPolicy must be 'deny' or 'allow'/ })
  t.throws(() => app.mtlsAuthz.setPolicy({ roles: {} } as never), { message: /policy: unknown option "roles"/ })
  t.throws(() => app.mtlsAuthz.setPolicy({ acl: [{ identities: 'x' }] } as never), { message: /acl\[0\] must be/ })
  t.throws(() => app.mtlsAuthz.setPolicy({ acl: [{ identities: ['cn:x'], roles: [''] }] }), { message: /cannot be empty/ })
  t.throws(() => app.mtlsAuthz.setPolicy({ acl: {} } as never), { message: /acl must be a list/ })
  t.throws(() => app.mtlsAuthz.setPolicy({ deny: 'x' } as never), { message: /deny must be a list/ })
  t.throws(() => app.mtlsAuthz.setPolicy(null as never), { message: /the policy must be an object/ })
  t.same(app.mtlsAuthz.policy, swaps % 2 === 0 ? grant : revoke, 'the last valid policy stays')
})

t.test('a watched policy file: valid changes are swapped in, invalid ones logged once and ignored', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'mtls-authz-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const policyFile = join(dir, 'policy.json')
  await writeFile(policyFile, JSON.stringify({ acl: [] }))
  const lines: Array<Record<string, unknown>> = []
  const logger = { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } } }
  const { app, url } = await startServer(t, pki, { policyFile }, app => {
    app.get('/read', { config: { mtls: { roles: ['payments:read'] } } }, async () => 'ok')
  }, { logger })
  const agent = agentFor(t, pki, pki.orderService)
  t.equal((await call(url, agent, 'GET', '/read')).status, 403)
  const logged = async (msg: string): Promise<void> => {
    for (let i = 0; i < 200 && !lines.some(line => String(line.msg).startsWith(msg)); i++) await new Promise(resolve => setTimeout(resolve, 25))
  }
  await writeFile(policyFile, JSON.stringify(policy))
  await logged('fastify-mtls-authz: policy reloaded')
  t.equal((await call(url, agent, 'GET', '/read')).status, 200, 'the new policy applies')
  await writeFile(policyFile, '{ not json')
  await logged('fastify-mtls-authz: policy file refused')
  t.equal((await call(url, agent, 'GET', '/read')).status, 200, 'the previous policy stays')
  t.match(lines.find(line => String(line.msg).startsWith('fastify-mtls-authz: policy file refused')), { level: 50, msg: /not JSON/ })
  t.same(app.mtlsAuthz.policy, policy)
})

t.test('registration problems fail ready() with a clear message', async t => {
  const app = Fastify()
  await t.rejects(async () => { await app.register(fastifyMtlsAuthz).ready() }, /The decorator 'peerIdentity' required by 'fastify-mtls-authz' is not present in Request/, 'the identity plugin is required')
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ hook: 'onSend' }, /hook must be 'onRequest' or 'preHandler'/],
    [{ allowLogLevel: 'loud' }, /allowLogLevel must be a log level/],
    [{ onDecision: 'log' }, /onDecision must be a function/],
    [{ policy: {}, policyFile: '/x' }, /give policy or policyFile, not both/],
    [{ policyFile: '/nonexistent/policy.json' }, /\/nonexistent\/policy.json: cannot read \(ENOENT\)/],
    [{ policy: { defaultPolicy: 'never' } }, /defaultPolicy must be/]
  ]
  for (const [options, message] of cases) {
    await t.rejects(startServer(t, pki, options as never, () => {}), { message }, JSON.stringify(options))
  }
  const routeCases: Array<[Record<string, unknown>, RegExp]> = [
    [{ roles: 'payments:read' }, /GET \/x: config.mtls.roles must be a list of non-empty strings/],
    [{ public: true, roles: ['a'] }, /public cannot be combined/],
    [{ public: 'yes' }, /public must be true or false/],
    [{ allow: ['nope'] }, /config.mtls.allow: identity pattern "nope"/],
    [{ role: ['a'] }, /config.mtls: unknown option "role" \(did you mean "roles"\?\)/],
    [[] as never, /config.mtls must be an object/]
  ]
  for (const [mtls, message] of routeCases) {
    await t.rejects(startServer(t, pki, { policy }, app => { app.get('/x', { config: { mtls: mtls as never } }, async () => 'ok') }), { code: 'FST_MTLS_AUTHZ_INVALID_OPTION', message }, JSON.stringify(mtls))
  }
})
