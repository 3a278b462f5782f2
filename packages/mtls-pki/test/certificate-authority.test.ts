import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { readPemBlocks } from '../src/pem.js'
import { CertificateAuthority, PkiError, createRootCa, describeCertificate } from '../src/index.js'
import { x509 } from '../src/x509.js'

const DAY_MS = 24 * 60 * 60 * 1000

t.test('a root and an intermediate are CAs, the intermediate limited to signing leaves', async t => {
  const root = await createRootCa({ commonName: 'Example Root' })
  const intermediate = await root.createIntermediate({ commonName: 'Example Intermediate' })
  const rootCert = new X509Certificate(root.certificate)
  const intermediateCert = new X509Certificate(intermediate.certificate)
  t.equal(rootCert.ca, true)
  t.equal(rootCert.subject, 'CN=Example Root')
  t.equal(rootCert.issuer, 'CN=Example Root', 'the root is self-signed')
  t.equal(intermediateCert.ca, true)
  t.equal(intermediateCert.issuer, 'CN=Example Root')
  t.ok(intermediateCert.verify(rootCert.publicKey), 'the root signed the intermediate')
  t.equal(intermediate.parent, root)
  t.equal(intermediate.root, root)
  t.equal(root.root, root)
  t.equal(root.chain, '', 'a root sends no chain of its own')
  t.equal(intermediate.chain, intermediate.certificate)
  t.match(describeCertificate(readPemBlocks(intermediate.certificate)[0]!.der).keyUsages, ['keyCertSign', 'cRLSign'])
  t.equal(intermediate.serialNumber, intermediateCert.serialNumber)
  t.equal(intermediate.fingerprint256, intermediateCert.fingerprint256)
})

t.test('a leaf carries exactly the names, usages and validity asked for', async t => {
  const root = await createRootCa()
  const ca = await root.createIntermediate()
  const notBefore = new Date(Date.now() - DAY_MS)
  const notAfter = new Date(Date.now() + 10 * DAY_MS)
  const issued = await ca.issue({
    spiffeId: 'spiffe://example.org/ns/prod/sa/api',
    dnsNames: ['api.example.org', 'api'],
    ips: ['10.0.0.1', '2001:db8::1'],
    emails: ['ops@example.org'],
    usage: 'server',
    notBefore,
    notAfter
  })
  const cert = new X509Certificate(issued.certificate)
  t.equal(cert.subjectAltName, 'URI:spiffe://example.org/ns/prod/sa/api, DNS:api.example.org, DNS:api, IP Address:10.0.0.1, IP Address:2001:DB8:0:0:0:0:0:1, email:ops@example.org')
  t.equal(cert.subject, 'CN=api.example.org', 'the common name defaults to the first DNS name')
  t.equal(cert.ca, false)
  t.same(cert.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'serverAuth only')
  t.equal(Math.floor(new Date(cert.validFrom).getTime() / 1000), Math.floor(notBefore.getTime() / 1000))
  t.equal(Math.floor(new Date(cert.validTo).getTime() / 1000), Math.floor(notAfter.getTime() / 1000))
  t.equal(issued.serialNumber, cert.serialNumber)
  t.equal(issued.fingerprint256, cert.fingerprint256)
  t.equal(issued.chain, issued.certificate + ca.certificate, 'the chain is leaf then intermediate')
  t.equal(issued.ca, root.certificate, 'the trust bundle is the root')
  t.ok(cert.checkPrivateKey(createPrivateKey(issued.key)), 'the key belongs to the certificate')
  t.match(issued.key, /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS#8')
  t.ok(cert.verify(new X509Certificate(ca.certificate).publicKey), 'the intermediate signed it')
  t.ok(Object.isFrozen(issued))

  const client = new X509Certificate((await ca.issue({ usage: 'client', spiffeId: 'spiffe://example.org/a/b' })).certificate)
  t.same(client.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'clientAuth only')
  t.equal(client.subject, 'CN=b', 'the common name defaults to the last SPIFFE path segment')
  const both = new X509Certificate((await ca.issue({ commonName: 'x' })).certificate)
  t.same(both.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'both usages by default')
})

t.test('validity defaults to 90 days, or the days asked for', async t => {
  const ca = await createRootCa()
  const cert = new X509Certificate((await ca.issue({ commonName: 'a' })).certificate)
  const days = (new Date(cert.validTo).getTime() - Date.now()) / DAY_MS
  t.ok(days > 89.9 && days <= 90, `90 days (${days})`)
  t.ok(new Date(cert.validFrom).getTime() < Date.now(), 'valid already, with a margin for clock skew')
  // Bracketed by the clock before and after (X.509 times have whole seconds): no bound on how long issuing takes.
  const before = Date.now()
  const short = await ca.issue({ commonName: 'b', days: 2 })
  const after = Date.now()
  t.ok(short.notAfter.getTime() >= before - 1000 + 2 * DAY_MS && short.notAfter.getTime() <= after + 2 * DAY_MS, 'two days from issuing')
  const later = new Date(Date.now() + 5 * DAY_MS)
  const future = await ca.issue({ commonName: 'c', notBefore: later, days: 1 })
  t.equal(future.notAfter.getTime() - future.notBefore.getTime(), DAY_MS, 'days count from notBefore')
  t.equal(Math.floor(future.notBefore.getTime() / 1000), Math.floor(later.getTime() / 1000))
})

t.test('an empty subject makes the SAN extension critical', async t => {
  const ca = await createRootCa()
  const issued = await ca.issue({ uris: ['spiffe://example.org/'] })
  const cert = new x509.X509Certificate(issued.certificate)
  t.equal(cert.subject, '')
  t.equal(cert.getExtension(x509.SubjectAlternativeNameExtension)?.critical, true)
  const named = new x509.X509Certificate((await ca.issue({ commonName: 'n', dnsNames: ['n'] })).certificate)
  t.equal(named.getExtension(x509.SubjectAlternativeNameExtension)?.critical, false, 'not critical beside a subject')
})

t.test('explicit key usages and extended key usages replace the defaults', async t => {
  const ca = await createRootCa()
  const issued = await ca.issue({ commonName: 'k', keyUsages: ['keyAgreement'], extendedKeyUsages: [] })
  const description = describeCertificate(readPemBlocks(issued.certificate)[0]!.der)
  t.same(description.keyUsages, ['keyAgreement'])
  t.same(description.extendedKeyUsages, [], 'no EKU extension at all')
  const bare = new x509.X509Certificate((await ca.issue({ commonName: 'bare', keyUsages: null })).certificate)
  t.equal(bare.getExtension(x509.KeyUsagesExtension), null, 'keyUsages: null leaves the extension out')
  const rsa = describeCertificate(readPemBlocks((await ca.issue({ commonName: 'r', keyType: 'rsa2048' })).certificate)[0]!.der)
  t.same(rsa.keyUsages, ['digitalSignature', 'keyEncipherment'], 'RSA leaves may encipher keys')
  t.equal(rsa.keyType, 'RSA 2048')
  const caLeaf = describeCertificate(readPemBlocks((await ca.issue({ commonName: 'c', isCa: true })).certificate)[0]!.der)
  t.equal(caLeaf.isCa, true)
  t.same(caLeaf.keyUsages, ['digitalSignature', 'keyCertSign', 'cRLSign'])
})

t.test('P-384, Ed25519 and RSA 3072 keys on request', async t => {
  const expectations = { p384: 'ECDSA P-384', ed25519: 'Ed25519', rsa3072: 'RSA 3072' } as const
  for (const [keyType, description] of Object.entries(expectations)) {
    const ca = await createRootCa({ keyType: keyType as keyof typeof expectations })
    t.equal(ca.keyType, keyType)
    const issued = await ca.issue({ commonName: 'k', keyType: keyType as keyof typeof expectations })
    t.equal(describeCertificate(readPemBlocks(issued.certificate)[0]!.der).keyType, description)
    t.ok(new X509Certificate(issued.certificate).verify(new X509Certificate(ca.certificate).publicKey), `${keyType} signature verifies`)
  }
})

t.test('wrong options are refused with ERR_MTLS_PKI_INVALID_OPTION and say what was wrong', async t => {
  const ca = await createRootCa()
  const invalid = { code: 'ERR_MTLS_PKI_INVALID_OPTION' }
  await t.rejects(ca.issue({ days: 0 }), { ...invalid, message: /days must be a positive number/ })
  await t.rejects(ca.issue({ days: 3, notAfter: new Date() }), { ...invalid, message: /notAfter or days, not both/ })
  await t.rejects(ca.issue({ notBefore: new Date(Date.now() + DAY_MS), notAfter: new Date() }), { ...invalid, message: /must be later than notBefore/ })
  await t.rejects(ca.issue({ notBefore: new Date('nope') }), { ...invalid, message: /notBefore must be a valid Date/ })
  await t.rejects(ca.issue({ notAfter: new Date('nope') }), { ...invalid, message: /notAfter must be a valid Date/ })
  await t.rejects(ca.issue({ ips: ['localhost'] }), { ...invalid, message: /"localhost" is not an IPv4 or IPv6 address/ })
  await t.rejects(ca.issue({ usage: 'peer' as 'client' }), { ...invalid, message: /usage must be/ })
  await t.rejects(ca.issue({ keyUsages: ['signEverything' as 'digitalSignature'] }), { ...invalid, message: /unknown key usage "signEverything"/ })
  await t.rejects(ca.issue({ extendedKeyUsages: ['anything' as 'serverAuth'] }), { ...invalid, message: /unknown usage "anything"/ })
  await t.rejects(ca.issue({ keyType: 'dsa' as 'p256' }), { ...invalid, message: /keyType must be one of p256, p384, ed25519, rsa2048, rsa3072/ })
  t.throws(() => ca.revoke('not-hex'), { ...invalid, message: /hexadecimal/ })
  t.throws(() => ca.revoke('01', { reason: 'boredom' as 'unspecified' }), { ...invalid, message: /unknown revocation reason "boredom"/ })
})

t.test('a CA read back from PEM issues certificates that chain to the same root', async t => {
  const root = await createRootCa({ keyType: 'p384' })
  const intermediate = await root.createIntermediate({ keyType: 'ed25519' })
  const reloadedRoot = await CertificateAuthority.fromPem(root.certificate, root.key)
  const reloaded = await CertificateAuthority.fromPem(intermediate.certificate, intermediate.key, reloadedRoot)
  t.equal(reloaded.keyType, 'ed25519')
  t.equal(reloadedRoot.keyType, 'p384')
  t.equal(reloaded.fingerprint256, intermediate.fingerprint256)
  const issued = await reloaded.issue({ commonName: 'again' })
  t.ok(new X509Certificate(issued.certificate).verify(new X509Certificate(intermediate.certificate).publicKey))
  t.equal(issued.ca, root.certificate)

  await t.rejects(CertificateAuthority.fromPem('garbage', root.key, null, 'ca.pem'), { code: 'ERR_MTLS_PKI_MALFORMED_INPUT', message: /ca\.pem: not a readable certificate/ })
  await t.rejects(CertificateAuthority.fromPem(root.certificate, 'garbage', null, 'ca-key.pem'), { code: 'ERR_MTLS_PKI_MALFORMED_INPUT', message: /ca-key\.pem: not a readable private key/ })
  const p521 = generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).privateKey
  await t.rejects(CertificateAuthority.fromPem(root.certificate, p521.export({ type: 'pkcs8', format: 'pem' }) as string), { code: 'ERR_MTLS_PKI_UNSUPPORTED_KEY', message: /unsupported key \(ec secp521r1\)/ })
})

t.test('a CRL lists what was revoked, signed by its CA', async t => {
  const root = await createRootCa()
  const ca = await root.createIntermediate()
  const issued = await ca.issue({ commonName: 'revoke me' })
  const entry = ca.revoke(issued, { reason: 'keyCompromise' })
  t.equal(entry.serialNumber, issued.serialNumber)
  ca.revoke('0a:1b', { date: new Date('2026-01-01T00:00:00Z') })
  t.same(ca.revoked.map(e => e.serialNumber), [issued.serialNumber, '0A1B'])
  const crls = await ca.createCrls({ days: 2 })
  t.equal(crls.length, 2, 'the intermediate and the root')
  const [own, parent] = crls.map(pem => readPemBlocks(pem)[0]!)
  t.equal(own?.label, 'X509 CRL')
  t.equal(parent?.label, 'X509 CRL')
  t.equal(readPemBlocks(crls.join('')).length, 2, 'CRLs concatenate into one file')
})

t.test('PkiError is recognised across copies of the package', async t => {
  const err = new PkiError('ERR_MTLS_PKI_FILE_UNREADABLE', 'x', { file: 'f' })
  t.ok(err instanceof PkiError)
  t.equal(err.file, 'f')
  t.equal(err.name, 'PkiError')
  const lookalike = Object.assign(new Error('y'), { [Symbol.for('mtls-pki.error')]: true })
  t.ok(lookalike instanceof PkiError)
  t.notOk(new Error('z') instanceof PkiError)
  t.notOk((null as unknown) instanceof PkiError)
})
