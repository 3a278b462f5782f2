// Trust kept by SPIFFE trust domain in the client (an x509Source with federated bundles). Found by review:
// - a server that stalled its handshake while the partner's bundle was withdrawn was checked against the trust
//   in force at the end, not the one its connection began with, and passed for ours;
// - on Node 20, reading the server's chain for the trust-domain check left Node's certificate object empty for the
//   authorizer: every server was refused as "no certificate".
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { PemFeed, stallingRelay, until } from 'mtls-test-support'
import { request } from 'undici'
import { createMtlsAgent } from '../../src/index.js'
import { startServer } from '../helpers.js'

const [pki, partner] = await Promise.all([createTestPki(), createTestPki({ trustDomain: 'partner.example' })])
const PAYMENT = 'spiffe://mycompany.com/production/payment-service'
const bothBundles = { 'mycompany.com': pki.ca, 'partner.example': partner.ca }

t.test('with federated bundles, servers of either trust domain are reached and authorized', async t => {
  for (const [issuer, id] of [[pki, 'spiffe://mycompany.com/api'], [partner, 'spiffe://partner.example/api']] as const) {
    const certificate = await issuer.intermediate.issue({ spiffeId: id, dnsNames: ['localhost'], usage: 'server' })
    const { url } = await startServer(t, { cert: certificate.chain, key: certificate.key, ca: [pki.ca, partner.ca] })
    const agent = await createMtlsAgent({ x509Source: new PemFeed({ cert: pki.orderService.chain, key: pki.orderService.key, trustDomains: bothBundles }), verifyHostname: false, server: id })
    t.teardown(() => agent.close())
    for (let i = 0; i < 2; i++) {
      const response = await request(`${url}/whoami`, { dispatcher: agent, reset: true })
      await response.body.text()
      t.equal(response.statusCode, 200, `${id}, connection ${i + 1}`)
    }
  }
})

t.test('a server that stalls its handshake while the partner\'s bundle is withdrawn is judged by the trust its connection began with', async t => {
  const forged = await partner.intermediate.issue({ spiffeId: PAYMENT, dnsNames: ['localhost'], usage: 'server' })
  const { app, url, hits } = await startServer(t, { cert: forged.chain, key: forged.key, ca: [pki.ca, partner.ca] })
  let connections = 0
  app.server.on('connection', () => { connections++ })
  const relay = await stallingRelay(t, Number(new URL(url).port), 'server')
  const feed = new PemFeed({ cert: pki.orderService.chain, key: pki.orderService.key, trustDomains: bothBundles })
  const agent = await createMtlsAgent({ x509Source: feed, verifyHostname: false, server: PAYMENT })
  t.teardown(() => agent.close())
  const outcome = request(`https://127.0.0.1:${relay.port}/whoami`, { dispatcher: agent }).then(response => response.statusCode, (err: { code?: string }) => err.code)
  // The relay dials the server once the agent has connected to it: the connection has begun, and its trust is set.
  await until(() => connections === 1, 'the connection to reach the server')
  feed.push({ cert: pki.orderService.chain, key: pki.orderService.key, trustDomains: { 'mycompany.com': pki.ca } })
  await until(() => agent.status().authorities.length === 1, 'the agent to take the bundle without the partner\'s')
  relay.release()
  t.equal(await outcome, 'ERR_MTLS_SERVER_CERT_UNTRUSTED', 'refused: the partner\'s CA does not speak for our trust domain')
  t.equal(hits.count, 0, 'nothing was sent')
})
