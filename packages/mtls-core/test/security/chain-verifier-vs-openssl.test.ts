// Attacks on ChainVerifier's promise to judge a forwarded certificate as OpenSSL judges the same certificate
// in a handshake. Each certificate here is signed by the test intermediate (a misissued certificate, as the
// threat model allows), and each test asks OpenSSL first, in a real handshake, then the verifier.
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { webcrypto } from 'node:crypto'
import * as tls from 'node:tls'
import t from 'tap'
import { createTestPki, type CertificateAuthority } from 'mtls-pki'
import { ChainVerifier, VerificationError, toPeerIdentity } from '../../src/index.js'
import { readPemBlocks, toPem } from '../../src/internal.js'
import { x509 } from 'mtls-pki/x509'

const pki = await createTestPki()
const subtle = webcrypto.subtle
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const

interface Crafted { certificate: string, chain: string, key: string, der: Buffer }

async function caKey (ca: CertificateAuthority): Promise<webcrypto.CryptoKey> {
  return await subtle.importKey('pkcs8', readPemBlocks(ca.key)[0]!.der, EC, false, ['sign'])
}

/** A client leaf for spiffe://mycompany.com/production/<name>, signed by `ca` with the extensions given. */
async function craft (ca: CertificateAuthority, name: string, options: { extensions?: x509.Extension[], first?: x509.Extension[], hash?: 'SHA-256' | 'SHA-1', eku?: string[] | null, keyUsage?: number | null } = {}): Promise<Crafted> {
  const keys = await subtle.generateKey(EC, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair
  const issuer = new x509.X509Certificate(ca.certificate)
  const eku = options.eku === undefined ? ['1.3.6.1.5.5.7.3.2'] : options.eku
  const keyUsage = options.keyUsage === undefined ? x509.KeyUsageFlags.digitalSignature : options.keyUsage
  const extensions: x509.Extension[] = [...(options.first ?? []), new x509.BasicConstraintsExtension(false, undefined, true)]
  if (keyUsage !== null) extensions.push(new x509.KeyUsagesExtension(keyUsage, true))
  if (eku !== null) extensions.push(new x509.ExtendedKeyUsageExtension(eku))
  extensions.push(new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://mycompany.com/production/${name}` }]))
  extensions.push(...(options.extensions ?? []))
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '01' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
    subject: `CN=${name}`,
    issuer: issuer.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: keys.publicKey,
    signingKey: await caKey(ca),
    signingAlgorithm: { name: 'ECDSA', hash: options.hash ?? 'SHA-256' },
    extensions
  })
  const certificate = toPem(cert.rawData, 'CERTIFICATE')
  const key = toPem(await subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY')
  return { certificate, chain: certificate + ca.chain, key, der: Buffer.from(cert.rawData) }
}

// What OpenSSL says of a client certificate in a real handshake with the server's trust (root + CRLs).
async function opensslVerdict (client: { chain: string, key: string, ciphers?: string }, trust: { ca: string | string[], crl?: readonly string[] } = { ca: pki.ca }): Promise<string | null> {
  const verdicts: Array<string | null> = []
  const server = tls.createServer({ cert: pki.server.chain, key: pki.server.key, ca: trust.ca, ...(trust.crl === undefined ? {} : { crl: [...trust.crl] }), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, socket => {
    verdicts.push(socket.authorized ? null : String(socket.authorizationError))
    socket.end()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    const socket = tls.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', ca: pki.ca, servername: 'localhost', cert: client.chain, key: client.key, ...(client.ciphers === undefined ? {} : { ciphers: client.ciphers }) })
    socket.on('error', () => {})
    socket.setTimeout(5000, () => socket.destroy())
    await once(socket, 'close')
  } finally {
    server.close()
  }
  return verdicts.length === 0 ? 'NO_VERDICT' : verdicts[0] as string | null
}

const verifier = new ChainVerifier({ ca: pki.ca, intermediates: pki.intermediate.certificate })
const codeOf = (der: Uint8Array, v: ChainVerifier = verifier): string | null => {
  try {
    v.verify(der, { purpose: 'client' })
    return null
  } catch (err) {
    if (!(err instanceof VerificationError)) throw err
    return err.code
  }
}

t.test('control: a crafted clientAuth leaf is accepted by OpenSSL and by the verifier', async t => {
  const leaf = await craft(pki.intermediate, 'control')
  t.equal(await opensslVerdict(leaf), null)
  t.equal(codeOf(leaf.der), null)
})

t.test('a leaf whose only extended key usage is anyExtendedKeyUsage', async t => {
  const leaf = await craft(pki.intermediate, 'any-eku', { eku: ['2.5.29.37.0'] })
  const openssl = await opensslVerdict(leaf)
  t.equal(openssl, 'INVALID_PURPOSE', 'OpenSSL refuses it as a TLS client (anyExtendedKeyUsage does not stand for clientAuth)')
  // This got through before the fix: ChainVerifier.checkPurpose treats anyExtendedKeyUsage (2.5.29.37.0) as allowing clientAuth, OpenSSL does
  // not (xku_reject tests the XKU_SSL_CLIENT bit only). A forwarded certificate with only this EKU is believed
  // while the same certificate presented directly is refused at the handshake.
  t.equal(codeOf(leaf.der), openssl, 'the verifier agrees with OpenSSL')
})

t.test('an intermediate whose only extended key usage is anyExtendedKeyUsage', async t => {
  const intermediate = await pki.root.createIntermediate({ commonName: 'any-eku intermediate' })
  // Re-sign an intermediate with the same key and an EKU extension: craft a CA certificate by hand.
  const rootKey = await caKey(pki.root)
  const intermediateCert = new x509.X509Certificate(intermediate.certificate)
  const rebuilt = await x509.X509CertificateGenerator.create({
    serialNumber: '02' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
    subject: intermediateCert.subject,
    issuer: new x509.X509Certificate(pki.root.certificate).subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: await intermediateCert.publicKey.export(EC, ['verify']),
    signingKey: rootKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.ExtendedKeyUsageExtension(['2.5.29.37.0'])
    ]
  })
  const rebuiltPem = toPem(rebuilt.rawData, 'CERTIFICATE')
  const leaf = await craft(intermediate, 'under-any-eku-ca')
  const client = { chain: leaf.certificate + rebuiltPem, key: leaf.key }
  const openssl = await opensslVerdict(client)
  t.equal(openssl, 'INVALID_PURPOSE', 'OpenSSL refuses a chain whose CA restricts itself to anyExtendedKeyUsage')
  // This got through before the fix: the same anyExtendedKeyUsage difference, on a CA of the chain.
  t.equal(codeOf(leaf.der, new ChainVerifier({ ca: pki.ca, intermediates: rebuiltPem })), openssl, 'the verifier agrees with OpenSSL')
})

t.test('a leaf with an unknown critical extension', async t => {
  const unknownCritical = new x509.Extension('1.3.6.1.4.1.55555.1.1', true, new Uint8Array([0x05, 0x00]))
  const leaf = await craft(pki.intermediate, 'unknown-critical', { extensions: [unknownCritical] })
  const openssl = await opensslVerdict(leaf)
  t.comment(`OpenSSL: ${openssl}`)
  t.not(openssl, null, 'OpenSSL refuses a certificate with a critical extension it does not understand')
  // This got through before the fix: ChainVerifier ignores the critical flag of every extension; a forwarded certificate that OpenSSL
  // refuses (unhandled critical extension; Node reports UNSPECIFIED), e.g. a critical policy or constraint meant to
  // limit it, is believed.
  t.not(codeOf(leaf.der), null, 'the verifier refuses it too')
})

t.test('a leaf signed with SHA-1', async t => {
  const leaf = await craft(pki.intermediate, 'sha1-signed', { hash: 'SHA-1' })
  // The client lowers its own security level only so that it can present the certificate; the server judges at the default.
  const openssl = await opensslVerdict({ ...leaf, ciphers: 'DEFAULT@SECLEVEL=0' })
  t.comment(`OpenSSL: ${openssl}`)
  t.not(openssl, null, 'OpenSSL refuses a SHA-1 signature on a client certificate at the default security level')
  // This got through before the fix: ecdsa-with-SHA1 has no entry in SIGNATURE_DIGESTS, so the signature is checked by Node's
  // X509Certificate#verify, which applies no security level: a SHA-1-signed (collision-prone) forwarded
  // certificate verifies while OpenSSL refuses it in a handshake at the default security level (Node reports
  // UNABLE_TO_VERIFY_LEAF_SIGNATURE).
  t.not(codeOf(leaf.der), null, 'the verifier refuses it too')
})

t.test('a leaf with two basicConstraints extensions (CA:TRUE then CA:FALSE)', async t => {
  const leaf = await craft(pki.intermediate, 'two-basic-constraints', { first: [new x509.BasicConstraintsExtension(true, undefined, true)] })
  const openssl = await opensslVerdict(leaf)
  t.comment(`OpenSSL: ${openssl}`)
  t.not(openssl, null, 'OpenSSL refuses a certificate with a repeated extension')
  // This got through before the fix: the DER walker lets a later extension of the same OID overwrite an earlier one (CA:TRUE then CA:FALSE
  // reads as CA:FALSE), and ChainVerifier does not refuse repeated extensions as OpenSSL does: the certificate is
  // verified, and toPeerIdentity (which reads the same fields) makes an identity of a certificate that also says
  // CA:TRUE. OpenSSL refuses the repeated extension in a handshake (Node reports UNSPECIFIED).
  t.not(codeOf(leaf.der), null, 'the verifier refuses it too')
  t.throws(() => toPeerIdentity(leaf.der), 'and it is no peer identity')
})

t.test('correctly refused: CA limits that OpenSSL enforces', async t => {
  // An intermediate with CA:FALSE, and one without keyCertSign, each issuing a leaf.
  const rootKey = await caKey(pki.root)
  const rootSubject = new x509.X509Certificate(pki.root.certificate).subject
  const cases: Array<[string, x509.Extension[]]> = [
    ['an intermediate with CA:FALSE', [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)]],
    ['an intermediate without keyCertSign', [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true)]],
    ['an intermediate with serverAuth only', [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true), new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.1'])]]
  ]
  for (const [what, extensions] of cases) {
    const shell = await pki.root.createIntermediate({ commonName: what })
    const shellCert = new x509.X509Certificate(shell.certificate)
    const rebuilt = await x509.X509CertificateGenerator.create({
      serialNumber: '03' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
      subject: shellCert.subject,
      issuer: rootSubject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      publicKey: await shellCert.publicKey.export(EC, ['verify']),
      signingKey: rootKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions
    })
    const rebuiltPem = toPem(rebuilt.rawData, 'CERTIFICATE')
    const leaf = await craft(shell, 'below-' + what.replaceAll(' ', '-').replaceAll(':', ''))
    const openssl = await opensslVerdict({ chain: leaf.certificate + rebuiltPem, key: leaf.key })
    t.not(openssl, null, `${what}: OpenSSL refuses`)
    t.not(codeOf(leaf.der, new ChainVerifier({ ca: pki.ca, intermediates: rebuiltPem })), null, `${what}: the verifier refuses too`)
  }
})

t.test('correctly refused: a CRL signed by another key under the issuer\'s name vouches for nothing', async t => {
  const impostor = await x509.X509CrlGenerator.create({
    issuer: new x509.X509Certificate(pki.intermediate.certificate).subject,
    thisUpdate: new Date(Date.now() - 60_000),
    nextUpdate: new Date(Date.now() + 86_400_000),
    signingKey: await caKey(pki.otherCaAuthority),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    entries: []
  })
  const impostorPem = toPem(impostor.rawData, 'X509 CRL')
  const rootCrl = pki.crl[1] as string
  // The revoked certificate with only the impostor's (empty) CRL for its issuer: not "not revoked".
  const v = new ChainVerifier({ ca: pki.ca, intermediates: pki.intermediate.certificate, crl: [impostorPem, rootCrl] })
  t.equal(codeOf(readPemBlocks(pki.revoked.certificate)[0]!.der, v), 'UNABLE_TO_GET_CRL')
  t.not(await opensslVerdict(pki.revoked, { ca: pki.ca, crl: [impostorPem, rootCrl] }), null, 'OpenSSL refuses too')
  // Beside the genuine CRL, the impostor's does not hide the revocation.
  const both = new ChainVerifier({ ca: pki.ca, intermediates: pki.intermediate.certificate, crl: [impostorPem, ...pki.crl] })
  t.equal(codeOf(readPemBlocks(pki.revoked.certificate)[0]!.der, both), 'CERT_REVOKED')
})
