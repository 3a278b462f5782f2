import { X509Certificate, createHash } from 'node:crypto'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import * as tls from 'node:tls'
import fc from 'fast-check'
import t from 'tap'
import { createRootCa, createTestPki, type IssuedCertificate } from 'mtls-pki'
import { x509 } from 'mtls-pki/x509'
import { CertificateError, SvidError, thumbprintS256, toPeerIdentity } from '../src/index.js'
import { formatName, peerCertificateDer, presentedCertificates, readCertificateFields, readPemBlocks } from '../src/internal.js'

const pki = await createTestPki()
const der = (issued: IssuedCertificate): Buffer => readPemBlocks(issued.certificate)[0]!.der

t.test('a SPIFFE client certificate becomes a frozen identity with every field', async t => {
  const identity = toPeerIdentity(der(pki.orderService))
  const native = new X509Certificate(pki.orderService.certificate)
  t.equal(identity.id, 'spiffe://mycompany.com/production/order-service')
  t.equal(identity.spiffeId?.toString(), 'spiffe://mycompany.com/production/order-service')
  t.equal(identity.spiffeId?.trustDomain, 'mycompany.com')
  t.same(identity.uris, ['spiffe://mycompany.com/production/order-service'])
  t.same(identity.dnsNames, [])
  t.equal(identity.commonName, 'order-service')
  t.equal(identity.subject, 'CN=order-service')
  t.equal(identity.issuer, 'CN=mtls-pki test intermediate CA')
  t.equal(identity.serialNumber, native.serialNumber)
  t.equal(identity.fingerprint256, native.fingerprint256)
  t.equal(identity.notBefore.getTime(), new Date(native.validFrom).getTime())
  t.equal(identity.notAfter.getTime(), new Date(native.validTo).getTime())
  t.equal(identity.source, 'tls')
  t.ok(Object.isFrozen(identity) && Object.isFrozen(identity.uris) && Object.isFrozen(identity.dnsNames))
  t.same(toPeerIdentity(native).toJSON(), identity.toJSON(), "Node's certificate object gives the same identity as DER")
  t.same(JSON.parse(JSON.stringify(identity)), { ...identity.toJSON(), notBefore: identity.notBefore.toISOString(), notAfter: identity.notAfter.toISOString() }, 'serialises with subject, issuer and the SPIFFE ID as text')
  t.equal(JSON.parse(JSON.stringify(identity)).spiffeId, 'spiffe://mycompany.com/production/order-service')
  t.equal(toPeerIdentity(native, { source: 'forwarded' }).source, 'forwarded')
})

t.test('thumbprintS256 is RFC 8705 x5t#S256: base64url, unpadded, of the SHA-256 of the DER', async t => {
  const identity = toPeerIdentity(der(pki.orderService))
  const expected = createHash('sha256').update(der(pki.orderService)).digest('base64')
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
  t.equal(identity.thumbprintS256, expected)
  t.match(identity.thumbprintS256, /^[A-Za-z0-9_-]{43}$/, '43 characters of the base64url alphabet, no padding')
  t.equal(toPeerIdentity(new X509Certificate(pki.orderService.certificate)).thumbprintS256, expected, "the same from Node's certificate object")
  t.equal(thumbprintS256(der(pki.orderService)), expected)
  t.equal(thumbprintS256(new Uint8Array(der(pki.orderService)).slice().buffer), expected, 'an ArrayBuffer gives the same')
  t.equal(toPeerIdentity(der(pki.orderService), { source: 'forwarded' }).thumbprintS256, expected, 'forwarded certificates have it too')
  t.not(toPeerIdentity(der(pki.inventoryService)).thumbprintS256, expected, 'another certificate has another thumbprint')
  t.equal(identity.toJSON().thumbprintS256, expected)
  t.ok(Object.isFrozen(identity), 'worked out lazily, the identity stays frozen')
})

t.test('the id falls back to dns: the first DNS name, then cn: the CN, then sha256: the fingerprint', async t => {
  const ca = pki.intermediate
  const dns = toPeerIdentity(der(await ca.issue({ dnsNames: ['b.example', 'a.example'], commonName: 'cn' })))
  t.equal(dns.id, 'dns:b.example')
  t.equal(dns.spiffeId, null)
  t.equal(toPeerIdentity(der(pki.noSan)).id, 'cn:no-san-service')
  const anonymous = toPeerIdentity(der(await ca.issue({ ips: ['10.1.2.3'] })))
  t.equal(anonymous.commonName, null)
  t.equal(anonymous.id, `sha256:${anonymous.fingerprint256}`)
  t.same(anonymous.ips, ['10.1.2.3'])
  const custom = toPeerIdentity(der(pki.orderService), { identify: identity => `cn:${identity.commonName ?? ''}` })
  t.equal(custom.id, 'cn:order-service', 'identify chooses the id')
  t.equal(custom.spiffeId?.toString(), 'spiffe://mycompany.com/production/order-service')
})

t.test('SANs are read from the DER: a DNS name holding ", URI:spiffe://..." forges nothing (CVE-2021-44532)', async t => {
  const native = new X509Certificate(pki.sanInjection.certificate)
  t.match(native.subjectAltName, 'URI:spiffe://mycompany.com/production/admin', "Node's string contains the forged text")
  const identity = toPeerIdentity(native)
  t.same(identity.uris, [], 'no URI SAN')
  t.equal(identity.spiffeId, null, 'no SPIFFE ID')
  t.same(identity.dnsNames, ['evil.example, URI:spiffe://mycompany.com/production/admin'], 'one DNS SAN, whole')
  t.not(identity.id, 'spiffe://mycompany.com/production/admin')
})

t.test('IP, email and DNS SANs come out typed, IPv6 in RFC 5952 form', async t => {
  const issued = await pki.intermediate.issue({
    dnsNames: ['a.example'],
    ips: ['127.0.0.1', '::1', '2001:db8::1', '2001:db8:0:0:1:0:0:1', 'fe80::1:2:3:4', '1:2:3:4:5:6:7:8', '::'],
    emails: ['ops@example.org']
  })
  const identity = toPeerIdentity(der(issued))
  t.same(identity.ips, ['127.0.0.1', '::1', '2001:db8::1', '2001:db8::1:0:0:1', 'fe80::1:2:3:4', '1:2:3:4:5:6:7:8', '::'])
  t.same(identity.emails, ['ops@example.org'])
  t.same(identity.dnsNames, ['a.example'])
})

t.test('subject and issuer escape what could pass for another attribute', async t => {
  // (@peculiar/x509 drops quotes and backslashes from names it is given, so the CN here has none.)
  const issued = await pki.intermediate.issue({ commonName: ' a, CN=admin+O=x;<y> ', dnsNames: ['x'] })
  const identity = toPeerIdentity(der(issued))
  t.equal(identity.commonName, ' a, CN=admin+O=x;<y> ')
  t.equal(identity.subject, 'CN=\\ a\\, CN=admin\\+O=x\\;\\<y\\>\\ ')
})

t.test('the DER walker agrees with @peculiar/x509 on every certificate of the test set', async t => {
  const names = ['server', 'orderService', 'inventoryService', 'expired', 'notYetValid', 'otherCa', 'caAsLeaf', 'serverOnly', 'revoked', 'twoUriSans', 'invalidSpiffeId', 'noSan', 'sanInjection'] as const
  for (const name of names) {
    const bytes = der(pki[name])
    const fields = readCertificateFields(bytes)
    const reference = new x509.X509Certificate(bytes)
    const san = reference.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? []
    t.same(fields.uris, san.filter(n => n.type === 'url').map(n => n.value), `${name}: URIs`)
    t.same(fields.dnsNames, san.filter(n => n.type === 'dns').map(n => n.value), `${name}: DNS names`)
    t.equal(fields.sanCount, san.length, `${name}: SAN count`)
    t.equal(fields.serialNumber, reference.serialNumber.toUpperCase(), `${name}: serial`)
    t.equal(fields.notAfter.getTime(), reference.notAfter.getTime(), `${name}: notAfter`)
    t.equal(fields.isCa, reference.getExtension(x509.BasicConstraintsExtension)?.ca ?? false, `${name}: CA flag`)
    t.equal(fields.keyUsage, reference.getExtension(x509.KeyUsagesExtension)?.usages ?? null, `${name}: key usage bits`)
    t.same(fields.extendedKeyUsages, reference.getExtension(x509.ExtendedKeyUsageExtension)?.usages.map(String) ?? null, `${name}: EKUs`)
    t.equal(formatName(bytes, fields.subject), reference.subject, `${name}: subject`)
    t.equal(formatName(bytes, fields.issuer), reference.issuer, `${name}: issuer`)
  }
})

t.test('X509-SVID rules are enforced, each with its own code', async t => {
  const ca = pki.intermediate
  const cases: Array<[string, IssuedCertificate, string]> = [
    ['two URI SANs', pki.twoUriSans, 'ERR_MTLS_SVID_URI_SAN_COUNT'],
    ['a SPIFFE URI beside an https URI', await ca.issue({ spiffeId: 'spiffe://mycompany.com/a', uris: ['https://example.com'] }), 'ERR_MTLS_SVID_URI_SAN_COUNT'],
    ['an invalid SPIFFE ID', pki.invalidSpiffeId, 'ERR_MTLS_SVID_INVALID_SPIFFE_ID'],
    ['a trust domain ID (root path)', await ca.issue({ commonName: 'r', uris: ['spiffe://mycompany.com'] }), 'ERR_MTLS_SVID_ROOT_PATH'],
    ['no key usage extension', await ca.issue({ spiffeId: 'spiffe://mycompany.com/a', keyUsages: null }), 'ERR_MTLS_SVID_KEY_USAGE_MISSING'],
    ['no digitalSignature', await ca.issue({ spiffeId: 'spiffe://mycompany.com/a', keyUsages: ['keyAgreement'] }), 'ERR_MTLS_SVID_NO_DIGITAL_SIGNATURE'],
    ['keyCertSign on a leaf', await ca.issue({ spiffeId: 'spiffe://mycompany.com/a', keyUsages: ['digitalSignature', 'keyCertSign'] }), 'ERR_MTLS_SVID_CA_KEY_USAGE'],
    ['cRLSign on a leaf', await ca.issue({ spiffeId: 'spiffe://mycompany.com/a', keyUsages: ['digitalSignature', 'cRLSign'] }), 'ERR_MTLS_SVID_CA_KEY_USAGE']
  ]
  for (const [what, issued, code] of cases) {
    t.throws(() => toPeerIdentity(der(issued)), { code }, what)
    const lenient = toPeerIdentity(der(issued), { svid: false })
    t.equal(lenient.spiffeId, null, `${what}: with svid: false there is simply no SPIFFE ID`)
    t.not(lenient.id.startsWith('spiffe://'), true)
  }
  t.ok((() => { try { toPeerIdentity(der(pki.twoUriSans)) } catch (err) { return err instanceof SvidError } })())
  const https = toPeerIdentity(der(await ca.issue({ commonName: 'web', uris: ['https://a.example', 'https://b.example'] })))
  t.same(https.uris, ['https://a.example', 'https://b.example'], 'non-SPIFFE URIs are not held to SVID rules')
})

t.test('the identity of a real TLS peer, read from the socket', async t => {
  const seen: string[] = []
  const chains: number[][] = []
  const server = tls.createServer({ key: pki.server.key, cert: pki.server.chain, ca: pki.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, socket => {
    const der = peerCertificateDer(socket)
    seen.push(toPeerIdentity(der!).id)
    // Read twice: what Node shows of the chain is read without taking it away (Node 20's getPeerX509Certificate does).
    chains.push([presentedCertificates(socket).length, presentedCertificates(socket).length])
    socket.end('ok')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const { port } = server.address() as AddressInfo
  let serverIdentity = ''
  for (const client of [pki.orderService, pki.inventoryService]) {
    const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: pki.ca, cert: client.chain, key: client.key })
    await once(socket, 'secureConnect')
    serverIdentity = toPeerIdentity(socket.getPeerX509Certificate()!).id
    socket.resume()
    await once(socket, 'end')
  }
  t.same(seen, ['spiffe://mycompany.com/production/order-service', 'spiffe://mycompany.com/production/inventory-service'])
  t.equal(serverIdentity, 'spiffe://mycompany.com/production/payment-service', 'the client reads the server the same way')
  // Leaf, the intermediate it sent, and the root Node found in the server's trust.
  t.same(chains, [[3, 3], [3, 3]], 'the chain the peer sent, as often as it is read')
  const none = { getSession: () => undefined, getPeerCertificate: () => ({}) } as unknown as Parameters<typeof peerCertificateDer>[0]
  t.equal(peerCertificateDer(none), null, 'null without a peer certificate')
  t.same(presentedCertificates(none as unknown as Parameters<typeof presentedCertificates>[0]), [])
})

t.test('other key types read the same', async t => {
  for (const keyType of ['p384', 'ed25519', 'rsa2048'] as const) {
    const root = await createRootCa({ keyType })
    const issued = await root.issue({ keyType, spiffeId: 'spiffe://example.org/k' })
    t.equal(toPeerIdentity(der(issued)).id, 'spiffe://example.org/k', keyType)
  }
})

t.test('DER that is not a certificate throws CertificateError, never anything else', async t => {
  const good = der(pki.orderService)
  t.throws(() => toPeerIdentity(good.subarray(0, good.length - 10)), { code: 'ERR_MTLS_CERTIFICATE_MALFORMED' })
  t.throws(() => toPeerIdentity(Buffer.from([0x30, 0x03, 0x02, 0x01])), { code: 'ERR_MTLS_CERTIFICATE_MALFORMED' })
  t.throws(() => toPeerIdentity(Buffer.alloc(0)), CertificateError)
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(good.length - 1), fc.nat(255), (noise, at, byte) => {
    for (const input of [Buffer.from(noise), Buffer.from(good).fill(byte, at, at + 1)]) {
      try {
        toPeerIdentity(input)
      } catch (err) {
        if (!(err instanceof CertificateError) && !(err instanceof SvidError)) return false
      }
    }
    return true
  }), { numRuns: 3000 })
  t.pass('3000 random and corrupted inputs')
})

t.test('readCertificateFields walks one content once, and what it shares cannot be changed', async t => {
  const der = new X509Certificate(pki.orderService.certificate).raw
  const copy = Buffer.from(der)
  const fields = readCertificateFields(der)
  t.equal(readCertificateFields(copy), fields, 'another buffer with the same bytes: the same fields (each connection brings its own buffer)')
  t.ok(Object.isFrozen(fields) && Object.isFrozen(fields.uris) && Object.isFrozen(fields.dnsNames), 'frozen: one connection cannot change what the next one reads')
  t.throws(() => { (fields.uris as string[]).push('spiffe://example.org/evil') }, TypeError)
  const other = new X509Certificate(pki.inventoryService.certificate).raw
  t.not(readCertificateFields(other), fields, 'other bytes: other fields')
  t.match(readCertificateFields(other).uris[0], /inventory-service$/)
})
