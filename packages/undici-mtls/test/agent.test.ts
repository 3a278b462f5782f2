import { once } from 'node:events'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { createTestPki, createRootCa } from 'mtls-pki'
import { fetch, request, stream } from 'undici'
import { Writable } from 'node:stream'
import { MtlsClientError, ServerUnauthorizedError, createMtlsAgent } from '../src/index.js'
import { startServer } from './helpers.js'

const pki = await createTestPki()
const server = { cert: pki.server.chain, key: pki.server.key, ca: pki.ca }
const client = { cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca }

t.test('request, fetch and stream go out with our certificate and keep-alive pooling', async t => {
  const { url, app } = await startServer(t, server)
  const agent = await createMtlsAgent(client)
  t.teardown(() => agent.close())
  const viaRequest = await request(`${url}/whoami`, { dispatcher: agent })
  t.same(await viaRequest.body.json(), { san: 'URI:spiffe://mycompany.com/production/order-service', fingerprint256: pki.orderService.fingerprint256, resumed: false })
  const viaFetch = await fetch(`${url}/whoami`, { dispatcher: agent })
  t.equal(viaFetch.status, 200)
  t.match(await viaFetch.json(), { san: 'URI:spiffe://mycompany.com/production/order-service' })
  let streamed = ''
  await stream(`${url}/whoami`, { dispatcher: agent, method: 'GET', opaque: null }, () => new Writable({ write (chunk, _enc, done) { streamed += String(chunk); done() } }))
  t.match(JSON.parse(streamed), { san: 'URI:spiffe://mycompany.com/production/order-service' })
  for (let i = 0; i < 10; i++) await (await request(`${url}/whoami`, { dispatcher: agent })).body.text()
  t.ok(app.mtls.stats().handshakes <= 2, `13 requests over ${app.mtls.stats().handshakes} connection(s)`)
})

t.test('the server is authorized by SPIFFE ID, list, trust domain, fingerprint pin or function', async t => {
  const { url, hits } = await startServer(t, server)
  const accepted = [
    'spiffe://mycompany.com/production/payment-service',
    ['spiffe://mycompany.com/production/other', 'spiffe://mycompany.com/production/payment-service'],
    'spiffe://mycompany.com/**',
    `sha256:${pki.server.fingerprint256}`,
    (identity: { id: string }) => identity.id.endsWith('/payment-service')
  ]
  for (const authorizer of accepted) {
    const agent = await createMtlsAgent({ ...client, server: authorizer })
    t.teardown(() => agent.close())
    t.equal((await request(`${url}/whoami`, { dispatcher: agent })).statusCode, 200, `accepted by ${String(authorizer)}`)
  }
  const before = hits.count
  const refused: Array<[unknown, RegExp]> = [
    ['spiffe://mycompany.com/production/ledger-service', /server not authorized: expected spiffe:\/\/mycompany.com\/production\/ledger-service, got "spiffe:\/\/mycompany.com\/production\/payment-service"/],
    ['spiffe://partner.org/**', /expected spiffe:\/\/partner.org\/\*\*/],
    [`sha256:${'00'.repeat(32)}`, /expected sha256:/],
    [() => false, /expected a server accepted by the server\(\) function/]
  ]
  for (const [authorizer, message] of refused) {
    const agent = await createMtlsAgent({ ...client, server: authorizer as string })
    t.teardown(() => agent.close())
    const error = await request(`${url}/whoami`, { dispatcher: agent }).then(() => null, (err: unknown) => err)
    t.ok(error instanceof ServerUnauthorizedError, String(authorizer))
    t.match(error, { code: 'ERR_MTLS_SERVER_UNAUTHORIZED', message, actual: 'spiffe://mycompany.com/production/payment-service' })
  }
  const twice = await createMtlsAgent({ ...client, server: 'spiffe://mycompany.com/production/ledger-service' })
  t.teardown(() => twice.close())
  for (let i = 0; i < 2; i++) {
    await t.rejects(request(`${url}/whoami`, { dispatcher: twice, reset: true }), { code: 'ERR_MTLS_SERVER_UNAUTHORIZED' }, `attempt ${i + 1}: a refused server's session ticket is never kept to resume with`)
  }
  t.equal(hits.count, before, 'no byte of a refused request reached the server')
})

t.test('hostname verification stays on unless SPIFFE-only is chosen', async t => {
  const meshOnly = await pki.intermediate.issue({ usage: 'server', spiffeId: 'spiffe://mycompany.com/production/payment-service' })
  const { url } = await startServer(t, { cert: meshOnly.chain, key: meshOnly.key, ca: pki.ca })
  const strict = await createMtlsAgent({ ...client, server: 'spiffe://mycompany.com/production/payment-service' })
  t.teardown(() => strict.close())
  await t.rejects(request(`${url}/whoami`, { dispatcher: strict }), {
    code: 'ERR_MTLS_SERVER_HOSTNAME_MISMATCH',
    message: /does not name the host \(ERR_TLS_CERT_ALTNAME_INVALID: .*\); name the host in the server's certificate \(a DNS or IP SAN\), or set verifyHostname: false: the server option you gave then checks who the server is instead of the host name$/
  })
  const spiffeOnly = await createMtlsAgent({ ...client, server: 'spiffe://mycompany.com/production/payment-service', verifyHostname: false })
  t.teardown(() => spiffeOnly.close())
  t.equal((await request(`${url}/whoami`, { dispatcher: spiffeOnly })).statusCode, 200)
  await t.rejects(createMtlsAgent({ ...client, verifyHostname: false }), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION', message: /verifyHostname: false needs server/ })
})

t.test('a hostname mismatch points to verifyHostname: false with server, naming the SPIFFE ID the server showed', async t => {
  const meshOnly = await pki.intermediate.issue({ usage: 'server', spiffeId: 'spiffe://mycompany.com/production/payment-service' })
  const dnsOnly = await pki.intermediate.issue({ usage: 'server', dnsNames: ['payment-service.internal'] })
  const expected: Array<[string, typeof meshOnly, string]> = [
    ['a SPIFFE server certificate', meshOnly, "or set verifyHostname: false together with server: 'spiffe://mycompany.com/…', the SPIFFE ID of the service you mean to call (this server presented spiffe://mycompany.com/production/payment-service), to check who the server is instead of the host name"],
    ['a certificate without a SPIFFE ID', dnsOnly, "or set verifyHostname: false together with server: the server's identity (its SPIFFE ID, a dns: name or a sha256: fingerprint pin), to check who the server is instead of the host name"],
    // a CA:TRUE certificate is no identity (the server check would refuse it): its SPIFFE ID is not offered
    ['a CA:TRUE certificate', pki.caAsLeaf, "or set verifyHostname: false together with server: the server's identity (its SPIFFE ID, a dns: name or a sha256: fingerprint pin), to check who the server is instead of the host name"]
  ]
  for (const [what, cert, wayOut] of expected) {
    const { url } = await startServer(t, { cert: cert.chain, key: cert.key, ca: pki.ca })
    const agent = await createMtlsAgent(client)
    t.teardown(() => agent.close())
    const error = await request(`${url}/whoami`, { dispatcher: agent }).then(() => null, (err: unknown) => err) as MtlsClientError
    t.equal(error.code, 'ERR_MTLS_SERVER_HOSTNAME_MISMATCH', what)
    t.ok(error.message.startsWith(`${url}: the server certificate does not name the host (ERR_TLS_CERT_ALTNAME_INVALID: `), `${what}: says what failed`)
    t.ok(error.message.endsWith(`; name the host in the server's certificate (a DNS or IP SAN), ${wayOut}`), `${what}: and the way out`)
  }
  // The way out works: the SPIFFE ID it named, with verifyHostname: false.
  const { url } = await startServer(t, { cert: meshOnly.chain, key: meshOnly.key, ca: pki.ca })
  const followed = await createMtlsAgent({ ...client, verifyHostname: false, server: 'spiffe://mycompany.com/production/payment-service' })
  t.teardown(() => followed.close())
  t.equal((await request(`${url}/whoami`, { dispatcher: followed })).statusCode, 200)
})

t.test('a server that sends its leaf alone is untrusted, and the message says to configure its chain file', async t => {
  // Node's own server, as fastify-mtls refuses to start with a leaf alone.
  const plain = createServer({ cert: pki.server.certificate, key: pki.server.key }, (_req, res) => res.end('ok'))
  plain.listen(0, '127.0.0.1')
  await once(plain, 'listening')
  t.teardown(() => plain.close())
  const agent = await createMtlsAgent(client)
  t.teardown(() => agent.close())
  const origin = `https://127.0.0.1:${(plain.address() as AddressInfo).port}`
  const error = await request(`${origin}/`, { dispatcher: agent }).then(() => null, (err: unknown) => err)
  t.ok(error instanceof MtlsClientError)
  t.match(error, {
    code: 'ERR_MTLS_SERVER_CERT_UNTRUSTED',
    // Node's own message varies by version (Node 24 adds a hint about --use-system-ca); ours follows it.
    message: `${origin}: the server certificate is not from a trusted CA (UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate`
  })
  t.ok((error as Error).message.endsWith('); ' +
    'the server sent its certificate without the CA certificate that issued it, and no CA in our caFile issued it: most likely the server presents its leaf alone; ' +
    'configure the server with its chain file, the leaf followed by the intermediate (mtls-pki writes it as NAME-chain.pem; with cert-manager, tls.crt holds the chain), ' +
    'or, if its issuer is a CA we should trust, add that CA to caFile'), 'the hint ends the message')
  // With the chain file, the same server is trusted.
  const chained = createServer({ cert: pki.server.chain, key: pki.server.key }, (_req, res) => res.end('ok'))
  chained.listen(0, '127.0.0.1')
  await once(chained, 'listening')
  t.teardown(() => chained.close())
  t.equal((await request(`https://127.0.0.1:${(chained.address() as AddressInfo).port}/`, { dispatcher: agent })).statusCode, 200)
})

t.test('a server certificate from an unknown CA, or expired, is refused with its own code', async t => {
  const other = await createRootCa()
  const foreign = await other.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  const expired = await pki.intermediate.issue({ usage: 'server', ips: ['127.0.0.1'], notBefore: new Date(Date.now() - 10 * 86400e3), notAfter: new Date(Date.now() - 86400e3) })
  for (const [what, cert, code] of [['unknown CA', foreign, 'ERR_MTLS_SERVER_CERT_UNTRUSTED'], ['expired', expired, 'ERR_MTLS_SERVER_CERT_EXPIRED']] as const) {
    const plain = createServer({ cert: cert.chain, key: cert.key }, (_req, res) => res.end('ok'))
    plain.listen(0, '127.0.0.1')
    await once(plain, 'listening')
    t.teardown(() => plain.close())
    const agent = await createMtlsAgent(client)
    t.teardown(() => agent.close())
    const error = await request(`https://127.0.0.1:${(plain.address() as AddressInfo).port}/`, { dispatcher: agent }).then(() => null, (err: unknown) => err)
    t.ok(error instanceof MtlsClientError, what)
    t.match(error, { code }, what)
    t.notMatch((error as Error).message, /chain file|verifyHostname/, `${what}: no way out that does not apply`)
  }
})

t.test('our certificate refused by the server is reported as such, not as "other side closed"', async t => {
  const other = await createTestPki()
  const { url } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: other.ca, verifyOwnChain: false })
  const agent = await createMtlsAgent(client)
  t.teardown(() => agent.close())
  await t.rejects(request(`${url}/whoami`, { dispatcher: agent }), { code: 'ERR_MTLS_CLIENT_CERT_REJECTED', message: /refused our client certificate/ })
})

t.test('HTTP/2 when the server offers it', async t => {
  const { url } = await startServer(t, server, { http2: true })
  const agent = await createMtlsAgent({ ...client, agent: { allowH2: true } })
  t.teardown(() => agent.close())
  const response = await request(`${url}/whoami`, { dispatcher: agent })
  t.equal(response.statusCode, 200)
  t.match(await response.body.json(), { san: 'URI:spiffe://mycompany.com/production/order-service' })
})

t.test("Node's global fetch accepts the agent too", async t => {
  const { url } = await startServer(t, server)
  const agent = await createMtlsAgent(client)
  t.teardown(() => agent.close())
  const response = await globalThis.fetch(`${url}/whoami`, { dispatcher: agent } as unknown as RequestInit)
  t.equal(response.status, 200)
  t.match(await response.json(), { san: 'URI:spiffe://mycompany.com/production/order-service' })
})

t.test('wrong options and unusable material fail with coded errors', async t => {
  await t.rejects(createMtlsAgent({ ...client, server: 'payment-service' }), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION', message: /server: identity pattern "payment-service"/ })
  await t.rejects(createMtlsAgent({ ...client, server: [] }), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION', message: /server must be/ })
  await t.rejects(createMtlsAgent({ ...client, minVersion: 'TLSv1.1' as 'TLSv1.2' }), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION', message: /minVersion/ })
  await t.rejects(createMtlsAgent(null as never), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION' })
  await t.rejects(createMtlsAgent({ cert: pki.expired.chain, key: pki.expired.key, ca: pki.ca }), { code: 'ERR_MTLS_MATERIAL_EXPIRED' })
  await t.rejects(createMtlsAgent({ cert: pki.serverOnly.chain, key: pki.serverOnly.key, ca: pki.ca }), { code: 'ERR_MTLS_MATERIAL_EKU_UNSUITABLE', message: /cannot serve as a TLS client/ })
})

t.test('close and destroy take callbacks or return promises, like every undici dispatcher', async t => {
  const { url } = await startServer(t, server)
  const viaCallback = await createMtlsAgent(client)
  await (await request(`${url}/whoami`, { dispatcher: viaCallback })).body.text()
  await new Promise<void>(resolve => { viaCallback.close(resolve) })
  await t.rejects(request(`${url}/whoami`, { dispatcher: viaCallback }), { code: 'UND_ERR_DESTROYED' }, 'a closed agent takes no more requests')
  const destroyed = await createMtlsAgent(client)
  await new Promise<void>(resolve => { destroyed.destroy(resolve) })
  const again = await createMtlsAgent(client)
  await again.destroy(new Error('shutting down'))
  await t.rejects(request(`${url}/whoami`, { dispatcher: again }), { code: 'UND_ERR_DESTROYED' })
})
