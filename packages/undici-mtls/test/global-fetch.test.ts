// Node's global fetch (its bundled undici: 6 on Node 20, 7 on Node 24) with the agent as dispatcher, whichever
// undici the agent is built on (7 here; 8 on the Node 24 run). It speaks the older handler interface.
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import Fastify from 'fastify'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { createTestPki } from 'mtls-pki'
import { createMtlsAgent } from '../src/index.js'

const pki = await createTestPki()
const client = { cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca }
const big = Buffer.alloc(4 * 1024 * 1024, 'x')

const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
const app = Fastify({ https: serverTls.httpsOptions, bodyLimit: 8 * 1024 * 1024 })
await app.register(fastifyMtls, { tls: serverTls, watch: false })
app.post('/echo', async request => ({ received: request.body, length: request.headers['content-length'] }))
app.get('/big', async (_request, reply) => reply.header('content-type', 'application/octet-stream').send(big))
await app.listen({ port: 0, host: '127.0.0.1' })
t.teardown(() => app.close())
const url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`
const fetchWith = async (path: string, init: Record<string, unknown>): Promise<Response> => await globalThis.fetch(`${url}${path}`, init as RequestInit)

t.test('a JSON POST and its answer', async t => {
  const agent = await createMtlsAgent(client)
  t.teardown(() => agent.close())
  const response = await fetchWith('/echo', { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amount: 42 }) })
  t.equal(response.status, 200)
  t.same(await response.json(), { received: { amount: 42 }, length: '13' })
})

t.test('a 4 MB answer arrives whole, through the paused and resumed stream', async t => {
  const agent = await createMtlsAgent(client)
  t.teardown(() => agent.close())
  const response = await fetchWith('/big', { dispatcher: agent })
  const body = Buffer.from(await response.arrayBuffer())
  t.equal(body.length, big.length)
  t.equal(createHash('sha256').update(body).digest('hex'), createHash('sha256').update(big).digest('hex'))
})

t.test('a server that is not the one expected fails the fetch with the agent\'s error as its cause', async t => {
  const agent = await createMtlsAgent({ ...client, server: 'spiffe://mycompany.com/production/ledger-service' })
  t.teardown(() => agent.close())
  await t.rejects(fetchWith('/echo', { dispatcher: agent, method: 'POST', body: '{}' }), { name: 'TypeError', cause: { code: 'ERR_MTLS_SERVER_UNAUTHORIZED' } })
})

t.test('an aborted fetch ends, and the agent keeps serving', async t => {
  const agent = await createMtlsAgent(client)
  t.teardown(() => agent.close())
  const controller = new AbortController()
  const response = await fetchWith('/big', { dispatcher: agent, signal: controller.signal })
  controller.abort()
  await t.rejects(response.arrayBuffer(), { name: 'AbortError' })
  t.equal((await fetchWith('/echo', { dispatcher: agent, method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } })).status, 200)
})
