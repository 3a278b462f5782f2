// Trust on real TLS connections (a tls server on 127.0.0.1, tls.connect clients with certificates from mtls-pki):
// the chain OpenSSL verified is recorded from what Node shows, anchored with one signature check, and judged by
// what a trust says of its certificates, never path-validated again.
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import * as tls from 'node:tls'
import t from 'tap'
import { createRootCa, createTestPki } from 'mtls-pki'
import { Trust, presentedCertificates, readCertificateFields, readPemBlocks, type ChainRecord } from '../src/internal.js'

const [pki, partner] = await Promise.all([createTestPki(), createTestPki({ trustDomain: 'partner.example' })])
const derOf = (pem: string): Buffer => readPemBlocks(pem)[0]!.der
const names = (chain: ChainRecord | null): Array<string | null> | null => chain === null ? null : chain.certificates.map(c => c.fields.commonName)
interface Tap { teardown: (fn: () => unknown) => void }
interface Connection { serverSide: tls.TLSSocket, ticket: Promise<Buffer> }

// A TLS server asking for client certificates, closed when the test ends; `connect` returns the server's side of a connection.
async function listen (t: Tap, options: tls.TlsOptions): Promise<(client: { chain: string, key: string }, session?: Buffer) => Promise<Connection>> {
  const server = tls.createServer({ cert: pki.server.chain, key: pki.server.key, requestCert: true, minVersion: 'TLSv1.3', ...options })
  const sockets: tls.TLSSocket[] = []
  server.on('secureConnection', socket => { sockets.push(socket); socket.on('error', () => {}) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { for (const socket of sockets) socket.destroy(); server.close() })
  const port = (server.address() as AddressInfo).port
  return async (client, session) => {
    const accepted = once(server, 'secureConnection')
    const clientSide = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: pki.ca, cert: client.chain, key: client.key, ...(session === undefined ? {} : { session }) })
    clientSide.on('error', () => {})
    const ticket = once(clientSide, 'session').then(([s]) => s as Buffer)
    clientSide.resume()
    t.teardown(() => { clientSide.destroy() })
    const [serverSide] = await accepted as [tls.TLSSocket]
    return { serverSide, ticket }
  }
}

t.test('the chain of a full handshake, from what the peer sent, ended at the root that signed its top certificate', async t => {
  const connect = await listen(t, { ca: pki.ca })
  const trust = new Trust({ ca: pki.ca })
  const { serverSide } = await connect(pki.orderService)
  const presented = presentedCertificates(serverSide)
  t.equal(presented.length, 3, 'leaf, the intermediate it sent, and the root Node found in the server\'s trust')
  const chain = trust.presentedChain(presented)
  t.same(names(chain), ['order-service', 'mtls-pki test intermediate CA', 'mtls-pki test root CA'])
  t.equal(chain?.source, 'presented')
  t.same(names(trust.presentedChain(presented.slice(0, 2))), names(chain), 'without the root: the trust\'s root that signed the top certificate ends it')
  t.equal(trust.presentedChain(presented.slice(0, 1)), null, 'the leaf alone: no root of the trust signed it')
  t.equal(trust.presentedChain([]), null)
  t.equal(trust.presentedChain([Buffer.from('not a certificate')]), null)
  t.equal(new Trust({ ca: partner.ca }).presentedChain(presented.slice(0, 2)), null, 'another trust\'s root did not sign it')
  t.equal(chain?.until, Math.min(pki.orderService.notAfter.getTime(), pki.intermediate.notAfter.getTime(), pki.root.notAfter.getTime()))

  const resumed = await connect(pki.orderService, await (await connect(pki.orderService)).ticket)
  t.ok(resumed.serverSide.isSessionReused(), 'a resumed session')
  t.equal(presentedCertificates(resumed.serverSide).length, 1, 'shows the leaf alone')
})

t.test('the chain above a certificate as the trust holds it: the CAs whose keys signed each link', async t => {
  const withIntermediate = new Trust({ ca: pki.ca, intermediates: pki.intermediate.certificate })
  const chain = withIntermediate.chainFromTrust(derOf(pki.orderService.certificate))
  t.same(names(chain), ['order-service', 'mtls-pki test intermediate CA', 'mtls-pki test root CA'])
  t.equal(chain?.source, 'trust')
  t.equal(new Trust({ ca: pki.ca }).chainFromTrust(derOf(pki.orderService.certificate)), null, 'without the intermediate the trust cannot tell')
  // The partner's intermediate has our intermediate's name, and another key.
  t.equal(withIntermediate.chainFromTrust(derOf(partner.orderService.certificate)), null, 'a CA of the same name whose key did not sign it is not its issuer')
  t.equal(withIntermediate.chainFromTrust(Buffer.from('junk')), null)

  // CAs renewed under one name with new keys: a chain lasts as long as the CA that signed it.
  const root = await createRootCa({ commonName: 'rollover root' })
  const old = await root.createIntermediate({ commonName: 'rollover intermediate', notAfter: new Date(Date.now() + 3_600_000) })
  const renewed = await root.createIntermediate({ commonName: 'rollover intermediate', days: 365 })
  const rollover = new Trust({ ca: root.certificate, intermediates: [renewed.certificate, old.certificate] })
  const client = await old.issue({ usage: 'client', spiffeId: 'spiffe://example.org/old' })
  t.equal(rollover.chainFromTrust(derOf(client.certificate))?.until, old.notAfter.getTime(), 'the old intermediate signed it, not the renewed one')
  const renewedClient = await renewed.issue({ usage: 'client', spiffeId: 'spiffe://example.org/renewed' })
  t.equal(rollover.chainFromTrust(derOf(renewedClient.certificate))?.until, Math.min(renewedClient.notAfter.getTime(), renewed.notAfter.getTime()))
})

t.test('a chain is judged by what the trust says of its certificates', async t => {
  const root = await createRootCa({ commonName: 'judged root' })
  const intermediate = await root.createIntermediate({ commonName: 'judged intermediate' })
  const [client, other] = await Promise.all([
    intermediate.issue({ usage: 'client', spiffeId: 'spiffe://example.org/client' }),
    intermediate.issue({ usage: 'client', spiffeId: 'spiffe://example.org/other' })
  ])
  const base = new Trust({ ca: root.certificate, intermediates: intermediate.certificate })
  const chain = base.chainFromTrust(derOf(client.certificate)) as ChainRecord
  t.equal(base.judge(chain), null, 'it stands under the trust it was verified against')
  const crls = await intermediate.createCrls()
  t.equal(new Trust({ ca: root.certificate, crl: crls }).judge(chain), null, 'CRLs that list nothing of it')
  t.match(new Trust({ ca: partner.ca }).judge(chain), { code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', message: /ends at "judged root", which this trust does not hold/ }, 'its anchor withdrawn')
  t.match(new Trust({ ca: root.certificate, crl: crls.slice(0, 1) }).judge(chain), { code: 'UNABLE_TO_GET_CRL', message: /no CRL of "judged root"/ }, 'CRLs without one from the root: the intermediate cannot be checked (CRL_CHECK_ALL)')

  intermediate.revoke(client)
  const revoking = new Trust({ ca: root.certificate, crl: await intermediate.createCrls() })
  t.match(revoking.judge(chain), { code: 'CERT_REVOKED', message: /"client".*is revoked/ })
  t.equal(revoking.judge(base.chainFromTrust(derOf(other.certificate)) as ChainRecord), null, 'only the certificate it lists')
  root.revoke(readCertificateFields(derOf(intermediate.certificate)).serialNumber)
  t.match(new Trust({ ca: root.certificate, crl: await intermediate.createCrls() }).judge(base.chainFromTrust(derOf(other.certificate)) as ChainRecord), { code: 'CERT_REVOKED', message: /"judged intermediate"/ }, 'an intermediate of the chain revoked by the root')

  // A CRL under the issuer's name, signed by another key, is not the issuer's: it counts for nothing.
  const impostor = await createRootCa({ commonName: 'judged intermediate' })
  t.match(new Trust({ ca: root.certificate, crl: [(await impostor.createCrls())[0] as string, crls[1] as string] }).judge(chain), { code: 'UNABLE_TO_GET_CRL', message: /no CRL of "judged intermediate"/ })

  const later = Date.now() + 400 * 86_400_000
  t.match(base.judge(chain, later), { code: 'CERT_HAS_EXPIRED' })
  t.match(base.judge(chain, Date.now() - 86_400_000), { code: 'CERT_NOT_YET_VALID' })
})

t.test('what changed between two trusts', async t => {
  const root = await createRootCa({ commonName: 'change root' })
  const intermediate = await root.createIntermediate({ commonName: 'change intermediate' })
  const client = await intermediate.issue({ usage: 'client', spiffeId: 'spiffe://example.org/client' })
  const crls = await intermediate.createCrls()
  const none = new Trust({ ca: root.certificate })
  const checked = new Trust({ ca: root.certificate, crl: crls })
  t.same(none.changeSince(none), { none: true, whole: false, crlIssuers: new Set() })
  t.same(new Trust({ ca: root.certificate, intermediates: intermediate.certificate }).changeSince(none).none, true, 'another intermediate of its own is no change of trust')
  t.same(checked.changeSince(none).whole, true, 'CRL checking turned on: every chain is judged whole')
  t.same(none.changeSince(checked).none, true, 'turned off: nothing can be refused for it')
  t.same(new Trust({ ca: pki.ca }).changeSince(none).whole, true, 'a root withdrawn')
  t.same(new Trust({ ca: [root.certificate, pki.ca] }).changeSince(none).none, true, 'a root added')
  t.same(new Trust({ trustDomains: new Map([['example.org', root.certificate]]) }).changeSince(none).whole, true, 'the same root, now by trust domain: every chain is held to its bundle')
  const refreshed = new Trust({ ca: root.certificate, crl: [(await intermediate.createCrl()), crls[1] as string], intermediates: intermediate.certificate })
  const change = refreshed.changeSince(checked)
  t.same([change.none, change.whole, [...change.crlIssuers].length], [false, false, 1], 'a CRL refresh: one issuer\'s CRLs changed')
  t.ok(change.crlIssuers.has(Trust.issuerKey(derOf(client.certificate)) as string), 'the issuer of the client\'s certificate')
  t.equal(Trust.issuerKey(Buffer.from('junk')), null, 'no issuer for bytes that are no certificate')
  t.equal(refreshed.judgeLeaf(derOf(client.certificate)), null, 'its certificate alone decides, its issuer found among the trust\'s CAs: not listed')
  intermediate.revoke(client)
  const revoking = new Trust({ ca: root.certificate, crl: [await intermediate.createCrl(), crls[1] as string], intermediates: intermediate.certificate })
  t.match(revoking.judgeLeaf(derOf(client.certificate)), { code: 'CERT_REVOKED' })
  t.equal(revoking.judgeLeaf(derOf(pki.orderService.certificate)), undefined, 'a certificate whose issuer the trust does not hold: undecided here')
})

t.test('trust kept by trust domain: a chain must end in its own trust domain\'s bundle', async t => {
  const own = new Trust({ trustDomains: new Map([['mycompany.com', pki.ca]]) })
  t.equal(own.soleTrustDomain, 'mycompany.com', 'one bundle holds every root: a look at the SPIFFE ID does')
  t.same(own.peerTrustDomain({ uris: ['spiffe://mycompany.com/production/order-service'] }), { trustDomain: 'mycompany.com', refusal: null })
  t.match(own.peerTrustDomain({ uris: ['spiffe://partner.example/x'] }).refusal, { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: 'no trust bundle for the trust domain partner.example' })
  t.match(own.peerTrustDomain({ uris: ['spiffe://a.example/x', 'spiffe://b.example/y'] }).refusal, { message: /2 SPIFFE IDs/ })
  t.match(own.peerTrustDomain({ uris: ['spiffe://mycompany.com/../x'] }).refusal, { message: /SPIFFE ID is invalid/ })
  t.same(new Trust({ ca: pki.ca }).peerTrustDomain({ uris: [] }), { trustDomain: null, refusal: null }, 'a trust of one pool: nothing to hold it to')

  const connect = await listen(t, { ca: [pki.ca, partner.ca] })
  const federated = new Trust({ trustDomains: new Map([['mycompany.com', pki.ca], ['partner.example', partner.ca]]) })
  t.equal(federated.soleTrustDomain, null)
  for (const [what, client] of [['ours', pki.orderService], ['the partner\'s', partner.orderService]] as const) {
    const chain = federated.presentedChain(presentedCertificates((await connect(client)).serverSide)) as ChainRecord
    t.equal(federated.trustDomainRefusal(chain), null, `${what}: its chain ends in its own trust domain`)
    t.equal(federated.judge(chain), null)
  }
  // A partner CA issuing our IDs: OpenSSL, trusting both roots, accepts it.
  const forged = await partner.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/payment-service' })
  const { serverSide } = await connect(forged)
  t.ok(serverSide.authorized, 'OpenSSL accepts the forged certificate')
  const chain = federated.presentedChain(presentedCertificates(serverSide)) as ChainRecord
  t.match(federated.trustDomainRefusal(chain), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: /claims the trust domain mycompany\.com, but its chain ends at .*a root of partner\.example/ })
  t.match(federated.judge(chain), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED' })
  t.equal(new Trust({ ca: [pki.ca, partner.ca] }).trustDomainRefusal(chain), null, 'a trust of one pool: not this check\'s to refuse')
  t.same(new Trust({ trustDomains: new Map<string, string | string[]>([['mycompany.com', [pki.ca, partner.ca]], ['partner.example', partner.ca]]) }).changeSince(federated).whole, true, 'a root moved into another bundle')
})
