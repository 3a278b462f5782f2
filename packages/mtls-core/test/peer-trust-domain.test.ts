// checkPeerTrustDomain and reverifyConnection on real TLS connections (a tls server on 127.0.0.1, tls.connect
// clients with certificates from mtls-pki): what OpenSSL verified against every bundle at once is held to the
// peer's own trust domain, and a resumed session's chain is completed by the intermediates of the trust it was
// verified against.
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import * as tls from 'node:tls'
import t from 'tap'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { ChainVerifier, loadMaterial, type VerificationError } from '../src/index.js'
import { checkPeerTrustDomain, connectionExpiry, handshakeTrust, readPemBlocks, recordHandshakeTrust, reverifyConnection, type CertificateFields } from '../src/internal.js'

const [pki, partner] = await Promise.all([createTestPki(), createTestPki({ trustDomain: 'partner.example' })])
const derOf = (pem: string): Buffer => readPemBlocks(pem)[0]!.der
interface Tap { teardown: (fn: () => unknown) => void }

interface Connection { serverSide: tls.TLSSocket, clientSide: tls.TLSSocket, ticket: Promise<Buffer> }

// A TLS server asking for client certificates, closed when the test ends; `connect` returns the server's side of a connection.
async function listen (t: Tap, options: tls.TlsOptions): Promise<(client?: IssuedCertificate, session?: Buffer) => Promise<Connection>> {
  const server = tls.createServer({ cert: pki.server.chain, key: pki.server.key, requestCert: true, minVersion: 'TLSv1.3', ...options })
  const sockets: tls.TLSSocket[] = []
  server.on('secureConnection', socket => { sockets.push(socket); socket.on('error', () => {}) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { for (const socket of sockets) socket.destroy(); server.close() })
  const port = (server.address() as AddressInfo).port
  return async (client, session) => {
    const accepted = once(server, 'secureConnection')
    const clientSide = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: pki.ca, ...(client === undefined ? {} : { cert: client.chain, key: client.key }), ...(session === undefined ? {} : { session }) })
    clientSide.on('error', () => {})
    const ticket = once(clientSide, 'session').then(([s]) => s as Buffer)
    clientSide.resume()
    t.teardown(() => { clientSide.destroy() })
    const [serverSide] = await accepted as [tls.TLSSocket]
    return { serverSide, clientSide, ticket }
  }
}

// A trust kept by trust domain, counting what checkPeerTrustDomain asks of it.
function counting (verifier: ChainVerifier): { calls: { peerTrustDomain: number, verify: number, intermediates: number[] }, trust: Parameters<typeof checkPeerTrustDomain>[1] } {
  const calls = { peerTrustDomain: 0, verify: 0, intermediates: [] as number[] }
  return {
    calls,
    trust: {
      trustDomains: verifier.trustDomains,
      soleTrustDomain: verifier.soleTrustDomain,
      peerTrustDomain: (fields: CertificateFields) => { calls.peerTrustDomain++; return verifier.peerTrustDomain(fields) },
      verify: (certificate, options) => {
        calls.verify++
        calls.intermediates.push(options.intermediates.length)
        return verifier.verify(certificate, options)
      }
    }
  }
}

const thrown = (check: () => unknown): { code: string, message: string } | null => {
  try {
    check()
    return null
  } catch (err) {
    return { code: (err as VerificationError).code, message: (err as Error).message }
  }
}

t.test('one trust domain holds every root: a look at the SPIFFE ID, without verifying again', async t => {
  const connect = await listen(t, { ca: pki.ca })
  const { calls, trust } = counting(new ChainVerifier({ trustDomains: new Map([['mycompany.com', pki.ca]]) }))
  t.equal(trust.soleTrustDomain, 'mycompany.com')
  const { serverSide } = await connect(pki.orderService)
  t.ok(serverSide.authorized, 'OpenSSL verified it')
  t.equal(thrown(() => checkPeerTrustDomain(serverSide, trust, 'client')), null)
  t.same(calls, { peerTrustDomain: 1, verify: 0, intermediates: [] }, 'no second verification')

  // Our CA issued a partner's ID: OpenSSL accepts it, but there is no bundle for partner.example.
  const usurper = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://partner.example/production/order-service' })
  const other = await connect(usurper)
  t.ok(other.serverSide.authorized)
  t.match(thrown(() => checkPeerTrustDomain(other.serverSide, trust, 'client')), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: 'no trust bundle for the trust domain partner.example' })
  t.equal(calls.verify, 0)
  const twoIds = await connect(pki.twoUriSans)
  t.match(thrown(() => checkPeerTrustDomain(twoIds.serverSide, trust, 'client')), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: /2 SPIFFE IDs/ })
})

t.test('federated bundles: the chain is verified again, trust domain by trust domain, with the intermediates the peer sent', async t => {
  const connect = await listen(t, { ca: [pki.ca, partner.ca] })
  // No intermediates given to the verifier: only those the peer sent can complete its chain.
  const verifier = new ChainVerifier({ trustDomains: new Map([['mycompany.com', pki.ca], ['partner.example', partner.ca]]) })
  t.equal(verifier.soleTrustDomain, null)
  const { calls, trust } = counting(verifier)

  for (const [what, client] of [['ours', pki.orderService], ['the partner\'s', partner.orderService]] as const) {
    const { serverSide } = await connect(client)
    const before = calls.verify
    t.equal(thrown(() => checkPeerTrustDomain(serverSide, trust, 'client')), null, `${what}: its chain ends in its own trust domain`)
    t.equal(calls.verify, before + 1, `${what}: verified again`)
    t.equal(calls.intermediates.at(-1), 1, `${what}: with the intermediate the peer sent`)
    t.match(thrown(() => checkPeerTrustDomain(serverSide, trust, 'server')), { code: 'INVALID_PURPOSE' }, `${what}: for the purpose asked`)
  }

  // A partner CA issuing our IDs: OpenSSL, trusting both roots, accepts it.
  const forged = await partner.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/payment-service' })
  const { serverSide } = await connect(forged)
  t.ok(serverSide.authorized, 'OpenSSL accepts the forged certificate')
  t.match(thrown(() => checkPeerTrustDomain(serverSide, trust, 'client')), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: /claims the trust domain mycompany\.com, but its chain ends at .*a root of partner\.example/ })
  const stranger = await partner.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://unknown.example/x' })
  const third = await connect(stranger)
  t.match(thrown(() => checkPeerTrustDomain(third.serverSide, trust, 'client')), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: 'no trust bundle for the trust domain unknown.example' })
})

t.test('a resumed session is held to its trust domain with the chain its full handshake showed', async t => {
  const connect = await listen(t, { ca: [pki.ca, partner.ca] })
  const verifier = new ChainVerifier({ trustDomains: new Map([['mycompany.com', pki.ca], ['partner.example', partner.ca]]) })
  const forged = await partner.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/resumed' })
  const first = await connect(forged)
  t.match(thrown(() => checkPeerTrustDomain(first.serverSide, verifier, 'client')), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED' })
  const resumed = await connect(forged, await first.ticket)
  t.ok(resumed.serverSide.isSessionReused(), 'a resumed session')
  t.match(thrown(() => checkPeerTrustDomain(resumed.serverSide, verifier, 'client')), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: /a root of partner\.example/ }, 'the recalled partner intermediate leads to the partner root, not to a missing issuer')
})

t.test('nothing to check: a connection without a certificate, or a trust not kept by trust domain', async t => {
  const connect = await listen(t, { ca: [pki.ca, partner.ca], rejectUnauthorized: false })
  const federated = counting(new ChainVerifier({ trustDomains: new Map([['mycompany.com', pki.ca], ['partner.example', partner.ca]]) }))
  const { serverSide } = await connect()
  t.notOk(serverSide.authorized, 'no certificate was sent')
  t.equal(thrown(() => checkPeerTrustDomain(serverSide, federated.trust, 'client')), null)
  t.same(federated.calls, { peerTrustDomain: 0, verify: 0, intermediates: [] }, 'nothing asked of the trust')

  const forged = await partner.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/payment-service' })
  const withForged = await connect(forged)
  const pooled = counting(new ChainVerifier({ ca: [pki.ca, partner.ca] }))
  t.equal(pooled.trust.trustDomains, null)
  t.equal(thrown(() => checkPeerTrustDomain(withForged.serverSide, pooled.trust, 'client')), null, 'a trust of one pool: not this check\'s to refuse')
  t.same(pooled.calls, { peerTrustDomain: 0, verify: 0, intermediates: [] })
  t.match(thrown(() => checkPeerTrustDomain(withForged.serverSide, federated.trust, 'client')), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED' }, 'while the federated trust refuses it')
})

t.test('reverifyConnection completes a resumed session\'s chain with the previous trust\'s intermediates', async t => {
  const connect = await listen(t, { ca: pki.ca })
  // The server's own chain holds the intermediate that issued the client's certificate: its trust keeps it.
  const serverMaterial = await loadMaterial({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca }, { side: 'server' })
  const first = ChainVerifier.forMaterial(serverMaterial)
  t.same(first.intermediates.map(d => d.toString('base64')), [derOf(pki.intermediate.certificate).toString('base64')])
  // The server moves to a new intermediate: the new trust knows only that one.
  const moved = await pki.root.createIntermediate({ commonName: 'mtls-pki moved intermediate CA' })
  const next = new ChainVerifier({ ca: pki.ca, intermediates: moved.certificate })
  const bare = new ChainVerifier({ ca: pki.ca })
  // A client certificate of its own: no full handshake of this test or another has put its chain on record.
  const client = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/resumed-client' })
  t.throws(() => next.verify(derOf(client.certificate), { purpose: 'client' }), { code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }, 'the new trust alone cannot complete the chain')

  const full = await connect(client)
  t.ok(full.serverSide.authorized)
  t.notOk(full.serverSide.isSessionReused())
  const ticket = await full.ticket
  const { serverSide, clientSide } = await connect(client, ticket)
  t.ok(serverSide.isSessionReused(), 'the server resumed the session')
  t.ok(clientSide.isSessionReused(), 'and the client too')
  t.equal(serverSide.getPeerX509Certificate()?.issuerCertificate, undefined, 'a resumed session shows the leaf alone')

  t.throws(() => reverifyConnection(serverSide, next), { code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }, 'no trust on record: nothing completes the chain')
  recordHandshakeTrust(serverSide, bare)
  t.throws(() => reverifyConnection(serverSide, next), { code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }, 'a previous trust without intermediates: neither provides the issuer')
  t.equal(handshakeTrust(serverSide), bare, 'a refusal records nothing')

  recordHandshakeTrust(serverSide, first)
  const until = reverifyConnection(serverSide, next)
  t.ok(Number.isFinite(until) && until <= client.notAfter.getTime() && until > Date.now(), 'verified against the new trust')
  t.equal(handshakeTrust(serverSide), next, 'the new trust is recorded')
  t.equal(connectionExpiry(serverSide), until)
  t.equal(reverifyConnection(serverSide, next), until, 'asked again: the same answer, from the record')

  // The intermediates complete the chain but are not trusted: under a trust of another root (of the same name,
  // another key) the chain is still refused.
  const strangerTrust = new ChainVerifier({ ca: partner.ca, intermediates: partner.intermediate.certificate })
  recordHandshakeTrust(serverSide, first)
  t.throws(() => reverifyConnection(serverSide, strangerTrust), { code: 'CERT_SIGNATURE_FAILURE', message: /the signature on "mtls-pki test intermediate CA" does not verify/ })
})

t.test('federated bundles: a certificate whose chain was shown to end in its own trust domain is not verified again on its next connections, under that trust', async t => {
  const connect = await listen(t, { ca: [pki.ca, partner.ca] })
  const verifier = new ChainVerifier({ trustDomains: new Map([['mycompany.com', pki.ca], ['partner.example', partner.ca]]) })
  const { calls, trust } = counting(verifier)
  const first = await connect(pki.orderService)
  checkPeerTrustDomain(first.serverSide, trust, 'client')
  const second = await connect(pki.orderService, await first.ticket)
  t.ok(second.serverSide.isSessionReused(), 'the next connection resumed')
  checkPeerTrustDomain(second.serverSide, trust, 'client')
  checkPeerTrustDomain((await connect(pki.orderService)).serverSide, trust, 'client')
  t.equal(calls.verify, 1, 'verified once for that trust')
  const forged = await partner.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/order-service' })
  for (let i = 0; i < 2; i++) {
    const { serverSide } = await connect(forged)
    t.match(thrown(() => checkPeerTrustDomain(serverSide, trust, 'client')), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED' }, `a refusal is never kept as a pass (${i + 1})`)
  }
  const another = counting(verifier)
  checkPeerTrustDomain((await connect(pki.orderService)).serverSide, another.trust, 'client')
  t.equal(another.calls.verify, 1, 'another trust verifies it again')
})
