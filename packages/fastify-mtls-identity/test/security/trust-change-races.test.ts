// The attack: OpenSSL verifies a handshake against the trust in force when the connection was accepted, and a
// reload may change the trust before the handshake ends (a client that stalls its second flight) or before an
// HTTP/2 session's first request. What was verified under one trust must not pass for verified under the next:
// the partner's CA speaking for our trust domain once its bundle is withdrawn, a certificate of a root removed.
// Found by review; each case below got through before the fix.
import http2 from 'node:http2'
import https from 'node:https'
import t from 'tap'
import { fastifyMtls, loadServerTls, type MtlsMode } from 'fastify-mtls'
import { createTestPki } from 'mtls-pki'
import { PemFeed, agentFor, stallingRelay, startFastifyServer, until, type PemFeedMaterial, type Teardown } from 'mtls-test-support'
import { request } from 'undici'
import { fastifyMtlsIdentity } from '../../src/index.js'

const [pki, renewed, partner] = await Promise.all([createTestPki(), createTestPki(), createTestPki({ trustDomain: 'partner.example' })])
const ORDER = 'spiffe://mycompany.com/production/order-service'
const forged = await partner.intermediate.issue({ spiffeId: ORDER, usage: 'client' })
const federated = { cert: pki.server.chain, key: pki.server.key, trustDomains: { 'mycompany.com': pki.ca, 'partner.example': partner.ca } }
const ownOnly = { cert: pki.server.chain, key: pki.server.key, trustDomains: { 'mycompany.com': pki.ca } }

async function start (t: Teardown, mode: MtlsMode, material: PemFeedMaterial, http2Server = false) {
  const feed = new PemFeed(material)
  const serverTls = await loadServerTls({ x509Source: feed, mode })
  const server = await startFastifyServer(t, { https: http2Server ? { ...serverTls.httpsOptions, allowHTTP1: true } : serverTls.httpsOptions, fastify: http2Server ? { http2: true } : {} }, async app => {
    await app.register(fastifyMtls, { tls: serverTls })
    await app.register(fastifyMtlsIdentity)
    app.get('/who', async request => ({ id: request.peerIdentity?.id ?? null, error: request.peerCertificateError }))
  })
  return { ...server, feed }
}

for (const mode of ['require', 'optional'] as const) {
  t.test(`${mode}: a handshake begun under federation and finished after the partner's bundle was withdrawn`, async t => {
    const { app, port, feed } = await start(t, mode, federated)
    const relay = await stallingRelay(t, port, 'client')
    // The server logs the handshake's keys once it has read the ClientHello and sent its flight.
    const begun = new Promise(resolve => app.server.once('keylog', resolve))
    const answer = new Promise<string>(resolve => {
      const call = https.request({ host: '127.0.0.1', port: relay.port, path: '/who', ca: pki.ca, servername: 'localhost', cert: forged.chain, key: forged.key, agent: false }, response => {
        let body = ''
        response.setEncoding('utf8').on('data', chunk => { body += chunk }).on('end', () => resolve(body))
      })
      call.on('error', (err: NodeJS.ErrnoException) => resolve(`refused: ${err.code ?? ''}`))
      call.end()
    })
    await begun // the server's flight is out; the client's Certificate and Finished are held
    feed.push(ownOnly)
    await until(() => app.mtls.status().authorities.length === 1, 'the partner\'s bundle withdrawn')
    relay.release()
    const body = await answer
    if (mode === 'require') t.match(body, /^refused: /, 'refused')
    // The handshake was verified under federation; judged by what changed since, its chain ends at a root no
    // longer trusted at all (the verdict OpenSSL gives a chain whose root it does not hold).
    else t.same(JSON.parse(body), { id: null, error: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }, 'no identity, and why')
  })
}

t.test('HTTP/2, optional: a session opened under federation, its first request after the partner\'s bundle was withdrawn', async t => {
  const { app, url, feed } = await start(t, 'optional', federated, true)
  const session = await h2connect(t, url, forged)
  feed.push(ownOnly)
  await until(() => app.mtls.status().authorities.length === 1, 'the partner\'s bundle withdrawn')
  // The server may read the client's last flight before or after the push: refused for the trust domain at the
  // handshake, or judged under the trust in force (the partner's root gone).
  t.match(await h2who(session), { id: null, error: /^(ERR_MTLS_TRUST_DOMAIN_UNTRUSTED|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/ }, 'no identity, and why')
})

t.test('HTTP/2, optional: a session opened before our root was replaced, its first request after', async t => {
  const { app, url, feed } = await start(t, 'optional', ownOnly, true)
  const session = await h2connect(t, url, pki.orderService)
  feed.push({ cert: renewed.server.chain, key: renewed.server.key, trustDomains: { 'mycompany.com': renewed.ca } })
  await until(() => app.mtls.status().authorities[0]?.fingerprint256 === renewed.root.fingerprint256, 'the new root')
  t.match(await h2who(session), { id: null }, 'a certificate of the removed root has no identity')
})

t.test('fastify-mtls-identity on trust kept by trust domain refuses to start where it cannot see fastify-mtls', async t => {
  for (const [how, register] of [
    ['without fastify-mtls', async () => {}],
    ['with fastify-mtls inside an encapsulated plugin', async (app: import('fastify').FastifyInstance, tls: Awaited<ReturnType<typeof loadServerTls>>) => { await app.register(async child => { await child.register(fastifyMtls, { tls }) }) }]
  ] as const) {
    const serverTls = await loadServerTls({ x509Source: new PemFeed(federated), mode: 'optional' })
    await t.rejects(startFastifyServer(t, { https: serverTls.httpsOptions }, async app => {
      await register(app, serverTls)
      await app.register(fastifyMtlsIdentity)
    }), { code: 'FST_MTLS_IDENTITY_INVALID_OPTION', message: /trusts SPIFFE bundles by trust domain .*register fastify-mtls where this plugin can see it/ }, how)
  }
  // The same trust from files (one pool): nothing to hold to a trust domain, so identity alone may run.
  const { url } = await startFastifyServer(t, { https: (await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca })).httpsOptions }, async app => {
    await app.register(fastifyMtlsIdentity)
    app.get('/who', async request => ({ id: request.peerIdentity?.id ?? null }))
  })
  const response = await request(`${url}/who`, { dispatcher: agentFor(t, { ca: pki.ca }, pki.orderService) })
  t.same(await response.body.json(), { id: ORDER })
})

async function h2connect (t: Teardown, url: string, client: { chain: string, key: string }): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(url, { ca: pki.ca, servername: 'localhost', cert: client.chain, key: client.key })
  session.on('error', () => {})
  t.teardown(() => session.close())
  await new Promise(resolve => session.once('connect', resolve))
  return session
}

async function h2who (session: http2.ClientHttp2Session): Promise<unknown> {
  const stream = session.request({ ':path': '/who' })
  let body = ''
  stream.setEncoding('utf8').on('data', chunk => { body += chunk })
  await new Promise((resolve, reject) => { stream.on('end', resolve); stream.on('error', reject) })
  return JSON.parse(body)
}
