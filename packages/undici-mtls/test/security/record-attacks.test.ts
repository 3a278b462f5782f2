// Attack on the trust-domain check of undici-mtls's connector (mtls-core's Trust): with federated bundles, OpenSSL
// verifies the server's chain against every bundle at once, and the connector must hold the server to its own trust
// domain's bundle. The chain it judges is the one Node shows, which the server arranges.
import { once } from 'node:events'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { PemFeed, decoyCertificate } from 'mtls-test-support'
import { request } from 'undici'
import { createMtlsAgent } from '../../src/index.js'

t.test('with federated bundles, a partner-issued server certificate for our trust domain is refused, even with a decoy naming our root above its CA', async t => {
  const [pki, partner] = await Promise.all([createTestPki(), createTestPki({ trustDomain: 'partner.example' })])
  const PAYMENT = 'spiffe://mycompany.com/production/payment-service'
  const forged = await partner.intermediate.issue({ spiffeId: PAYMENT, dnsNames: ['localhost'], usage: 'server' })
  const attempt = async (chain: string): Promise<number | string> => {
    const hits = { count: 0 }
    const server = https.createServer({ cert: chain, key: forged.key }, (_request, response) => { hits.count++; response.end('charged') })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    t.teardown(() => server.close())
    const agent = await createMtlsAgent({ x509Source: new PemFeed({ cert: pki.orderService.chain, key: pki.orderService.key, trustDomains: { 'mycompany.com': pki.ca, 'partner.example': partner.ca } }), verifyHostname: false, server: PAYMENT })
    t.teardown(() => agent.close())
    const { port } = server.address() as AddressInfo
    return await request(`https://127.0.0.1:${port}/charge`, { dispatcher: agent }).then(async response => { await response.body.text(); return response.statusCode }, (err: { code?: string }) => err.code ?? 'error')
  }
  t.equal(await attempt(forged.chain), 'ERR_MTLS_SERVER_CERT_UNTRUSTED', 'its own chain is refused')
  // OpenSSL completes the chain from the partner's intermediate to the partner's root in the client's store; Node
  // shows, above the intermediate, the decoy and then our root, both sent by the server.
  // This got through before the fix (found by review): connector.ts trustDomainProblem takes trust.presentedChain() of what Node shows (mtls-core trust.ts
  // ends it at the first trusted root present, no signature checked): the partner's CA passes for mycompany.com.
  t.equal(await attempt(forged.chain + await decoyCertificate(partner.ca, pki.ca) + pki.ca), 'ERR_MTLS_SERVER_CERT_UNTRUSTED', 'the lured chain is refused as well')
  // Node's client side shows the chain in the order the server sent it: our root alone, right after the leaf.
  t.equal(await attempt(forged.certificate + pki.ca + partner.intermediate.certificate), 'ERR_MTLS_SERVER_CERT_UNTRUSTED', 'and so is our root sent right after the leaf')
})
