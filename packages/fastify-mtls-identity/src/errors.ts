import createError from '@fastify/error'
import type { JwtValidatorError } from './jwt-svid.js'
import { CertificateError, SvidError, VerificationError, type CertificateErrorCode, type OpenSslVerifyCode, type SvidErrorCode, type VerificationErrorCode } from 'mtls-core'

/** Every error fastify-mtls-identity raises, by code (see the README's "Error codes"). */
export const codes = {
  FST_MTLS_IDENTITY_INVALID_OPTION: createError('FST_MTLS_IDENTITY_INVALID_OPTION', 'fastify-mtls-identity: %s', 500, TypeError)
}

/**
 * Why `request.peerIdentity` is null, as `request.peerCertificateError` says it: OpenSSL's verification
 * result (`CERT_HAS_EXPIRED`, `UNABLE_TO_GET_ISSUER_CERT_LOCALLY`, ...), mtls-core's verdict on the certificate
 * (`ERR_MTLS_SVID_*`, `ERR_MTLS_CERTIFICATE_*`), or one of these.
 */
export const PEER_ERRORS = Object.freeze({
  ERR_MTLS_NO_PEER_CERTIFICATE: 'ERR_MTLS_NO_PEER_CERTIFICATE',
  ERR_MTLS_NOT_TLS: 'ERR_MTLS_NOT_TLS',
  ERR_MTLS_CERTIFICATE_MALFORMED: 'ERR_MTLS_CERTIFICATE_MALFORMED',
  ERR_MTLS_CERTIFICATE_NOT_VERIFIED: 'ERR_MTLS_CERTIFICATE_NOT_VERIFIED',
  ERR_MTLS_FORWARDED_HEADER_MISSING: 'ERR_MTLS_FORWARDED_HEADER_MISSING',
  ERR_MTLS_FORWARDED_HEADER_REPEATED: 'ERR_MTLS_FORWARDED_HEADER_REPEATED',
  ERR_MTLS_FORWARDED_HEADER_TOO_LONG: 'ERR_MTLS_FORWARDED_HEADER_TOO_LONG',
  ERR_MTLS_FORWARDED_HEADER_MALFORMED: 'ERR_MTLS_FORWARDED_HEADER_MALFORMED',
  ERR_MTLS_FORWARDED_CERTIFICATE_MISSING: 'ERR_MTLS_FORWARDED_CERTIFICATE_MISSING',
  ERR_MTLS_FORWARDED_VERDICT_MISSING: 'ERR_MTLS_FORWARDED_VERDICT_MISSING',
  ERR_MTLS_FORWARDED_VERDICT_REPEATED: 'ERR_MTLS_FORWARDED_VERDICT_REPEATED',
  ERR_MTLS_FORWARDED_VERDICT_FAILED: 'ERR_MTLS_FORWARDED_VERDICT_FAILED',
  ERR_MTLS_JWT_SVID_MISSING: 'ERR_MTLS_JWT_SVID_MISSING',
  ERR_MTLS_JWT_SVID_MALFORMED: 'ERR_MTLS_JWT_SVID_MALFORMED',
  ERR_MTLS_JWT_SVID_REPEATED: 'ERR_MTLS_JWT_SVID_REPEATED',
  ERR_MTLS_JWT_SVID_TOO_LONG: 'ERR_MTLS_JWT_SVID_TOO_LONG',
  ERR_MTLS_JWT_SVID_MISMATCH: 'ERR_MTLS_JWT_SVID_MISMATCH',
  ERR_MTLS_JWT_SVID_UNVERIFIED: 'ERR_MTLS_JWT_SVID_UNVERIFIED',
  ERR_MTLS_JWT_SVID_PENDING: 'ERR_MTLS_JWT_SVID_PENDING'
})

/** Every value of `request.peerCertificateError`. */
export type PeerCertificateError =
  | (typeof PEER_ERRORS)[keyof typeof PEER_ERRORS]
  | OpenSslVerifyCode
  | VerificationErrorCode
  | CertificateErrorCode
  | SvidErrorCode
  | JwtValidatorError
  // fastify-mtls's `revocation` could not learn the certificate's status (failMode 'closed'); CERT_REVOKED is OpenSSL's name.
  | 'ERR_MTLS_REVOCATION_UNKNOWN'

/** The verdict a certificate check threw, or `fallback` for anything else: no other code reaches `peerCertificateError`. */
export function verdictOf (err: unknown, fallback: PeerCertificateError): PeerCertificateError {
  return err instanceof CertificateError || err instanceof SvidError || err instanceof VerificationError ? err.code : fallback
}
