import { webcrypto } from 'node:crypto'
import t from 'tap'
import { x509 } from 'mtls-pki/x509'
import { ChainVerifier } from '../src/index.js'
import { readCertificateFields } from '../src/internal.js'

// A root CA with name constraints, critical as RFC 5280 4.2.1.10 requires, and a leaf within them.
const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
const rootKeys = await webcrypto.subtle.generateKey(algorithm, false, ['sign', 'verify'])
const leafKeys = await webcrypto.subtle.generateKey(algorithm, false, ['sign', 'verify'])
const notBefore = new Date(Date.now() - 60_000)
const notAfter = new Date(Date.now() + 86_400_000)
// NameConstraints { permittedSubtrees [0] { GeneralSubtree { dNSName "example.org" } } }
const permitted = Uint8Array.from([0x30, 0x11, 0xa0, 0x0f, 0x30, 0x0d, 0x82, 0x0b, ...Buffer.from('example.org')])
const root = await x509.X509CertificateGenerator.createSelfSigned({
  name: 'CN=constrained root',
  keys: rootKeys,
  notBefore,
  notAfter,
  extensions: [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    new x509.Extension('2.5.29.30', true, permitted)
  ]
})
const leaf = await x509.X509CertificateGenerator.create({
  subject: 'CN=a.example.org',
  issuer: root.subject,
  publicKey: leafKeys.publicKey,
  signingKey: rootKeys.privateKey,
  notBefore,
  notAfter,
  extensions: [
    new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'a.example.org' }]),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.2'])
  ]
})
const verifier = new ChainVerifier({ ca: root.toString('pem') })
const verify = (): number => verifier.verify(new Uint8Array(leaf.rawData), { purpose: 'client' })

t.test('a chain under a CA with name constraints is refused: the verifier does not evaluate them', async t => {
  const fields = readCertificateFields(new Uint8Array(root.rawData))
  t.equal(fields.nameConstraints, true, 'the DER walker sees the constraints')
  t.throws(verify, { code: 'ERR_MTLS_NAME_CONSTRAINTS_UNSUPPORTED' }, 'refused')
})

// Found while checking the DER walker: a critical name constraints extension (as RFC 5280 requires) also counts as
// an unhandled critical extension, and the verifier checked that first: a conforming CA was refused as having "a
// critical extension OpenSSL does not handle", which is untrue (OpenSSL evaluates name constraints).
t.test('the refusal names the name constraints', async t => {
  t.throws(verify, { code: 'ERR_MTLS_NAME_CONSTRAINTS_UNSUPPORTED', message: /has name constraints/ })
})
