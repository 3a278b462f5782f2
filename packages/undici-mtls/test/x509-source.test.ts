// createMtlsAgent({ x509Source }): the client certificate and trust pushed by a feed (spiffe-workload-api's
// X509Source is one; its own tests run this against a Workload API), used by new connections.
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { PemFeed, until } from 'mtls-test-support'
import { request } from 'undici'
import { createMtlsAgent, type MtlsAgentOptions } from '../src/index.js'
import { startServer } from './helpers.js'

const pki = await createTestPki()
const partner = await createTestPki({ trustDomain: 'partner.example' })
const PAYMENT = 'spiffe://mycompany.com/production/payment-service'

t.test('x509Source beside certificate material is refused; something that is no feed too', async t => {
  const feed = new PemFeed({ cert: pki.orderService.chain, key: pki.orderService.key, trustDomains: { 'mycompany.com': pki.ca } })
  await t.rejects(createMtlsAgent({ x509Source: feed, keyFile: '/k', caFile: '/ca' }), { code: 'ERR_MTLS_CLIENT_INVALID_OPTION', message: /give x509Source or certificate material \(keyFile, caFile\), not both/ })
  await t.rejects(createMtlsAgent({ x509Source: 'unix:///tmp/agent.sock' } as unknown as MtlsAgentOptions), { code: 'ERR_MTLS_MATERIAL_OPTION_INVALID', message: /x509Source must be a material feed/ })
})

t.test('new connections present the pushed certificate; the agent reports the feed; closing the agent leaves the feed alone', async t => {
  const { url } = await startServer(t, { cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const feed = new PemFeed({ cert: pki.orderService.chain, key: pki.orderService.key, trustDomains: { 'mycompany.com': pki.ca } })
  const agent = await createMtlsAgent({ x509Source: feed, verifyHostname: false, server: PAYMENT, agent: { pipelining: 0 } })
  const first = await request(`${url}/whoami`, { dispatcher: agent, reset: true })
  t.match(await first.body.json(), { fingerprint256: pki.orderService.fingerprint256 })
  t.match(agent.status().x509Source, { endpoint: 'test://pem-feed', connected: true, lastError: null })

  feed.push({ cert: pki.inventoryService.chain, key: pki.inventoryService.key, trustDomains: { 'mycompany.com': pki.ca } })
  await until(() => agent.status().certificate.fingerprint256 === pki.inventoryService.fingerprint256, 'the pushed certificate')
  const second = await request(`${url}/whoami`, { dispatcher: agent, reset: true })
  t.match(await second.body.json(), { fingerprint256: pki.inventoryService.fingerprint256 }, 'the next connection shows the pushed certificate')

  await agent.close()
  t.doesNotThrow(() => feed.materialInput, 'the feed is still open')
  t.equal(feed.listenerCount('update'), 0, 'the agent stopped listening to it')
})

t.test('with federated bundles, a server certificate from the partner\'s CA for our trust domain is refused', async t => {
  const forged = await partner.intermediate.issue({ spiffeId: PAYMENT, dnsNames: ['localhost'], usage: 'server' })
  const { url, hits } = await startServer(t, { cert: forged.chain, key: forged.key, ca: [pki.ca, partner.ca] })
  const feed = new PemFeed({ cert: pki.orderService.chain, key: pki.orderService.key, trustDomains: { 'mycompany.com': pki.ca, 'partner.example': partner.ca } })
  const agent = await createMtlsAgent({ x509Source: feed, verifyHostname: false, server: PAYMENT })
  t.teardown(() => agent.close())
  await t.rejects(request(`${url}/whoami`, { dispatcher: agent }), {
    code: 'ERR_MTLS_SERVER_CERT_UNTRUSTED',
    message: /the server certificate is not from a trusted CA \(ERR_MTLS_TRUST_DOMAIN_UNTRUSTED: .*claims the trust domain mycompany\.com, but its chain ends at .*, a root of partner\.example\)/
  })
  t.equal(hits.count, 0, 'nothing was sent')
})
