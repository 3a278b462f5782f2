import { connect as http2Connect } from 'node:http2'
import { connect } from 'node:tls'
import t from 'tap'
import Fastify from 'fastify'
import { createRootCa, createTestPki } from 'mtls-pki'
import { startFastifyServer } from 'mtls-test-support'
import { request } from 'undici'
import defaultExport, { fastifyMtlsIdentity, PEER_ERRORS } from '../src/index.js'
import { agentFor, beforeExpiry, pastExpiry, startServer, who } from './helpers.js'

const pki = await createTestPki()

t.test('the default and the named export are the same plugin, named for the authz plugin to depend on', async t => {
  t.equal(defaultExport, fastifyMtlsIdentity)
  t.equal((fastifyMtlsIdentity as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')], 'fastify-mtls-identity')
})

t.test('request.peerIdentity is the verified client, computed once per connection and only when read', async t => {
  let computed = 0
  const { url } = await startServer(t, pki, { identify: identity => { computed++; return identity.spiffeId?.toString() ?? 'none' } })
  const agent = agentFor(t, pki, pki.orderService, { connections: 1 })
  for (let i = 0; i < 50; i++) {
    const { status, body } = await who(url, agent)
    t.equal(status, 200)
    if (i === 0) t.same(body, { id: 'spiffe://mycompany.com/production/order-service', source: 'tls', error: null })
  }
  t.equal(computed, 1, '50 requests on one keep-alive connection, one certificate read')
  const other = agentFor(t, pki, pki.inventoryService)
  t.equal((await who(url, other)).body.id, 'spiffe://mycompany.com/production/inventory-service')
  t.equal(computed, 2)
  const { request } = await import('undici')
  await (await request(`${url}/anonymous`, { dispatcher: agentFor(t, pki, pki.orderService) })).body.text()
  t.equal(computed, 2, 'a route that never reads it pays nothing')
})

t.test('null, with a stable reason, when there is no verified certificate (optional mode)', async t => {
  const { url } = await startServer(t, pki)
  const cases: Array<[string, { chain: string, key: string } | undefined, string]> = [
    ['no certificate', undefined, PEER_ERRORS.ERR_MTLS_NO_PEER_CERTIFICATE],
    ['another CA', pki.otherCa, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
    ['expired', pki.expired, 'CERT_HAS_EXPIRED'],
    ['a CA:TRUE leaf', pki.caAsLeaf, 'ERR_MTLS_CERTIFICATE_IS_CA'],
    ['two URI SANs', pki.twoUriSans, 'ERR_MTLS_SVID_URI_SAN_COUNT'],
    ['an invalid SPIFFE ID', pki.invalidSpiffeId, 'ERR_MTLS_SVID_INVALID_SPIFFE_ID']
  ]
  for (const [what, cert, error] of cases) {
    const { status, body } = await who(url, agentFor(t, pki, cert))
    t.equal(status, 200, `${what}: still served; the route decides`)
    t.same(body, { id: null, source: null, error }, what)
  }
})

t.test('svid: false accepts certificates that break the SVID rules, without a SPIFFE ID', async t => {
  const { url } = await startServer(t, pki, { svid: false })
  t.same((await who(url, agentFor(t, pki, pki.twoUriSans))).body, { id: 'cn:order-service', source: 'tls', error: null })
  t.same((await who(url, agentFor(t, pki, pki.noSan))).body, { id: 'cn:no-san-service', source: 'tls', error: null })
})

t.test('HTTP/2: every stream of a session shares one identity', async t => {
  let computed = 0
  const { url } = await startServer(t, pki, { identify: identity => { computed++; return identity.uris[0] ?? '' } }, 'require', { http2: true })
  const session = http2Connect(url, { ca: pki.ca, cert: pki.orderService.chain, key: pki.orderService.key, servername: 'localhost' })
  t.teardown(() => session.close())
  const get = async (): Promise<string> => await new Promise((resolve, reject) => {
    const stream = session.request({ ':path': '/who' })
    let data = ''
    stream.on('data', chunk => { data += String(chunk) })
    stream.on('end', () => resolve(data))
    stream.on('error', reject)
  })
  for (let i = 0; i < 5; i++) t.match(JSON.parse(await get()), { id: 'spiffe://mycompany.com/production/order-service', source: 'tls' })
  t.equal(computed, 1, 'five streams, one certificate read')
})

t.test('a resumed TLS 1.3 session still has the identity', async t => {
  const { url } = await startServer(t, pki, {}, 'require')
  const port = Number(new URL(url).port)
  const get = async (session?: Buffer): Promise<{ body: string, reused: boolean, session: Buffer | undefined }> => await new Promise((resolve, reject) => {
    let ticket: Buffer | undefined
    let reused = false
    let body = ''
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca, cert: pki.orderService.chain, key: pki.orderService.key, ...(session === undefined ? {} : { session }) })
    socket.on('session', s => { ticket = s })
    socket.on('secureConnect', () => {
      reused = socket.isSessionReused()
      socket.write('GET /who HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    })
    socket.on('data', chunk => { body += String(chunk) })
    socket.on('error', reject)
    socket.on('close', () => resolve({ body: body.split('\r\n\r\n')[1] ?? '', reused, session: ticket }))
  })
  const first = await get()
  t.equal(first.reused, false)
  const second = await get(first.session)
  t.equal(second.reused, true, 'the session was resumed')
  t.same(JSON.parse(second.body), { id: 'spiffe://mycompany.com/production/order-service', source: 'tls', error: null })
})

t.test('without TLS there is no identity, and the reason says so', async t => {
  const app = Fastify()
  await app.register(fastifyMtlsIdentity)
  app.get('/who', async request => ({ identity: request.peerIdentity, error: request.peerCertificateError }))
  const response = await app.inject('/who')
  t.same(response.json(), { identity: null, error: PEER_ERRORS.ERR_MTLS_NOT_TLS })
})

t.test('wrong options fail registration with FST_MTLS_IDENTITY_INVALID_OPTION', async t => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ identify: 'cn' }, /identify must be a function/],
    [{ forwarded: 'envoy' }, /forwarded needs trustedProxies/],
    [{ forwarded: 'apache', trustedProxies: { addresses: ['127.0.0.1'] } }, /forwarded must be one of envoy, rfc9440, nginx, haproxy, caddy, traefik, aws-alb, aws-alb-verify, cloudflare, azure-app-service, aspnet or \{ header, format \}; got "apache"/],
    [{ forwarded: { header: '', format: 'pem' }, trustedProxies: { addresses: ['127.0.0.1'] } }, /forwarded.header must be a header name/],
    [{ forwarded: { header: 'x', format: 'json' }, trustedProxies: { addresses: ['127.0.0.1'] } }, /forwarded.format must be one of/],
    [{ trustedProxies: {} }, /trustedProxies needs identities, addresses or both/],
    [{ trustedProxies: { addresses: ['10.0.0.0/33'] } }, /"10.0.0.0\/33" is not an IP address or CIDR/],
    [{ trustedProxies: { addresses: ['proxy.internal'] } }, /is not an IP address or CIDR/],
    [{ trustedProxies: { identities: ['spiffe://mesh'] } }, /trustedProxies.identities: identity pattern "spiffe:\/\/mesh"/],
    [{ maxHeaderLength: 0 }, /maxHeaderLength must be a positive whole number/]
  ]
  for (const [options, message] of bad) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(fastifyMtlsIdentity, options).ready() }, { code: 'FST_MTLS_IDENTITY_INVALID_OPTION', message }, JSON.stringify(options))
  }
})

t.test('without fastify-mtls (plain https options), OpenSSL\'s verdict comes from the socket and the chain\'s expiry from what the client sent', async t => {
  const root = await createRootCa({ commonName: 'plain root' })
  const server = await pki.intermediate.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  // An intermediate that ends in a second or two, issuing a leaf that outlives it (a CA rotation gone wrong).
  const { url, kept, before, expiry } = await beforeExpiry(t, async soon => {
    const shortCa = await root.createIntermediate({ commonName: 'short plain CA', notBefore: new Date(Date.now() - 60_000), notAfter: soon })
    const client = await shortCa.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/short' })
    const { url } = await startFastifyServer(t, { https: { cert: server.chain, key: server.key, ca: [pki.ca, root.certificate], requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' } }, async app => {
      await app.register(fastifyMtlsIdentity)
      app.get('/who', async request => ({ id: request.peerIdentity?.id ?? null, error: request.peerCertificateError }))
    })
    const kept = agentFor(t, { ca: pki.ca }, { chain: client.chain, key: client.key })
    return { url, kept, before: await (await request(`${url}/who`, { dispatcher: kept })).body.json() as unknown }
  })
  const ask = async (dispatcher: ReturnType<typeof agentFor>): Promise<unknown> => await (await request(`${url}/who`, { dispatcher })).body.json()
  t.same(await ask(agentFor(t, { ca: pki.ca }, pki.otherCa)), { id: null, error: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }, 'OpenSSL\'s verdict on another CA\'s certificate')
  t.same(await ask(agentFor(t, { ca: pki.ca })), { id: null, error: 'ERR_MTLS_NO_PEER_CERTIFICATE' }, 'no certificate')
  t.same(before, { id: 'spiffe://mycompany.com/production/short', error: null }, 'verified, on a kept-alive connection')
  await pastExpiry(expiry)
  t.same(await ask(kept), { id: null, error: 'CERT_HAS_EXPIRED' }, 'the same connection, past the expiry of the intermediate its client sent')
})
