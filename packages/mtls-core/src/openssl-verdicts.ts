import type { OpenSslVerifyCode } from './errors.js'

/**
 * What an OpenSSL verdict on a peer's certificate means, whichever side gave it: fastify-mtls counts refused
 * clients by it, undici-mtls words a refused server's error by it.
 * - `unknown_ca`: no trusted CA issued it (or a chain to one was not sent)
 * - `no_crl`: no CRL of its issuer is loaded; with CRLs loaded OpenSSL looks for one before anything else,
 *   so a certificate from an unknown issuer gets this verdict too
 * - `expired`, `not_yet_valid`: outside its validity
 * - `revoked`: listed in its issuer's CRL
 * - `unsuitable_purpose`: its (extended) key usage does not allow this side of TLS
 * - `ca_as_leaf`: a CA certificate where a leaf belongs, or in a chain, a certificate that may not sign others
 * - `hostname_mismatch`: it does not name the host (a client's check)
 */
export type VerdictCategory = 'unknown_ca' | 'no_crl' | 'expired' | 'not_yet_valid' | 'revoked' | 'unsuitable_purpose' | 'ca_as_leaf' | 'hostname_mismatch'

// The one table: OpenSSL's verdicts by the names Node gives them (`socket.authorizationError`, a failed
// `tls.connect()`'s `code`), and Node's own name for a host name check that failed.
const CATEGORIES: Readonly<Partial<Record<OpenSslVerifyCode | 'ERR_TLS_CERT_ALTNAME_INVALID' | 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', VerdictCategory>>> = Object.freeze({
  UNABLE_TO_GET_ISSUER_CERT: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown_ca',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown_ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown_ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown_ca',
  UNABLE_TO_GET_CRL: 'no_crl',
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not_yet_valid',
  CERT_REVOKED: 'revoked',
  INVALID_PURPOSE: 'unsuitable_purpose',
  INVALID_CA: 'ca_as_leaf',
  ERR_TLS_CERT_ALTNAME_INVALID: 'hostname_mismatch',
  // mtls-core's own: the chain ends at a CA, but not one of the peer's own SPIFFE trust domain.
  ERR_MTLS_TRUST_DOMAIN_UNTRUSTED: 'unknown_ca'
})

/** The category of a verdict (`CERT_REVOKED`, ...: Node's, or mtls-core's ChainVerifier's), or `null` for any other. */
export function verdictCategory (verdict: string): VerdictCategory | null {
  return Object.hasOwn(CATEGORIES, verdict) ? CATEGORIES[verdict as OpenSslVerifyCode] ?? null : null
}
