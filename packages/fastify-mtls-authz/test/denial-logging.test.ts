import { Writable } from 'node:stream'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { agentFor, startServer } from './helpers.js'
import { request } from 'undici'
import { LogController, type FastifyInstance } from 'fastify'

// Every 401 and 403 used to be logged twice: the audit line, and Fastify's default error handler logging the
// error at info with its whole stack (9 stacks in 83 lines of the demo's output). A denial is now one line.

const pki = await createTestPki()
const policy = { acl: [{ identities: ['spiffe://mycompany.com/production/order-service'], roles: ['payments:charge'] }] }
const routes = (app: FastifyInstance): void => {
  app.post('/charge', { config: { mtls: { roles: ['payments:charge'] } } }, async () => ({ charged: true }))
}
// Fastify's own access lines, one pair per request whatever the outcome (governed by its LogController's disableRequestLogging).
const ACCESS = new Set(['incoming request', 'request completed'])

/** A pino destination that keeps the lines, as they would be written, for the test to read. */
function destination (): { stream: Writable, lines: string[] } {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(...String(chunk).split('\n').filter(Boolean)); done() } })
  return { stream, lines }
}

async function post (url: string, agent: ReturnType<typeof agentFor>, path: string): Promise<{ status: number, body: unknown }> {
  const response = await request(`${url}${path}`, { dispatcher: agent, method: 'POST', body: '{"amount":1}', headers: { 'content-type': 'application/json' } })
  return { status: response.statusCode, body: await response.body.json() }
}

t.test('a 403 and a 401 are each logged once, by the audit line, with no stack', async t => {
  const { stream, lines } = destination()
  const { url } = await startServer(t, pki, { policy }, routes, { logger: { level: 'info', stream } })
  const cases = [
    {
      what: 'a 403',
      agent: agentFor(t, pki, pki.inventoryService),
      path: '/charge?amount=1',
      body: { statusCode: 403, code: 'FST_MTLS_AUTHZ_FORBIDDEN', error: 'Forbidden', message: 'spiffe://mycompany.com/production/inventory-service may not POST /charge?amount=1' },
      audit: { decision: 'deny', status: 403, code: 'FST_MTLS_AUTHZ_FORBIDDEN', identity: 'spiffe://mycompany.com/production/inventory-service', source: 'tls', method: 'POST', url: '/charge?amount=1', route: '/charge', rule: 'lacks role: one of payments:charge' }
    },
    {
      what: 'a 401',
      agent: agentFor(t, pki),
      path: '/charge',
      body: { statusCode: 401, code: 'FST_MTLS_AUTHZ_PEER_REQUIRED', error: 'Unauthorized', message: 'A verified client certificate is required (ERR_MTLS_NO_PEER_CERTIFICATE)' },
      audit: { decision: 'deny', status: 401, code: 'FST_MTLS_AUTHZ_PEER_REQUIRED', identity: null, source: null, method: 'POST', url: '/charge', route: '/charge', rule: 'no verified peer' }
    },
    {
      // optional mode lets a client that sent its leaf alone in; the 401 gives OpenSSL's reason
      what: 'a 401 for a leaf sent without its intermediate',
      agent: agentFor(t, pki, { chain: pki.orderService.certificate, key: pki.orderService.key }),
      path: '/charge',
      body: { statusCode: 401, code: 'FST_MTLS_AUTHZ_PEER_REQUIRED', error: 'Unauthorized', message: 'A verified client certificate is required (UNABLE_TO_VERIFY_LEAF_SIGNATURE)' },
      audit: { decision: 'deny', status: 401, code: 'FST_MTLS_AUTHZ_PEER_REQUIRED', identity: null, source: null, method: 'POST', url: '/charge', route: '/charge', rule: 'no verified peer' }
    }
  ]
  for (const { what, agent, path, body, audit } of cases) {
    const before = lines.length
    const answer = await post(url, agent, path)
    t.equal(answer.status, body.statusCode, `${what}: the status`)
    t.same(answer.body, body, `${what}: the body Fastify gives a FastifyError, code included`)
    const written = lines.slice(before).map(line => JSON.parse(line) as Record<string, unknown>)
    t.same(written.map(line => line.msg).filter(msg => ACCESS.has(msg as string)), ['incoming request', 'request completed'], `${what}: Fastify's access lines, as for any request`)
    const own = written.filter(line => !ACCESS.has(line.msg as string))
    t.equal(own.length, 1, `${what}: exactly one line of its own`)
    t.same(own[0]?.mtlsAuthz, audit, `${what}: the audit line, with identity, method, url, route, rule, status and code`)
    t.equal(own[0]?.level, 40, `${what}: at warn`)
    t.equal(own[0]?.msg, `mtls authz deny: ${body.message}`, `${what}: the message says why`)
    t.same(written.filter(line => 'err' in line), [], `${what}: no error logged`)
  }
  t.notOk(lines.some(line => line.includes('"stack"') || line.includes('    at ')), 'no stack anywhere in the log')

  const allowed = await post(url, agentFor(t, pki, pki.orderService), '/charge')
  t.equal(allowed.status, 200, 'an allowed caller reaches the handler')
})

t.test('with Fastify\'s request logging off, a denial is the audit line and nothing else', async t => {
  // Fastify 5 turns request logging off through a LogController; its top-level disableRequestLogging is deprecated (FSTDEP023).
  const warnings: string[] = []
  const onWarning = (warning: Error & { code?: string }): void => { warnings.push(warning.code ?? warning.name) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const { stream, lines } = destination()
  const { url } = await startServer(t, pki, { policy }, routes, { logger: { level: 'info', stream }, logController: new LogController({ disableRequestLogging: true }) })
  for (const [agent, status] of [[agentFor(t, pki, pki.inventoryService), 403], [agentFor(t, pki), 401]] as const) {
    const before = lines.length
    t.equal((await post(url, agent, '/charge')).status, status)
    t.same(lines.slice(before).map(line => (JSON.parse(line) as { mtlsAuthz?: { status: number } }).mtlsAuthz?.status), [status], `${status}: one line`)
  }
  t.same(warnings.filter(code => code.startsWith('FSTDEP')), [], 'no Fastify deprecation warning')
})

t.test('the guard answers its denials itself: an error handler cannot turn one into another status', async t => {
  const seen: string[] = []
  const { url } = await startServer(t, pki, { policy }, app => {
    // A handler that answers 200 to whatever it is given: a denial must not go through it.
    app.setErrorHandler(async (error: { code?: string }, _request, reply) => {
      seen.push(error.code ?? '')
      reply.code(200)
      return { handled: true }
    })
    routes(app)
    app.get('/hooked', { onRequest: app.mtlsAuthorize({ roles: ['payments:charge'] }) }, async () => 'ok')
  })
  const inventory = agentFor(t, pki, pki.inventoryService)
  t.equal((await post(url, inventory, '/charge')).status, 403, 'the guard\'s 403 stands')
  t.same(seen, [], 'the error handler was not asked')

  // A hook from mtlsAuthorize() hands its denial to whoever runs it, here Fastify, as a FastifyError with its
  // code and status and no stack: the application's error handler decides the answer.
  const hooked = await request(`${url}/hooked`, { dispatcher: inventory })
  t.same(await hooked.body.json(), { handled: true })
  t.same(seen, ['FST_MTLS_AUTHZ_FORBIDDEN'])
})

t.test('a denial from mtlsAuthorize() reaches the error handler as a FastifyError without a stack', async t => {
  const errors: Array<Record<string, unknown>> = []
  const { url } = await startServer(t, pki, { policy }, app => {
    app.setErrorHandler(async (error: Error & { code?: string, statusCode?: number }, _request, reply) => {
      errors.push({ name: error.name, code: error.code, statusCode: error.statusCode, stack: error.stack, message: error.message })
      reply.code(error.statusCode ?? 500)
      return { code: error.code }
    })
    app.get('/hooked', { onRequest: app.mtlsAuthorize({ roles: ['payments:charge'] }) }, async () => 'ok')
  })
  const answer = await request(`${url}/hooked`, { dispatcher: agentFor(t, pki) })
  t.equal(answer.statusCode, 401)
  t.same(await answer.body.json(), { code: 'FST_MTLS_AUTHZ_PEER_REQUIRED' })
  t.same(errors, [{ name: 'FastifyError', code: 'FST_MTLS_AUTHZ_PEER_REQUIRED', statusCode: 401, stack: undefined, message: 'A verified client certificate is required (ERR_MTLS_NO_PEER_CERTIFICATE)' }])
})
