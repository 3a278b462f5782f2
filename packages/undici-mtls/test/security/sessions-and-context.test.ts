// Sessions the agent resumed carried the identity they were first verified with, after the server had
// become another service (or another service with the same ticket keys took its address), and after the
// server's certificate had expired. And every new connection built a TLS context from PEM.
import { randomBytes } from 'node:crypto'
import { writeFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import t from 'tap'
import Fastify from 'fastify'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { interceptors, request } from 'undici'
import { MtlsAgent, createMtlsAgent } from '../../src/index.js'
import { beforeExpiry, pastExpiry, startServer } from '../helpers.js'

const pki = await createTestPki()
const client = { cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca }
const asService = (name: string, extra: Record<string, unknown> = {}): Promise<IssuedCertificate> =>
  pki.intermediate.issue({ usage: 'server', commonName: 'localhost', spiffeId: `spiffe://mycompany.com/production/${name}`, dnsNames: ['localhost'], ips: ['127.0.0.1'], ...extra })

async function serve (t: { teardown: (fn: () => unknown) => void }, cert: IssuedCertificate, options: { ticketKeysFile?: string, port?: number } = {}): Promise<{ url: string, close: () => Promise<void> }> {
  const serverTls = await loadServerTls({ cert: cert.chain, key: cert.key, ca: pki.ca, ...(options.ticketKeysFile === undefined ? {} : { ticketKeysFile: options.ticketKeysFile }) })
  const app = Fastify({ https: serverTls.httpsOptions })
  await app.register(fastifyMtls, { tls: serverTls, watch: false })
  app.get('/', async request => ({ resumed: (request.raw.socket as tls.TLSSocket).isSessionReused() }))
  await app.listen({ port: options.port ?? 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { url: `https://127.0.0.1:${(app.server.address() as { port: number }).port}`, close: async () => { await app.close() } }
}

async function get (url: string, agent: MtlsAgent): Promise<{ status: number, resumed: boolean }> {
  const response = await request(url, { dispatcher: agent, reset: true })
  const body = await response.body.json() as { resumed: boolean }
  return { status: response.statusCode, resumed: body.resumed }
}

t.test('a session does not resume into a server that has become another service', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'undici-mtls-sessions-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const ticketKeysFile = join(dir, 'ticket.key')
  await writeFile(ticketKeysFile, randomBytes(48), { mode: 0o600 })
  const payment = await serve(t, await asService('payment-service'), { ticketKeysFile })
  const agent = await createMtlsAgent({ ...client, server: 'spiffe://mycompany.com/production/payment-service' })
  t.teardown(() => agent.close())
  await get(payment.url, agent)
  t.same(await get(payment.url, agent), { status: 200, resumed: true }, 'payment-service: sessions resume')

  // The ledger service, sharing the ticket keys file, takes over the same address.
  const port = Number(new URL(payment.url).port)
  await payment.close()
  const ledger = await serve(t, await asService('ledger-service'), { ticketKeysFile, port })
  t.equal(ledger.url, payment.url)
  await t.rejects(get(ledger.url, agent), { code: 'ERR_MTLS_SERVER_UNAUTHORIZED', actual: 'spiffe://mycompany.com/production/ledger-service' }, 'it had to show its certificate, and is refused')
})

t.test('a session is not offered once the server certificate it was verified with has expired', async t => {
  const { expiry: notAfter, url, agent, resumed } = await beforeExpiry(t, async notAfter => {
    const server = await serve(t, await asService('payment-service', { notBefore: new Date(Date.now() - 60_000), notAfter }))
    const agent = await createMtlsAgent({ ...client, server: 'spiffe://mycompany.com/production/payment-service' })
    t.teardown(() => agent.close())
    await get(server.url, agent)
    return { url: server.url, agent, resumed: await get(server.url, agent) }
  })
  t.same(resumed, { status: 200, resumed: true })
  await pastExpiry(notAfter)
  await t.rejects(get(url, agent), { code: 'ERR_MTLS_SERVER_CERT_EXPIRED' }, 'a full handshake, which finds the certificate expired')
})

t.test('one secure context per client material, shared by every new connection', async t => {
  const { url } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const agent = await createMtlsAgent({ ...client, maxCachedSessions: 0 })
  t.teardown(() => agent.close())
  const original = tls.createSecureContext
  let built = 0
  tls.createSecureContext = (...args: Parameters<typeof tls.createSecureContext>) => { built++; return original(...args) }
  t.teardown(() => { tls.createSecureContext = original })
  let connections = 0
  agent.on('connect', () => { connections++ })
  for (let i = 0; i < 10; i++) t.equal((await request(`${url}/whoami`, { dispatcher: agent, reset: true })).statusCode, 200)
  t.equal(connections, 10, 'ten new connections, seen through undici\'s own connect event')
  t.equal(built, 0, 'and no TLS context built for any of them')
  await agent.reload() // unchanged material: still none
  t.equal(built, 0)
})

t.test('the agent is an undici Agent: interceptors compose, options it owns are refused', async t => {
  const { url } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const agent = await createMtlsAgent(client)
  t.teardown(() => agent.close())
  let seen = 0
  const counting = interceptors.dump()
  const composed = agent.compose(dispatch => (options, handler) => { seen++; return dispatch(options, handler) }, counting)
  t.equal((await request(`${url}/whoami`, { dispatcher: composed })).statusCode, 200)
  t.equal(seen, 1)
  await t.rejects(createMtlsAgent({ ...client, agent: { connect: {} } as never }), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION', message: /agent.connect/ })
  await t.rejects(createMtlsAgent({ ...client, agent: { maxCachedSessions: 5 } as never }), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION', message: /give maxCachedSessions beside agent/ })
  await t.rejects(createMtlsAgent({ ...client, maxCachedSessions: -1 }), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION' })
})
