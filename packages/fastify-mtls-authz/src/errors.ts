import createError from '@fastify/error'

/** Every error fastify-mtls-authz raises, by code (see the README's "Error codes"). */
export const codes = {
  FST_MTLS_AUTHZ_PEER_REQUIRED: createError('FST_MTLS_AUTHZ_PEER_REQUIRED', 'A verified client certificate is required (%s)', 401),
  FST_MTLS_AUTHZ_FORBIDDEN: createError('FST_MTLS_AUTHZ_FORBIDDEN', '%s may not %s %s', 403),
  FST_MTLS_AUTHZ_INVALID_POLICY: createError('FST_MTLS_AUTHZ_INVALID_POLICY', 'fastify-mtls-authz: invalid policy: %s', 500, TypeError),
  FST_MTLS_AUTHZ_INVALID_OPTION: createError('FST_MTLS_AUTHZ_INVALID_OPTION', 'fastify-mtls-authz: %s', 500, TypeError)
}
