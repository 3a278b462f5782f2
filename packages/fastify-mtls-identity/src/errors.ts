import createError from '@fastify/error'

/** Every error fastify-mtls-identity raises, by code (see the README's "Error codes"). */
export const codes = {
  FST_MTLS_IDENTITY_INVALID_OPTION: createError('FST_MTLS_IDENTITY_INVALID_OPTION', 'fastify-mtls-identity: %s', 500, TypeError)
}

/**
 * Why `request.peerIdentity` is null, as `request.peerCertificateError` says it: OpenSSL's verification
 * result (`CERT_HAS_EXPIRED`, `UNABLE_TO_GET_ISSUER_CERT_LOCALLY`, ...), an X509-SVID rule (`SVID_*`), or one
 * of these.
 */
export const PEER_ERRORS = Object.freeze({
  NO_PEER_CERTIFICATE: 'NO_PEER_CERTIFICATE',
  NOT_TLS: 'NOT_TLS',
  CERTIFICATE_MALFORMED: 'CERTIFICATE_MALFORMED',
  FORWARDED_HEADER_MISSING: 'FORWARDED_HEADER_MISSING',
  FORWARDED_HEADER_REPEATED: 'FORWARDED_HEADER_REPEATED',
  FORWARDED_HEADER_TOO_LONG: 'FORWARDED_HEADER_TOO_LONG',
  FORWARDED_HEADER_MALFORMED: 'FORWARDED_HEADER_MALFORMED',
  FORWARDED_CERTIFICATE_MISSING: 'FORWARDED_CERTIFICATE_MISSING'
})
