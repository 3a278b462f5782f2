/** Stable error codes of mtls-pki. */
export type PkiErrorCode =
  | 'ERR_MTLS_PKI_INVALID_OPTION'
  | 'ERR_MTLS_PKI_FILE_UNREADABLE'
  | 'ERR_MTLS_PKI_MALFORMED_INPUT'
  | 'ERR_MTLS_PKI_UNSUPPORTED_KEY'
  | 'ERR_MTLS_PKI_CA_EXISTS'
  | 'ERR_MTLS_PKI_FILE_UNWRITABLE'
  | 'ERR_MTLS_PKI_SYMLINK_REFUSED'
  | 'ERR_MTLS_PKI_NOT_A_FILE'
  | 'ERR_MTLS_PKI_OCSP_RESPONDER'

const kPkiError = Symbol.for('mtls-pki.error')

/** Every error mtls-pki throws on purpose: a stable `code` and a message that names what was wrong. */
export class PkiError extends Error {
  readonly code: PkiErrorCode
  readonly file: string | undefined

  constructor (code: PkiErrorCode, message: string, options: { file?: string, cause?: unknown } = {}) {
    super(message, { cause: options.cause })
    this.name = 'PkiError'
    this.code = code
    this.file = options.file
  }

  get [kPkiError] (): true { return true }

  // Survives two copies of the package in one process (undici does the same for its errors).
  static override [Symbol.hasInstance] (value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kPkiError] === true
  }
}
