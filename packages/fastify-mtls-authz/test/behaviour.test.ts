import { writeFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import Fastify from 'fastify'
import fastifyAuth from '@fastify/auth'
import { createTestPki } from 'mtls-pki'
import { hangLimit, until } from 'mtls-test-support'
import { toPeerIdentity } from 'mtls-core'
import { readPemBlocks } from 'mtls-core/internal'
import defaultExport, { fastifyMtlsAuthz, type AuthzDecision } from '../src/index.js'
import { agentFor, call, countOpens, fileReplacer, startServer } from './helpers.js'

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

t.test('setPolicy swaps the whole policy atomically under load: every answer is one policy\'s, and a request sent after a swap gets the new one', async t => {
  const inventory = 'spiffe://mycompany.com/production/inventory-service'
  const order = 'spiffe://mycompany.com/production/order-service'
  // Two policies that differ in every part (roles, deny list, defaultPolicy). A request decided on parts of both
  // (order-service's roles from the second without its deny) gets an answer neither policy gives; one decided on
  // roles kept from the policy before (they are cached per connection) gets the old policy's answer after the swap.
  const policies = [
    { acl: [{ identities: [inventory], roles: ['a', 'b'] }, { identities: [order], roles: ['c'] }], defaultPolicy: 'deny' as const },
    { acl: [{ identities: [inventory], roles: ['c'] }, { identities: [order], roles: ['a', 'b'] }], deny: [order], defaultPolicy: 'allow' as const }
  ]
  const routes = ['/both', '/c', '/open'] as const
  // Each policy's answer, as status and the rule that decided, per caller and route.
  const answers: Array<Record<string, Record<typeof routes[number], string>>> = [
    {
      [inventory]: { '/both': '200 roles a, b', '/c': '403 lacks role: one of c', '/open': '403 defaultPolicy deny' },
      [order]: { '/both': '403 lacks role: all of a, b', '/c': '200 role c', '/open': '403 defaultPolicy deny' }
    },
    {
      [inventory]: { '/both': '403 lacks role: all of a, b', '/c': '200 role c', '/open': '200 defaultPolicy allow' },
      [order]: { '/both': `403 policy deny ${order}`, '/c': `403 policy deny ${order}`, '/open': `403 policy deny ${order}` }
    }
  ]
  const rules = new Map<string, string>()
  const { app, url } = await startServer(t, pki, { policy: policies[0]!, onDecision: (decision, request) => rules.set(String(request.headers['x-probe']), decision.rule) }, app => {
    app.get('/both', { config: { mtls: { allRoles: ['a', 'b'] } } }, async () => 'ok')
    app.get('/c', { config: { mtls: { roles: ['c'] } } }, async () => 'ok')
    app.get('/open', async () => 'ok')
  })
  const callers = [{ id: inventory, agent: agentFor(t, pki, pki.inventoryService) }, { id: order, agent: agentFor(t, pki, pki.orderService) }]
  const SWAPS = 40
  const WORKERS = 4
  const TAIL = 10 // requests per worker after the last swap
  // Only a bound for a run that went wrong: each swap waits for a request, and the check below says if one was missed.
  const deadline = Date.now() + hangLimit(60_000)
  // epoch n has policies[n % 2] in force; a request that starts and ends in one epoch was decided by that policy.
  let epoch = 0
  let probes = 0
  const observations: Array<{ caller: string, route: typeof routes[number], sent: number, answered: number, answer: string, bodyOk: boolean }> = []
  const cleanIn = (n: number): number => observations.filter(o => o.sent === n && o.answered === n).length
  const probe = async (): Promise<void> => {
    const n = probes++
    const caller = callers[n % 2]!
    const route = routes[Math.floor(n / 2) % 3]!
    const sent = epoch
    const { status, code, message } = await call(url, caller.agent, 'GET', route, ['x-probe', String(n)])
    const bodyOk = status === 200 ? code === null : code === 'FST_MTLS_AUTHZ_FORBIDDEN' && message === `${caller.id} may not GET ${route}`
    observations.push({ caller: caller.id, route, sent, answered: epoch, answer: `${status} ${rules.get(String(n)) ?? '(no decision)'}`, bodyOk })
  }
  const load = { swapping: true }
  const workers = Array.from({ length: WORKERS }, async () => {
    while (load.swapping && Date.now() < deadline) await probe()
    for (let i = 0; i < TAIL; i++) await probe()
  })
  // Each swap waits until one request was decided wholly under the policy in force, so both are seen throughout.
  for (let swap = 0; swap < SWAPS && Date.now() < deadline; swap++) {
    while (cleanIn(epoch) === 0 && Date.now() < deadline) await new Promise(resolve => setImmediate(resolve))
    app.mtlsAuthz.setPolicy(policies[(epoch + 1) % 2]!)
    epoch++
  }
  load.swapping = false
  await Promise.all(workers)

  t.equal(epoch, SWAPS, `${SWAPS} swaps within the time allowed`)
  t.equal(observations.length, probes, `${probes} requests, every one answered`)
  const stray = observations.filter(o => o.answer !== answers[0]![o.caller]![o.route] && o.answer !== answers[1]![o.caller]![o.route])
  t.same(stray, [], 'every answer is one that one of the two policies gives')
  t.same(observations.filter(o => !o.bodyOk), [], 'every body is the one its status comes with')
  const stale = observations.filter(o => o.sent === o.answered && o.answer !== answers[o.sent % 2]![o.caller]![o.route])
  t.same(stale, [], 'a request sent after a swap and answered before the next gets the policy swapped in')
  t.same(Array.from({ length: SWAPS }, (_, n) => n).filter(n => cleanIn(n) === 0), [], 'each policy in turn decided requests of its own')
  t.ok(cleanIn(SWAPS) >= WORKERS * TAIL, `${cleanIn(SWAPS)} requests after the last swap, all checked against the last policy above`)
  const straddling = observations.filter(o => o.sent !== o.answered).length
  t.ok(straddling > 0, `requests were in flight during swaps (${straddling} of ${observations.length})`)

  t.throws(() => app.mtlsAuthz.setPolicy({ acl: [{ identities: ['not a pattern'], roles: ['a'] }] }), { code: 'FST_MTLS_AUTHZ_INVALID_POLICY', message: /identity pattern "not a pattern"/ })
  t.throws(() => app.mtlsAuthz.setPolicy({ defaultPolicy: 'maybe' } as never), { code: 'FST_MTLS_AUTHZ_INVALID_POLICY', message: /defaultPolicy must be 'deny' or 'allow'/ })
  t.throws(() => app.mtlsAuthz.setPolicy({ roles: {} } as never), { message: /policy: unknown option "roles"/ })
  t.throws(() => app.mtlsAuthz.setPolicy({ acl: [{ identities: 'x' }] } as never), { message: /acl\[0\] must be/ })
  t.throws(() => app.mtlsAuthz.setPolicy({ acl: [{ identities: ['cn:x'], roles: [''] }] }), { message: /cannot be empty/ })
  t.throws(() => app.mtlsAuthz.setPolicy({ acl: {} } as never), { message: /acl must be a list/ })
  t.throws(() => app.mtlsAuthz.setPolicy({ deny: 'x' } as never), { message: /deny must be a list/ })
  t.throws(() => app.mtlsAuthz.setPolicy(null as never), { message: /the policy must be an object/ })
  t.same(app.mtlsAuthz.policy, policies[epoch % 2], 'the last valid policy stays')
  const before = observations.length
  for (let i = 0; i < routes.length * callers.length; i++) await probe()
  t.same(observations.slice(before).filter(o => o.answer !== answers[epoch % 2]![o.caller]![o.route]), [], 'and still decides every request')
})

t.test('a watched policy file: valid changes are swapped in, invalid ones logged once and ignored', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'mtls-authz-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const policyFile = join(dir, 'policy.json')
  await writeFile(policyFile, JSON.stringify({ acl: [] }))
  const replace = await fileReplacer(t, policyFile)
  const lines: Array<Record<string, unknown>> = []
  const logger = { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } } }
  const { app, url } = await startServer(t, pki, { policyFile }, app => {
    app.get('/read', { config: { mtls: { roles: ['payments:read'] } } }, async () => 'ok')
  }, { logger })
  const opens = countOpens(t, policyFile)
  const agent = agentFor(t, pki, pki.orderService)
  t.equal((await call(url, agent, 'GET', '/read')).status, 403)
  const logged = async (msg: string): Promise<void> => { await until(() => lines.some(line => String(line.msg).startsWith(msg)), msg) }
  await replace(JSON.stringify(policy))
  await logged('fastify-mtls-authz: policy reloaded')
  t.equal((await call(url, agent, 'GET', '/read')).status, 200, 'the new policy applies')
  await replace('{ not json')
  await logged('fastify-mtls-authz: policy file refused')
  t.equal((await call(url, agent, 'GET', '/read')).status, 200, 'the previous policy stays')
  const refusals = (): Array<Record<string, unknown>> => lines.filter(line => String(line.msg).startsWith('fastify-mtls-authz: policy file refused'))
  t.match(refusals(), [{ level: 50, msg: /not JSON/ }])
  // The same refused text written again is read and not logged again (the next change is read after it, so its
  // line would come first); JSON that is no valid policy is refused with its reason.
  const opened = opens()
  await replace('{ not json')
  await until(() => opens() > opened, 'the watcher to read the same refused text')
  await replace(JSON.stringify({ acl: {} }))
  await until(() => refusals().length >= 2, 'the invalid policy to be refused')
  t.same(refusals().map(line => line.msg).slice(1), [`fastify-mtls-authz: policy file refused, the previous policy stays: fastify-mtls-authz: invalid policy: ${policyFile}: acl must be a list of { identities, roles }`], 'logged once each, the invalid policy with its reason')
  t.equal((await call(url, agent, 'GET', '/read')).status, 200, 'the previous policy still stays')
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
    [{ policyFile: '/nonexistent/policy.json' }, /\/nonexistent\/policy.json: cannot read \(no such file\)/],
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
