// Attacks on forwarded identities: verdicts remembered past the trust they were judged under, certificates the
// TLS layer refuses but the forwarded path believes, and header spellings a trusted proxy's connection may carry.
import { webcrypto } from 'node:crypto'
import t from 'tap'
import { createTestPki, type CertificateAuthority } from 'mtls-pki'
import { readPemBlocks, toPem } from 'mtls-core/internal'
import { x509 } from 'mtls-pki/x509'
import { PEER_ERRORS } from '../../src/index.js'
import { compileTrustedProxies } from '../../src/trusted-proxies.js'
import { agentFor, beforeExpiry, pastExpiry, rawHttp1Request, startServer, who } from '../helpers.js'

const pki = await createTestPki()
const proxy = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/infra/envoy' })
const trustedProxies = { identities: ['spiffe://mycompany.com/infra/**'] }
const base64 = (pem: string): string => readPemBlocks(pem)[0]!.der.toString('base64')
const aspnet = (pem: string): string[] => ['x-client-cert', base64(pem)]

// An HTTP/1.1 request written byte for byte by the trusted proxy, for header spellings no client library sends.
const rawRequest = async (url: string, head: string): Promise<{ status: number, body: string }> => await rawHttp1Request(url, pki, proxy, head)

t.test('a remembered verdict does not outlive the intermediate CA or the CRL it was judged with', async t => {
  const crlClient = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/crl-checked' })
  // A second of each (crlClient2, client2), never shown before the deadline: their headers are judged afresh after it.
  const crlClient2 = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/crl-checked-2' })
  const viaProxy = agentFor(t, pki, proxy)
  // The intermediate and the CRL end together.
  const { expiring, crlDue, client, client2, before, expiry } = await beforeExpiry(t, async deadline => {
    const shortLived = await pki.root.createIntermediate({ commonName: 'short-lived intermediate', notAfter: deadline })
    const client = await shortLived.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/short-lived-issuer' })
    const client2 = await shortLived.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/short-lived-issuer-2' })
    const [intermediateCrl, rootCrl] = await pki.intermediate.createCrls({ nextUpdate: deadline })
    const expiring = await startServer(t, pki, { trustedProxies, forwarded: 'aspnet', ca: [pki.ca, shortLived.certificate] })
    const crlDue = await startServer(t, pki, { trustedProxies, forwarded: 'aspnet', ca: [pki.ca, pki.intermediate.certificate], crl: [intermediateCrl as string, rootCrl as string] })
    const before = [(await who(expiring.url, viaProxy, aspnet(client.certificate))).body.source, (await who(crlDue.url, viaProxy, aspnet(crlClient.certificate))).body.source]
    return { expiring, crlDue, client, client2, before }
  })
  t.same(before, ['forwarded', 'forwarded'], 'believed while its intermediate is valid, and while the CRL is current')

  await pastExpiry(expiry)
  // A header not seen before is judged afresh: the verifier refuses it now.
  t.equal((await who(expiring.url, viaProxy, aspnet(client2.certificate))).body.error, 'CERT_HAS_EXPIRED', 'judged afresh: the intermediate has expired')
  t.equal((await who(crlDue.url, viaProxy, aspnet(crlClient2.certificate))).body.error, 'CRL_HAS_EXPIRED', 'judged afresh: the CRL is overdue')
  // This got through before the fix: VerdictCache keeps a verdict for 60 s or until the leaf's notAfter, never shorter: the notAfter of the
  // CAs in its chain and the nextUpdate of the CRLs used are not taken into account, so for up to a minute the
  // exact same header is still believed after its intermediate expired (or its CRL fell due), while a handshake,
  // or another certificate of the same intermediate, is refused.
  t.same((await who(expiring.url, viaProxy, aspnet(client.certificate))).body, { id: null, source: null, error: 'CERT_HAS_EXPIRED' }, 'the remembered header: refused too')
  t.same((await who(crlDue.url, viaProxy, aspnet(crlClient.certificate))).body, { id: null, source: null, error: 'CRL_HAS_EXPIRED' }, 'the remembered header: refused too')
})

async function anyEkuClient (ca: CertificateAuthority): Promise<{ certificate: string, chain: string, key: string }> {
  const subtle = webcrypto.subtle
  const ec = { name: 'ECDSA', namedCurve: 'P-256' } as const
  const keys = await subtle.generateKey(ec, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '01' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
    subject: 'CN=any-eku',
    issuer: new x509.X509Certificate(ca.certificate).subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: keys.publicKey,
    signingKey: await subtle.importKey('pkcs8', readPemBlocks(ca.key)[0]!.der, ec, false, ['sign']),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(['2.5.29.37.0']),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://mycompany.com/production/admin' }]),
      // Conforming but for its extended key usage: the authority key identifier x509_strict asks for, so that the usage is its one fault.
      new x509.AuthorityKeyIdentifierExtension(new x509.X509Certificate(ca.certificate).getExtension(x509.SubjectKeyIdentifierExtension)!.keyId)
    ]
  })
  const certificate = toPem(cert.rawData, 'CERTIFICATE')
  return { certificate, chain: certificate + ca.chain, key: toPem(await subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY') }
}

t.test('a certificate the handshake refuses (anyExtendedKeyUsage only) is refused when forwarded too', async t => {
  const client = await anyEkuClient(pki.intermediate)
  const { url } = await startServer(t, pki, { trustedProxies, forwarded: 'aspnet' })
  const direct = await who(url, agentFor(t, pki, client))
  t.same(direct.body, { id: null, source: null, error: 'INVALID_PURPOSE' }, 'presented directly, OpenSSL refuses it')
  // This got through before the fix: ChainVerifier counts anyExtendedKeyUsage as clientAuth; OpenSSL does not. Forwarded by a trusted proxy
  // (with the default verifyForwarded: true, meant to judge it "as the TLS layer verifies a direct one") the
  // same certificate becomes spiffe://mycompany.com/production/admin.
  t.same((await who(url, agentFor(t, pki, proxy), aspnet(client.certificate))).body, { id: null, source: null, error: 'INVALID_PURPOSE' }, 'forwarded, refused the same way')
})

t.test('correctly refused: header spellings on the trusted proxy\'s HTTP/1.1 connection', async t => {
  const { url } = await startServer(t, pki, { trustedProxies, forwarded: 'aspnet' })
  const value = base64(pki.orderService.certificate)
  t.match(await rawRequest(url, `X-Client-Cert: ${value}\r\n`), { status: 200, body: /"source":"forwarded"/ }, 'control: one header is believed')
  t.equal((await rawRequest(url, `X-Client-Cert: ${value.slice(0, 40)}\r\n ${value.slice(40)}\r\n`)).status, 400, 'obs-fold: the request is refused by the HTTP parser')
  t.match(await rawRequest(url, `X-Client-Cert: ${value}\r\nx-client-cert: ${base64(pki.inventoryService.certificate)}\r\n`), { status: 200, body: new RegExp(PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_REPEATED) }, 'two case variants of the name are one header, repeated')
  t.match(await rawRequest(url, `X-CLIENT-CERT:\r\nX-Client-Cert: ${value}\r\n`), { status: 200, body: new RegExp(PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_REPEATED) }, 'an empty copy beside a full one is repeated, not skipped')
  t.match(await rawRequest(url, `X-Client-Cert : ${value}\r\n`), { status: 400 }, 'a space before the colon is refused by the parser')
  t.match(await rawRequest(url, `X_Client_Cert: ${value}\r\n`), { status: 200, body: new RegExp(PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MISSING) }, 'underscores are another header')
})

t.test('correctly refused: certificate encodings that are not one plain certificate', async t => {
  const der = readPemBlocks(pki.orderService.certificate)[0]!.der
  const body = der.toString('base64').match(/.{1,64}/g)!.join('\n')
  const pemAs = (label: string): string => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`
  const nginx = await startServer(t, pki, { trustedProxies, forwarded: 'nginx' })
  const rfc = await startServer(t, pki, { trustedProxies, forwarded: 'rfc9440' })
  const asp = await startServer(t, pki, { trustedProxies, forwarded: 'aspnet' })
  const envoy = await startServer(t, pki, { trustedProxies, forwarded: 'envoy' })
  const viaProxy = agentFor(t, pki, proxy)
  const malformed = { id: null, source: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MALFORMED }
  const cases: Array<[string, string, string[]]> = [
    ['X509 CERTIFICATE label', nginx.url, ['x-ssl-client-cert', encodeURIComponent(pemAs('X509 CERTIFICATE'))]],
    ['TRUSTED CERTIFICATE label', nginx.url, ['x-ssl-client-cert', encodeURIComponent(pemAs('TRUSTED CERTIFICATE'))]],
    ['PKCS7 label', nginx.url, ['x-ssl-client-cert', encodeURIComponent(pemAs('PKCS7'))]],
    ['BEGIN and END labels that differ', nginx.url, ['x-ssl-client-cert', encodeURIComponent(pemAs('CERTIFICATE').replace('END CERTIFICATE', 'END X509 CRL'))]],
    ['a bad percent escape', nginx.url, ['x-ssl-client-cert', encodeURIComponent(pemAs('CERTIFICATE')) + '%zz']],
    ['base64url', asp.url, ['x-client-cert', der.toString('base64url')]],
    ['base64 with a space inside', asp.url, ['x-client-cert', der.toString('base64').replace(/^(.{20})/, '$1 ')]],
    ['base64 with padding in the middle', asp.url, ['x-client-cert', der.toString('base64').replace(/^(.{20})/, '$1==')]],
    ['rfc9440 with a parameter', rfc.url, ['client-cert', `:${der.toString('base64')}:;by=proxy`]],
    ['rfc9440 without colons', rfc.url, ['client-cert', der.toString('base64')]],
    ['rfc9440 as a string', rfc.url, ['client-cert', `"${der.toString('base64')}"`]],
    ['xfcc Cert outside quotes holding a comma', envoy.url, ['x-forwarded-client-cert', `By=spiffe://mycompany.com/infra/envoy;Cert=${encodeURIComponent(pki.orderService.certificate)},`]]
  ]
  for (const [what, url, header] of cases) t.same((await who(url, viaProxy, header)).body, malformed, what)
  // An element with a quoted comma is one element; only a Cert of the last element counts.
  const quoted = 'By=spiffe://mycompany.com/infra/envoy;Subject="CN=a,O=b";URI=spiffe://mycompany.com/production/admin'
  t.same((await who(envoy.url, viaProxy, ['x-forwarded-client-cert', quoted])).body, { id: null, source: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_CERTIFICATE_MISSING }, 'URI and Subject of an element never stand in for its Cert')
})

t.test('trusted proxy addresses: IPv4-mapped IPv6 is the IPv4 address, other embeddings are not', async t => {
  const trusted = (addresses: string[], peer: string): boolean => compileTrustedProxies({ addresses })(null, peer)
  t.ok(trusted(['127.0.0.1'], '::ffff:127.0.0.1'), 'an IPv4-mapped peer is its IPv4 address')
  t.ok(trusted(['10.0.0.0/8'], '::ffff:10.1.2.3'))
  t.notOk(trusted(['10.0.0.0/8'], '::10.1.2.3'), 'an IPv4-compatible address is not the IPv4 address')
  t.notOk(trusted(['127.0.0.1'], '::7f00:1'))
  t.notOk(trusted(['10.0.0.0/8'], '64:ff9b::10.1.2.3'), 'nor is a NAT64 address')
  t.notOk(trusted(['10.0.0.0/8'], 'ffff::ffff:10.1.2.3'))
  t.notOk(trusted(['0.0.0.0/0'], '::1'), 'every IPv4 address is not an IPv6 one')
  t.notOk(trusted(['10.0.0.1'], '10.0.0.1%eth0'), 'a zone suffix does not pass for the address')
  t.notOk(compileTrustedProxies({ addresses: ['10.0.0.1'] })(null, undefined), 'no address at all is not trusted')
})
