import createError from '@fastify/error'

/** Every error fastify-mtls raises, by code (see the README's "Error codes"). */
export const codes = {
  FST_MTLS_INVALID_OPTION: createError('FST_MTLS_INVALID_OPTION', 'fastify-mtls: %s', 500, TypeError),
  FST_MTLS_NOT_TLS_SERVER: createError(
    'FST_MTLS_NOT_TLS_SERVER',
    'fastify-mtls: the Fastify server is not a TLS server; create it with Fastify({ https: (await loadServerTls(...)).httpsOptions })',
    500
  ),
  FST_MTLS_POST_QUANTUM_UNSUPPORTED: createError('FST_MTLS_POST_QUANTUM_UNSUPPORTED', 'fastify-mtls: %s', 500),
  FST_MTLS_OCSP_UNAVAILABLE: createError('FST_MTLS_OCSP_UNAVAILABLE', 'fastify-mtls: ocspStapling (failMode \'closed\'): no good OCSP response for the server certificate: %s', 500),
  FST_MTLS_RELOAD_FAILED: createError('FST_MTLS_RELOAD_FAILED', 'fastify-mtls: reload refused, the previous certificate stays in use: %s', 500)
}

/**
 * Why `revocation` refuses a client certificate (a connection's `refusal`, counted, not thrown), and why it could
 * not learn a status (`status().revocation.ocsp.lastError.code`, beside mtls-core's ERR_MTLS_OCSP_FETCH and _INVALID).
 */
export const revocationCodes = {
  unknown: 'ERR_MTLS_REVOCATION_UNKNOWN',
  url: 'ERR_MTLS_REVOCATION_URL',
  responderLimit: 'ERR_MTLS_REVOCATION_RESPONDER_LIMIT',
  noIssuer: 'ERR_MTLS_REVOCATION_NO_ISSUER'
} as const
