// Whether a certificate (or a CRL) can be by a given issuer, as OpenSSL decides it before it checks any signature
// (x509_vfy.c check_issued, crl_akid_check): names compared as X509_NAME_cmp compares them, then the authority key
// identifier against the issuer's subject key identifier, serial number and issuer name (X509_check_akid).
import { canonicalName, type AuthorityKeyIdentifier, type CertificateFields } from './der.js'

/** A certificate of a chain, read once. */
export interface ChainEntry {
  readonly der: Uint8Array
  readonly fields: CertificateFields
  /** Subject and issuer names in canonical form (`canonicalName`), to compare as OpenSSL does. */
  readonly subjectName: string
  readonly issuerName: string
}

/**
 * Why the authority key identifier `akid` (found in `akidDer`) does not fit `issuer`, as OpenSSL's error names it,
 * or `null` when it fits (or is absent). Each part is compared only when both sides have it.
 */
export function akidMismatch (akid: AuthorityKeyIdentifier | null, akidDer: Uint8Array, issuer: ChainEntry): 'AKID_SKID_MISMATCH' | 'AKID_ISSUER_SERIAL_MISMATCH' | null {
  if (akid === null) return null
  const ski = issuer.fields.subjectKeyIdentifier
  if (akid.keyIdentifier !== null && ski !== null && akid.keyIdentifier !== ski) return 'AKID_SKID_MISMATCH'
  if (akid.serialNumber !== null && akid.serialNumber !== issuer.fields.serialNumber) return 'AKID_ISSUER_SERIAL_MISMATCH'
  if (akid.issuer !== null && canonicalName(akidDer, akid.issuer) !== issuer.issuerName) return 'AKID_ISSUER_SERIAL_MISMATCH'
  return null
}

const KEY_TYPES: Record<string, string> = {
  '1.2.840.113549.1.1.1': 'rsa',
  '1.2.840.10045.2.1': 'ec',
  '1.3.101.112': 'ed25519',
  '1.3.101.113': 'ed448'
}

/** The key type of a certificate's public key, as `KeyObject#asymmetricKeyType` names it; `'other'` for the rest. */
export function keyTypeOf (fields: CertificateFields): string {
  return KEY_TYPES[fields.keyAlgorithm] ?? 'other'
}
