import createError from '@fastify/error'

/** Every error fastify-mtls-authz raises, by code (see the README's "Error codes"). */
export const codes = {
  // Denials are decisions, not faults: no stack (it would only point into this plugin, in every log that prints it).
  FST_MTLS_AUTHZ_PEER_REQUIRED: createError('FST_MTLS_AUTHZ_PEER_REQUIRED', 'A verified client certificate is required (%s)', 401, Error, false),
  FST_MTLS_AUTHZ_FORBIDDEN: createError('FST_MTLS_AUTHZ_FORBIDDEN', '%s may not %s %s', 403, Error, false),
  // RFC 8705 certificate-bound tokens: 401 with WWW-Authenticate: Bearer error="invalid_token" (RFC 6750 section 3).
  FST_MTLS_AUTHZ_TOKEN_REQUIRED: createError('FST_MTLS_AUTHZ_TOKEN_REQUIRED', 'A verified access token bound to the client certificate is required (%s)', 401, Error, false),
  FST_MTLS_AUTHZ_TOKEN_UNBOUND: createError('FST_MTLS_AUTHZ_TOKEN_UNBOUND', 'The access token is not bound to a client certificate (%s)', 401, Error, false),
  FST_MTLS_AUTHZ_TOKEN_MISMATCH: createError('FST_MTLS_AUTHZ_TOKEN_MISMATCH', 'The access token is bound to another certificate than the one %s presents', 401, Error, false),
  FST_MTLS_AUTHZ_INVALID_POLICY: createError('FST_MTLS_AUTHZ_INVALID_POLICY', 'fastify-mtls-authz: invalid policy: %s', 500, TypeError),
  FST_MTLS_AUTHZ_INVALID_OPTION: createError('FST_MTLS_AUTHZ_INVALID_OPTION', 'fastify-mtls-authz: %s', 500, TypeError)
}
