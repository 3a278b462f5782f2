import { webcrypto } from 'node:crypto'
import { x509 } from 'mtls-pki/x509'

/**
 * A CA certificate with the subject, key and key identifier of `as`, "issued" by `by` (its subject and key
 * identifier): signed by a throwaway key, so neither CA made it and no verifier takes it. Anyone can make one from
 * two public CA certificates; a peer sends it beside its chain to steer what a name-linked view of that chain shows.
 */
export async function decoyCertificate (as: string, by: string, validity: { notBefore?: Date, notAfter?: Date } = {}): Promise<string> {
  const subject = new x509.X509Certificate(as)
  const issuer = new x509.X509Certificate(by)
  const throwaway = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])
  const ski = subject.getExtension(x509.SubjectKeyIdentifierExtension)
  const issuerSki = issuer.getExtension(x509.SubjectKeyIdentifierExtension)
  const made = await x509.X509CertificateGenerator.create({
    serialNumber: '0badc0de',
    subject: subject.subjectName,
    issuer: issuer.subjectName,
    notBefore: validity.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: validity.notAfter ?? new Date(Date.now() + 86_400_000),
    publicKey: subject.publicKey,
    signingKey: throwaway.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ...(ski === null ? [] : [ski]),
      ...(issuerSki === null ? [] : [new x509.AuthorityKeyIdentifierExtension(issuerSki.keyId)])
    ]
  })
  return made.toString('pem') + '\n'
}
