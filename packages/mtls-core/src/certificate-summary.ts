import type { X509Certificate } from 'node:crypto'
import { formatName, readCertificateFields, type CertificateFields } from './der.js'
import { fingerprint256, thumbprintS256 } from './identity.js'

/** What a status page shows of a certificate. */
export interface CertificateSummary {
  readonly subject: string
  readonly issuer: string
  readonly commonName: string | null
  readonly uris: readonly string[]
  readonly dnsNames: readonly string[]
  readonly ips: readonly string[]
  readonly emails: readonly string[]
  readonly serialNumber: string
  readonly fingerprint256: string
  /** RFC 8705's `x5t#S256` thumbprint: SHA-256 of the DER, base64url without padding. */
  readonly thumbprintS256: string
  readonly notBefore: Date
  readonly notAfter: Date
  readonly isCa: boolean
}

// Each certificate's DER is walked once per load, however many checks and summaries look at it.
const fieldCache = new WeakMap<X509Certificate, CertificateFields>()

/** The fields of a certificate (mtls-core's DER reader), read once per certificate object. Throws for DER it cannot read. */
export function certificateFields (cert: X509Certificate): CertificateFields {
  let fields = fieldCache.get(cert)
  if (fields === undefined) fieldCache.set(cert, fields = readCertificateFields(cert.raw))
  return fields
}

/** Summarises a certificate for a status page. */
export function summarizeCertificate (cert: X509Certificate): CertificateSummary {
  const der = cert.raw
  const fields = certificateFields(cert)
  return Object.freeze({
    subject: formatName(der, fields.subject),
    issuer: formatName(der, fields.issuer),
    commonName: fields.commonName,
    uris: Object.freeze(fields.uris),
    dnsNames: Object.freeze(fields.dnsNames),
    ips: Object.freeze(fields.ips),
    emails: Object.freeze(fields.emails),
    serialNumber: fields.serialNumber,
    fingerprint256: fingerprint256(der),
    thumbprintS256: thumbprintS256(der),
    // Copies: the fields are shared (the verifier reads them), and a Date can be changed.
    notBefore: new Date(fields.notBefore.getTime()),
    notAfter: new Date(fields.notAfter.getTime()),
    isCa: fields.isCa
  })
}
