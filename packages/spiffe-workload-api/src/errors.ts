import createError from '@fastify/error'
import { brandErrorClass } from 'mtls-core/internal'

export type WorkloadApiErrorCode =
  | 'ERR_MTLS_WORKLOAD_INVALID_OPTION'
  | 'ERR_MTLS_WORKLOAD_ENDPOINT_INVALID'
  | 'ERR_MTLS_WORKLOAD_TIMEOUT'
  | 'ERR_MTLS_WORKLOAD_DENIED'
  | 'ERR_MTLS_WORKLOAD_UNAVAILABLE'
  | 'ERR_MTLS_WORKLOAD_REFUSED'
  | 'ERR_MTLS_WORKLOAD_RPC_FAILED'
  | 'ERR_MTLS_WORKLOAD_INVALID_RESPONSE'
  | 'ERR_MTLS_WORKLOAD_SVID_NOT_FOUND'
  | 'ERR_MTLS_WORKLOAD_CLOSED'
  | 'ERR_MTLS_JWT_MALFORMED'
  | 'ERR_MTLS_JWT_ALGORITHM'
  | 'ERR_MTLS_JWT_KID_MISSING'
  | 'ERR_MTLS_JWT_KEY_NOT_FOUND'
  | 'ERR_MTLS_JWT_SUBJECT_INVALID'
  | 'ERR_MTLS_JWT_TRUST_DOMAIN_UNKNOWN'
  | 'ERR_MTLS_JWT_AUDIENCE'
  | 'ERR_MTLS_JWT_EXPIRED'
  | 'ERR_MTLS_JWT_SIGNATURE'
  | 'ERR_MTLS_BUNDLE_TOO_LARGE'
  | 'ERR_MTLS_BUNDLE_NOT_JSON'
  | 'ERR_MTLS_BUNDLE_MALFORMED'
  | 'ERR_MTLS_BUNDLE_X5C'
  | 'ERR_MTLS_BUNDLE_NOT_CA'
  | 'ERR_MTLS_BUNDLE_KID_MISSING'
  | 'ERR_MTLS_BUNDLE_KEY_TYPE'
  | 'ERR_MTLS_BUNDLE_DUPLICATE_KID'
  | 'ERR_MTLS_BUNDLE_SEQUENCE'
  | 'ERR_MTLS_BUNDLE_REFRESH_HINT'
  | 'ERR_MTLS_BUNDLE_SEQUENCE_REGRESSION'
  | 'ERR_MTLS_BUNDLE_FETCH_FAILED'
  | 'ERR_MTLS_BUNDLE_ENDPOINT_UNTRUSTED'
  | 'ERR_MTLS_BUNDLE_OWN_TRUST_DOMAIN'

/**
 * Every error spiffe-workload-api raises: a stable `code`, and the gRPC status code when the agent answered with one.
 * `instanceof` holds across two copies of the package (mtls-core's error brand).
 */
export class WorkloadApiError extends Error {
  static readonly kind: string = 'WorkloadApiError'
  readonly code: WorkloadApiErrorCode
  /** The gRPC status code of the failed call (`7` PermissionDenied, `14` Unavailable, …), else `null`. */
  readonly grpcCode: number | null

  constructor (code: WorkloadApiErrorCode, message: string, options: { cause?: unknown, grpcCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'WorkloadApiError'
    this.code = code
    this.grpcCode = options.grpcCode ?? null
  }
}

brandErrorClass(WorkloadApiError, Symbol.for('spiffe-workload-api.error-kinds'))

/** The bundle endpoint plugin's errors (`spiffe-workload-api/bundle-endpoint`), Fastify errors with a status. */
export const bundleEndpointErrors = {
  FST_MTLS_BUNDLE_ENDPOINT_INVALID_OPTION: createError<[string]>('FST_MTLS_BUNDLE_ENDPOINT_INVALID_OPTION', 'spiffe-workload-api/bundle-endpoint: %s', 500),
  FST_MTLS_BUNDLE_ENDPOINT_UNAVAILABLE: createError<[string]>('FST_MTLS_BUNDLE_ENDPOINT_UNAVAILABLE', 'no bundle to serve: %s', 503)
}
