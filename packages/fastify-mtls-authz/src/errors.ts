import createError from '@fastify/error'

/** Every error fastify-mtls-authz raises, by code (see the README's "Error codes"). */
export const codes = {
  // Denials are decisions, not faults: no stack (it would only point into this plugin, in every log that prints it).
  FST_MTLS_AUTHZ_PEER_REQUIRED: createError('FST_MTLS_AUTHZ_PEER_REQUIRED', 'A verified client certificate is required (%s)', 401, Error, false),
  FST_MTLS_AUTHZ_FORBIDDEN: createError('FST_MTLS_AUTHZ_FORBIDDEN', '%s may not %s %s', 403, Error, false),
  FST_MTLS_AUTHZ_INVALID_POLICY: createError('FST_MTLS_AUTHZ_INVALID_POLICY', 'fastify-mtls-authz: invalid policy: %s', 500, TypeError),
  FST_MTLS_AUTHZ_INVALID_OPTION: createError('FST_MTLS_AUTHZ_INVALID_OPTION', 'fastify-mtls-authz: %s', 500, TypeError)
}
