// The attack: with a federated trust bundle in force (a SPIFFE Workload API source pushes one), OpenSSL verifies
// client chains against every bundle at once, so the partner's CA could issue spiffe://mycompany.com/... and be
// taken for one of ours. The trust kept by trust domain refuses it: at the handshake in require mode, as an
// unverified peer with its reason in optional mode, on resumed sessions and HTTP/2 alike.
import http2 from 'node:http2'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import { fastifyMtls, loadServerTls, type MtlsMode } from 'fastify-mtls'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { PemFeed, agentFor, startFastifyServer, type Teardown } from 'mtls-test-support'
import { request } from 'undici'
import { fastifyMtlsIdentity } from '../../src/index.js'

const pki = await createTestPki()
const partner = await createTestPki({ trustDomain: 'partner.example' })
const ORDER = 'spiffe://mycompany.com/production/order-service'
const forged = await partner.intermediate.issue({ spiffeId: ORDER, usage: 'client' })
const federated = { 'mycompany.com': pki.ca, 'partner.example': partner.ca }

async function startServer (t: Teardown, mode: MtlsMode, fastifyOptions: Record<string, unknown> = {}) {
  const feed = new PemFeed({ cert: pki.server.chain, key: pki.server.key, trustDomains: federated })
  const serverTls = await loadServerTls({ x509Source: feed, mode })
  const https = fastifyOptions.http2 === true ? { ...serverTls.httpsOptions, allowHTTP1: true } : serverTls.httpsOptions
  const server = await startFastifyServer(t, { https, fastify: fastifyOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls })
    await app.register(fastifyMtlsIdentity)
    app.get('/who', async request => {
      const raw = request.raw as unknown as { stream?: { session?: { socket: TLSSocket } }, socket: TLSSocket }
      return { id: request.peerIdentity?.id ?? null, error: request.peerCertificateError, resumed: (raw.stream?.session?.socket ?? raw.socket).isSessionReused() }
    })
  })
  return { ...server, feed }
}

async function who (url: string, client: IssuedCertificate, reset = false, dispatcher = agentFor(t, { ca: pki.ca }, client)) {
  const response = await request(`${url}/who`, { dispatcher, reset })
  return await response.body.json() as { id: string | null, error: string | null, resumed: boolean }
}

t.test('optional mode: the forged certificate reaches the routes without an identity, on a full handshake and a resumed session', async t => {
  const { url } = await startServer(t, 'optional')
  const agent = agentFor(t, { ca: pki.ca }, forged)
  t.same(await who(url, forged, true, agent), { id: null, error: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', resumed: false })
  t.same(await who(url, forged, true, agent), { id: null, error: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', resumed: true }, 'resumed: still refused')
  t.same(await who(url, partner.orderService), { id: 'spiffe://partner.example/production/order-service', error: null, resumed: false }, 'the partner\'s own identity is trusted')
  t.same(await who(url, pki.orderService), { id: ORDER, error: null, resumed: false })
})

t.test('optional mode over HTTP/2: the same', async t => {
  const { url } = await startServer(t, 'optional', { http2: true })
  const session = http2.connect(url, { ca: pki.ca, servername: 'localhost', cert: forged.chain, key: forged.key })
  session.on('error', () => {})
  t.teardown(() => session.close())
  const stream = session.request({ ':path': '/who' })
  let body = ''
  stream.setEncoding('utf8').on('data', chunk => { body += chunk })
  await new Promise(resolve => stream.on('end', resolve))
  t.match(JSON.parse(body), { id: null, error: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED' })
})

t.test('require mode: refused at the handshake, counted; the partner\'s connection ends when its bundle is withdrawn', async t => {
  const { app, url, feed } = await startServer(t, 'require')
  await t.rejects(who(url, forged), 'the forged certificate gets no answer')
  t.equal(app.mtls.stats().failures.unknown_ca, 1, 'counted as a CA not trusted for it')
  const partnerAgent = agentFor(t, { ca: pki.ca }, partner.orderService)
  t.match(await who(url, partner.orderService, false, partnerAgent), { id: 'spiffe://partner.example/production/order-service' })
  const closed = new Promise(resolve => partnerAgent.once('disconnect', resolve))
  feed.push({ cert: pki.server.chain, key: pki.server.key, trustDomains: { 'mycompany.com': pki.ca } })
  await closed
  t.pass('the open partner connection was closed on the change of trust')
  await t.rejects(who(url, partner.orderService), 'and a new one is refused')
  t.match(await who(url, pki.orderService), { id: ORDER }, 'our own services still pass')
})

t.test('a peer whose chain verifies but whose trust domain has no bundle, or with no SPIFFE ID at all, is refused', async t => {
  const { app, url } = await startServer(t, 'require')
  const stranger = await pki.intermediate.issue({ spiffeId: 'spiffe://elsewhere.example/svc', usage: 'client' })
  const plain = await pki.intermediate.issue({ dnsNames: ['client.mycompany.com'], usage: 'client' })
  await t.rejects(who(url, stranger), 'a SPIFFE ID of a trust domain without a bundle')
  await t.rejects(who(url, plain), 'no SPIFFE ID: not an X.509-SVID')
  t.equal(app.mtls.stats().failures.unknown_ca, 2)
})
