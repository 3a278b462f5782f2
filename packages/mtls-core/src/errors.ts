const kKinds = Symbol.for('mtls-core.error-kinds')

/**
 * Base of every error mtls-core throws on purpose: a stable `code` and a message that says what was wrong
 * and where. `instanceof` works across two copies of the package (it checks a brand, not the prototype).
 */
export class MtlsCoreError<Code extends string = string> extends Error {
  static readonly kind: string = 'MtlsCoreError'
  readonly code: Code

  constructor (code: Code, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.name = (new.target as typeof MtlsCoreError).kind
  }

  /** The kinds of this error and of its base classes, for `instanceof` across package copies. */
  get [kKinds] (): string[] {
    const kinds: string[] = []
    for (let ctor = this.constructor as typeof MtlsCoreError | undefined; ctor?.kind !== undefined; ctor = Object.getPrototypeOf(ctor)) {
      if (!kinds.includes(ctor.kind)) kinds.push(ctor.kind)
    }
    return kinds
  }

  static override [Symbol.hasInstance] (value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false
    const kinds = (value as Record<symbol, unknown>)[kKinds]
    return Array.isArray(kinds) && kinds.includes(this.kind)
  }
}

export type SpiffeIdErrorCode =
  | 'SPIFFE_ID_NOT_A_STRING'
  | 'SPIFFE_ID_EMPTY'
  | 'SPIFFE_ID_TOO_LONG'
  | 'SPIFFE_ID_WRONG_SCHEME'
  | 'SPIFFE_ID_MISSING_TRUST_DOMAIN'
  | 'SPIFFE_ID_BAD_TRUST_DOMAIN'
  | 'SPIFFE_ID_BAD_PATH'

/** A string that is not a SPIFFE ID (or trust domain) by the SPIFFE-ID specification. */
export class SpiffeIdError extends MtlsCoreError<SpiffeIdErrorCode> {
  static override readonly kind: string = 'SpiffeIdError'
}

export type SvidErrorCode =
  | 'SVID_URI_SAN_COUNT'
  | 'SVID_INVALID_SPIFFE_ID'
  | 'SVID_ROOT_PATH'
  | 'SVID_KEY_USAGE_MISSING'
  | 'SVID_NO_DIGITAL_SIGNATURE'
  | 'SVID_CA_KEY_USAGE'

/** A certificate that claims a SPIFFE ID but breaks the X509-SVID rules. */
export class SvidError extends MtlsCoreError<SvidErrorCode> {
  static override readonly kind: string = 'SvidError'
}

export type CertificateErrorCode = 'CERTIFICATE_MALFORMED' | 'CERTIFICATE_IS_CA' | 'CERTIFICATE_ID_CONFUSABLE' | 'CERTIFICATE_ID_INVALID'

/**
 * A certificate that cannot be a peer's identity: DER this package cannot read (`CERTIFICATE_MALFORMED`),
 * a CA certificate presented as a leaf (`CERTIFICATE_IS_CA`), an `identify()` result that would pass
 * for a SPIFFE ID the certificate does not carry (`CERTIFICATE_ID_CONFUSABLE`), or an `identify()` that
 * threw or returned no string (`CERTIFICATE_ID_INVALID`).
 */
export class CertificateError extends MtlsCoreError<CertificateErrorCode> {
  static override readonly kind: string = 'CertificateError'
}

export type VerificationErrorCode =
  | 'CERTIFICATE_MALFORMED'
  | 'CERT_NOT_YET_VALID'
  | 'CERT_HAS_EXPIRED'
  | 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'
  | 'DEPTH_ZERO_SELF_SIGNED_CERT'
  | 'SELF_SIGNED_CERT_IN_CHAIN'
  | 'CERT_SIGNATURE_FAILURE'
  | 'INVALID_CA'
  | 'PATH_LENGTH_EXCEEDED'
  | 'CERT_CHAIN_TOO_LONG'
  | 'INVALID_PURPOSE'
  | 'UNABLE_TO_GET_CRL'
  | 'CRL_NOT_YET_VALID'
  | 'CRL_HAS_EXPIRED'
  | 'CERT_REVOKED'
  | 'UNHANDLED_CRITICAL_EXTENSION'
  | 'NAME_CONSTRAINTS_UNSUPPORTED'
  | 'CA_MD_TOO_WEAK'

/**
 * A certificate that does not verify against a ChainVerifier's trust. The codes are OpenSSL's names for the
 * same verdicts, as Node reports them for a handshake (`socket.authorizationError`).
 */
export class VerificationError extends MtlsCoreError<VerificationErrorCode> {
  static override readonly kind: string = 'VerificationError'
}

export type MatcherErrorCode = 'MATCHER_INVALID_PATTERN'

/** An identity pattern that cannot be compiled. */
export class MatcherError extends MtlsCoreError<MatcherErrorCode> {
  static override readonly kind: string = 'MatcherError'
}

export type XfccErrorCode = 'XFCC_EMPTY' | 'XFCC_TOO_LONG' | 'XFCC_SYNTAX' | 'XFCC_DUPLICATE_KEY' | 'XFCC_BAD_VALUE'

/** A malformed `x-forwarded-client-cert` header. */
export class XfccError extends MtlsCoreError<XfccErrorCode> {
  static override readonly kind: string = 'XfccError'
}

export type MaterialErrorCode =
  | 'MATERIAL_OPTION_INVALID'
  | 'MATERIAL_FILE_UNREADABLE'
  | 'MATERIAL_FILE_TOO_LARGE'
  | 'MATERIAL_NO_PEM'
  | 'MATERIAL_CERT_MALFORMED'
  | 'MATERIAL_KEY_UNREADABLE'
  | 'MATERIAL_KEY_MISMATCH'
  | 'MATERIAL_NOT_YET_VALID'
  | 'MATERIAL_EXPIRED'
  | 'MATERIAL_UNTRUSTED_CHAIN'
  | 'MATERIAL_EKU_UNSUITABLE'
  | 'MATERIAL_CA_EMPTY'
  | 'MATERIAL_CRL_MALFORMED'
  | 'MATERIAL_CRL_EXPIRED'
  | 'MATERIAL_REFUSED_BY_TLS'

/** Certificate material that cannot be used; `file` names the file at fault when there is one. */
export class MaterialError extends MtlsCoreError<MaterialErrorCode> {
  static override readonly kind: string = 'MaterialError'
  readonly file: string | undefined

  constructor (code: MaterialErrorCode, message: string, options: { file?: string | undefined, cause?: unknown } = {}) {
    super(code, message, options)
    this.file = options.file
  }
}

/** What was thrown, as text, whatever it is: an Error, a string, an object whose getters throw, one without a prototype. */
export function describeThrown (thrown: unknown): string {
  try {
    const message = (thrown as { message?: unknown } | null | undefined)?.message
    return typeof message === 'string' ? message : typeof thrown === 'string' ? thrown : Object.prototype.toString.call(thrown)
  } catch {
    return 'a value that cannot be shown'
  }
}

/** The string `code` of a thrown value, else `fallback`: for turning any failure into a stable reason. */
export function codeOf (thrown: unknown, fallback: string): string {
  try {
    const code = (thrown as { code?: unknown } | null | undefined)?.code
    return typeof code === 'string' ? code : fallback
  } catch {
    return fallback
  }
}
