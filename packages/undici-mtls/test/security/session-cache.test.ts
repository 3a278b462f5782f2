// Attacks on the agent's session cache (session-cache.ts): how long a session is offered, and when none is.
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import Fastify from 'fastify'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { createRootCa, createTestPki } from 'mtls-pki'
import { request } from 'undici'
import { createMtlsAgent, type MtlsAgent } from '../../src/index.js'
import { beforeExpiry, pastExpiry } from '../helpers.js'

const pki = await createTestPki()
const client = { cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca }

async function serve (t: { teardown: (fn: () => unknown) => void }, tlsOptions: { cert: string, key: string, ca: string }): Promise<string> {
  const serverTls = await loadServerTls(tlsOptions)
  const app = Fastify({ https: serverTls.httpsOptions })
  await app.register(fastifyMtls, { tls: serverTls, watch: false })
  app.get('/', async request => ({ resumed: (request.raw.socket as TLSSocket).isSessionReused() }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return `https://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

async function get (url: string, agent: MtlsAgent): Promise<{ status: number, resumed: boolean } | { error: string }> {
  try {
    const response = await request(url, { dispatcher: agent, reset: true })
    return { status: response.statusCode, resumed: (await response.body.json() as { resumed: boolean }).resumed }
  } catch (err) {
    return { error: (err as { code?: string }).code ?? (err as Error).message }
  }
}

t.test('a session is not offered once the server chain it was verified with has expired (an intermediate, not the leaf)', async t => {
  const root = await createRootCa({ commonName: 'server chain root' })
  const ca = root.certificate + pki.ca
  const { expiry: notAfter, url, agent, resumed } = await beforeExpiry(t, async notAfter => {
    const shortCa = await root.createIntermediate({ commonName: 'short-lived server CA', notBefore: new Date(Date.now() - 60_000), notAfter })
    const server = await shortCa.issue({ usage: 'server', spiffeId: 'spiffe://mycompany.com/production/payment-service', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
    const url = await serve(t, { cert: server.chain, key: server.key, ca: pki.ca + root.certificate })
    const agent = await createMtlsAgent({ ...client, ca, server: 'spiffe://mycompany.com/production/payment-service' })
    t.teardown(() => agent.close())
    await get(url, agent)
    return { url, agent, resumed: await get(url, agent) }
  })
  t.same(resumed, { status: 200, resumed: true }, 'while the chain is valid, sessions resume')

  await pastExpiry(notAfter)
  const other = await createMtlsAgent({ ...client, ca, server: 'spiffe://mycompany.com/production/payment-service' })
  t.teardown(() => other.close())
  t.match(await get(url, other), { error: /CERT|EXPIRED/ }, 'a full handshake refuses the server: its intermediate has expired')
  // This got through before the fix: { status: 200, resumed: true }: session-cache.ts get() compares against the leaf's notAfter only,
  // so the agent keeps talking to a server whose chain no longer verifies, for as long as it resumes.
  t.match(await get(url, agent), { error: /CERT|EXPIRED/ }, 'the agent does not resume into it either')
})

t.test('maxCachedSessions: 0 never resumes, with HTTP/1.1 or allowH2', async t => {
  const url = await serve(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  for (const allowH2 of [false, true]) {
    const agent = await createMtlsAgent({ ...client, maxCachedSessions: 0, agent: { allowH2 } })
    t.teardown(() => agent.close())
    const results = []
    for (let i = 0; i < 3; i++) results.push(await get(url, agent))
    t.same(results.map(r => 'resumed' in r ? r.resumed : r.error), [false, false, false], `allowH2: ${String(allowH2)}`)
  }
  const resuming = await createMtlsAgent({ ...client, maxCachedSessions: 1 })
  t.teardown(() => resuming.close())
  await get(url, resuming)
  t.match(await get(url, resuming), { resumed: true }, 'while 1 does')
})

t.test('two agents never share sessions, and reload() of the client certificate drops them', async t => {
  const url = await serve(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const a = await createMtlsAgent(client)
  const b = await createMtlsAgent({ cert: pki.inventoryService.chain, key: pki.inventoryService.key, ca: pki.ca })
  t.teardown(() => a.close())
  t.teardown(() => b.close())
  await get(url, a)
  t.match(await get(url, a), { resumed: true })
  t.match(await get(url, b), { resumed: false }, 'b does not resume a\'s session')
  await a.source.reload({ cert: pki.inventoryService.chain, key: pki.inventoryService.key, ca: pki.ca })
  t.match(await get(url, a), { resumed: false }, 'after a changes certificate, its old sessions are not offered')
})
