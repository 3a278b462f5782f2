import { brandErrorClass } from 'mtls-core/internal'

export type MtlsClientErrorCode =
  | 'ERR_MTLS_CLIENT_INVALID_OPTION'
  | 'ERR_MTLS_CLIENT_JWT_SVID_UNAVAILABLE'
  | 'ERR_MTLS_SERVER_UNAUTHORIZED'
  | 'ERR_MTLS_SERVER_CERT_UNTRUSTED'
  | 'ERR_MTLS_SERVER_CERT_EXPIRED'
  | 'ERR_MTLS_SERVER_HOSTNAME_MISMATCH'
  | 'ERR_MTLS_CLIENT_CERT_REJECTED'
  | 'ERR_MTLS_POST_QUANTUM_UNSUPPORTED'
  | 'ERR_MTLS_SERVER_NOT_POST_QUANTUM'
  | 'ERR_MTLS_SERVER_CERT_REVOKED'
  | 'ERR_MTLS_OCSP_INVALID'
  | 'ERR_MTLS_OCSP_STAPLE_MISSING'

/** Every error undici-mtls raises: a stable `code` and a message with what was expected and what was found. */
export class MtlsClientError extends Error {
  static readonly kind: string = 'MtlsClientError'
  readonly code: MtlsClientErrorCode

  constructor (code: MtlsClientErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = (new.target as typeof MtlsClientError).kind
    this.code = code
  }
}

// Survives two copies of the package, as undici's own errors do (mtls-core's brand, under this package's key).
brandErrorClass(MtlsClientError, Symbol.for('undici-mtls.error-kinds'))

/** The server's certificate verified, but it is not the server this client is allowed to talk to. */
export class ServerUnauthorizedError extends MtlsClientError {
  static override readonly kind: string = 'ServerUnauthorizedError'
  readonly expected: string
  readonly actual: string

  constructor (expected: string, actual: string, reason?: string) {
    super('ERR_MTLS_SERVER_UNAUTHORIZED', `server not authorized: expected ${expected}, got ${JSON.stringify(actual)}${reason === undefined ? '' : ` (${reason})`}`)
    this.expected = expected
    this.actual = actual
  }
}
