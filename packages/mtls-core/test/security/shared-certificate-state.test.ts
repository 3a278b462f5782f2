// Attacks on what mtls-core remembers about certificates so that a connection costs little: certificate fields
// shared by content, the CAs above a certificate kept per certificate and trust. Each test here failed before its fix.
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { webcrypto } from 'node:crypto'
import * as tls from 'node:tls'
import t from 'tap'
import { createRootCa, createTestPki, type CertificateAuthority } from 'mtls-pki'
import { x509 } from 'mtls-pki/x509'
import { ChainVerifier, toPeerIdentity } from '../../src/index.js'
import { Trust, presentedCertificates, readCertificateFields, readPemBlocks, toPem } from '../../src/internal.js'

const pki = await createTestPki()
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const
const derOf = (pem: string): Buffer => readPemBlocks(pem)[0]!.der

// A client leaf signed by `ca` and valid until `notAfter`, which the CA API would not issue past its own expiry.
async function leafOutliving (ca: CertificateAuthority, notAfter: Date): Promise<{ chain: string, key: string, der: Buffer }> {
  const subtle = webcrypto.subtle
  const keys = await subtle.generateKey(EC, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '01' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
    subject: 'CN=rollover-client',
    issuer: new x509.X509Certificate(ca.certificate).subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter,
    publicKey: keys.publicKey,
    signingKey: await subtle.importKey('pkcs8', derOf(ca.key), EC, false, ['sign']),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.2']),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://example.org/rollover-client' }])
    ]
  })
  const certificate = toPem(cert.rawData, 'CERTIFICATE')
  return { chain: certificate + ca.certificate, key: toPem(await subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY'), der: Buffer.from(cert.rawData) }
}

// The server side of a real mTLS connection (held open until the test ends).
async function serverSocket (t: { teardown: (fn: () => void) => void }, serverOptions: tls.TlsOptions, client: { chain: string, key: string, ca: string }): Promise<tls.TLSSocket> {
  const server = tls.createServer({ cert: pki.server.chain, key: pki.server.key, requestCert: true, minVersion: 'TLSv1.3', ...serverOptions })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'secureConnection')
  const socket = tls.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', servername: 'localhost', ca: client.ca, cert: client.chain, key: client.key })
  socket.on('error', () => {})
  const [serverSide] = await accepted as [tls.TLSSocket]
  t.teardown(() => { socket.destroy(); serverSide.destroy(); server.close() })
  return serverSide
}

t.test('a Date handed out with an identity cannot move the expiry every later connection is judged by', async t => {
  const der = derOf(pki.orderService.certificate)
  const notAfter = readCertificateFields(der).notAfter.getTime()
  const identity = toPeerIdentity(Buffer.from(der))
  identity.notAfter.setFullYear(3000) // a handler working out a reminder date in place
  t.equal(readCertificateFields(Buffer.from(der)).notAfter.getTime(), notAfter, 'the shared fields keep the certificate\'s expiry')
  t.equal(toPeerIdentity(Buffer.from(der)).notAfter.getTime(), notAfter, 'and the next identity shows it')
})

t.test('a buffer written over in place is read again: a revoked certificate does not pass as the one it replaced', async t => {
  const root = await createRootCa()
  const intermediate = await root.createIntermediate()
  // Two certificates of one length, so one can be copied over the other (ECDSA signatures vary by a byte or two).
  let good, bad
  do {
    ;[good, bad] = await Promise.all([intermediate.issue({ usage: 'client', spiffeId: 'spiffe://example.org/one' }), intermediate.issue({ usage: 'client', spiffeId: 'spiffe://example.org/two' })])
  } while (derOf(good.certificate).length !== derOf(bad.certificate).length)
  intermediate.revoke(bad)
  const verifier = new ChainVerifier({ ca: root.certificate, crl: await intermediate.createCrls(), intermediates: [intermediate.certificate] })
  const buffer = Buffer.from(derOf(good.certificate))
  t.equal(verifier.verify(buffer, { purpose: 'client' }), verifier.freshUntil, 'the good one verifies, until the CRLs are due (a week, before any certificate of the chain ends)')
  buffer.set(derOf(bad.certificate))
  t.throws(() => verifier.verify(buffer, { purpose: 'client' }), { code: 'CERT_REVOKED' })
})

t.test('CAs renewed under one name with new keys: a chain lasts as long as the CA that signed it', async t => {
  const root = await createRootCa({ commonName: 'rollover root' })
  const soon = new Date(Date.now() + 3_600_000)
  const old = await root.createIntermediate({ commonName: 'rollover intermediate', notAfter: soon })
  const renewed = await root.createIntermediate({ commonName: 'rollover intermediate', days: 365 })
  const notYet = await root.createIntermediate({ commonName: 'rollover intermediate', notBefore: new Date(Date.now() + 86_400_000), days: 730 })
  const client = await leafOutliving(old, new Date(Date.now() + 30 * 86_400_000))
  const trust = new Trust({ ca: root.certificate, intermediates: [renewed.certificate, notYet.certificate, old.certificate] })
  const oldExpiry = new x509.X509Certificate(old.certificate).notAfter.getTime()
  t.equal(trust.chainFromTrust(client.der)?.until, oldExpiry, 'the old intermediate signed it, not the renewed one, nor the one not valid yet')

  // In a real handshake the client sends the old intermediate; the server's trust knows all three.
  const socket = await serverSocket(t, { ca: root.certificate }, { ...client, ca: pki.ca })
  t.ok(socket.authorized, 'OpenSSL accepts the chain')
  // A connection kept open, or resumed, after the old intermediate expires must end when it does.
  t.equal(trust.presentedChain(presentedCertificates(socket))?.until, oldExpiry, 'what the peer sent lasts as long')
})
