import { brandErrorClass } from './error-kinds.js'

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
}

// `instanceof` checks a brand, not the prototype: an error from another copy of mtls-core is still a MaterialError.
brandErrorClass(MtlsCoreError, Symbol.for('mtls-core.error-kinds'))

export type SpiffeIdErrorCode =
  | 'ERR_MTLS_SPIFFE_ID_NOT_A_STRING'
  | 'ERR_MTLS_SPIFFE_ID_EMPTY'
  | 'ERR_MTLS_SPIFFE_ID_TOO_LONG'
  | 'ERR_MTLS_SPIFFE_ID_WRONG_SCHEME'
  | 'ERR_MTLS_SPIFFE_ID_MISSING_TRUST_DOMAIN'
  | 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN'
  | 'ERR_MTLS_SPIFFE_ID_BAD_PATH'

/** A string that is not a SPIFFE ID (or trust domain) by the SPIFFE-ID specification. */
export class SpiffeIdError extends MtlsCoreError<SpiffeIdErrorCode> {
  static override readonly kind: string = 'SpiffeIdError'
}

export type SvidErrorCode =
  | 'ERR_MTLS_SVID_URI_SAN_COUNT'
  | 'ERR_MTLS_SVID_INVALID_SPIFFE_ID'
  | 'ERR_MTLS_SVID_ROOT_PATH'
  | 'ERR_MTLS_SVID_KEY_USAGE_MISSING'
  | 'ERR_MTLS_SVID_NO_DIGITAL_SIGNATURE'
  | 'ERR_MTLS_SVID_CA_KEY_USAGE'

/** A certificate that claims a SPIFFE ID but breaks the X509-SVID rules. */
export class SvidError extends MtlsCoreError<SvidErrorCode> {
  static override readonly kind: string = 'SvidError'
}

export type CertificateErrorCode = 'ERR_MTLS_CERTIFICATE_MALFORMED' | 'ERR_MTLS_CERTIFICATE_IS_CA' | 'ERR_MTLS_CERTIFICATE_ID_CONFUSABLE' | 'ERR_MTLS_CERTIFICATE_ID_INVALID'

/**
 * A certificate that cannot be a peer's identity: DER this package cannot read (`ERR_MTLS_CERTIFICATE_MALFORMED`),
 * a CA certificate presented as a leaf (`ERR_MTLS_CERTIFICATE_IS_CA`), an `identify()` result that would pass
 * for a SPIFFE ID the certificate does not carry (`ERR_MTLS_CERTIFICATE_ID_CONFUSABLE`), or an `identify()` that
 * threw or returned no string (`ERR_MTLS_CERTIFICATE_ID_INVALID`).
 */
export class CertificateError extends MtlsCoreError<CertificateErrorCode> {
  static override readonly kind: string = 'CertificateError'
}

/**
 * OpenSSL's verdicts on a certificate chain, by the names Node gives them (`socket.authorizationError`, the
 * `code` of a failed `tls.connect()`); `UNSPECIFIED` is Node's name for any other.
 */
export type OpenSslVerifyCode =
  | 'UNSPECIFIED'
  | 'UNABLE_TO_GET_ISSUER_CERT'
  | 'UNABLE_TO_GET_CRL'
  | 'UNABLE_TO_DECRYPT_CERT_SIGNATURE'
  | 'UNABLE_TO_DECRYPT_CRL_SIGNATURE'
  | 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY'
  | 'CERT_SIGNATURE_FAILURE'
  | 'CRL_SIGNATURE_FAILURE'
  | 'CERT_NOT_YET_VALID'
  | 'CERT_HAS_EXPIRED'
  | 'CRL_NOT_YET_VALID'
  | 'CRL_HAS_EXPIRED'
  | 'ERROR_IN_CERT_NOT_BEFORE_FIELD'
  | 'ERROR_IN_CERT_NOT_AFTER_FIELD'
  | 'ERROR_IN_CRL_LAST_UPDATE_FIELD'
  | 'ERROR_IN_CRL_NEXT_UPDATE_FIELD'
  | 'OUT_OF_MEM'
  | 'DEPTH_ZERO_SELF_SIGNED_CERT'
  | 'SELF_SIGNED_CERT_IN_CHAIN'
  | 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'
  | 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'
  | 'CERT_CHAIN_TOO_LONG'
  | 'CERT_REVOKED'
  | 'INVALID_CA'
  | 'PATH_LENGTH_EXCEEDED'
  | 'INVALID_PURPOSE'
  | 'CERT_UNTRUSTED'
  | 'CERT_REJECTED'
  | 'HOSTNAME_MISMATCH'

export type VerificationErrorCode =
  | 'ERR_MTLS_CERTIFICATE_MALFORMED'
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
  | 'ERR_MTLS_NAME_CONSTRAINTS_UNSUPPORTED'
  | 'CA_MD_TOO_WEAK'
  | 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED'
  // OpenSSL's names (X509_V_ERR_*) for checks Node has no name of its own for (it reports them as UNSPECIFIED).
  | 'EE_KEY_TOO_SMALL'
  | 'CA_KEY_TOO_SMALL'
  | 'EC_KEY_EXPLICIT_PARAMS'
  | 'AKID_SKID_MISMATCH'
  | 'AKID_ISSUER_SERIAL_MISMATCH'
  | 'PROXY_CERTIFICATES_NOT_ALLOWED'
  | 'KEYUSAGE_NO_CRL_SIGN'
  | 'CRL_SIGNATURE_FAILURE'
  | 'UNHANDLED_CRITICAL_CRL_EXTENSION'
  | 'SIGNATURE_ALGORITHM_INCONSISTENCY'
  | 'CA_BCONS_NOT_CRITICAL'
  | 'CA_CERT_MISSING_KEY_USAGE'
  | 'PATHLEN_INVALID_FOR_NON_CA'
  | 'PATHLEN_WITHOUT_KU_KEY_CERT_SIGN'
  | 'KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA'
  | 'ISSUER_NAME_EMPTY'
  | 'SUBJECT_NAME_EMPTY'
  | 'EMPTY_SUBJECT_ALT_NAME'
  | 'EMPTY_SUBJECT_SAN_NOT_CRITICAL'
  | 'EXTENSIONS_REQUIRE_VERSION_3'
  | 'MISSING_AUTHORITY_KEY_IDENTIFIER'
  | 'MISSING_SUBJECT_KEY_IDENTIFIER'
  // The verifier's own refusals, where OpenSSL may accept (the allowlist is narrower than OpenSSL).
  | 'ERR_MTLS_KEY_UNSUPPORTED'
  | 'ERR_MTLS_SIGNATURE_ALGORITHM_UNSUPPORTED'
  | 'ERR_MTLS_EXTENSION_UNSUPPORTED'
  | 'ERR_MTLS_CHAIN_NOT_RECORDED'
  | 'KEYUSAGE_NO_CRL_SIGN'
  | 'CRL_SIGNATURE_FAILURE'
  | 'UNHANDLED_CRITICAL_CRL_EXTENSION'

/**
 * A certificate that does not verify against a ChainVerifier's trust. The codes are OpenSSL's names for the
 * same verdicts, as Node reports them for a handshake (`socket.authorizationError`).
 */
export class VerificationError extends MtlsCoreError<VerificationErrorCode> {
  static override readonly kind: string = 'VerificationError'
}

export type MatcherErrorCode = 'ERR_MTLS_MATCHER_INVALID_PATTERN'

/** An identity pattern that cannot be compiled. */
export class MatcherError extends MtlsCoreError<MatcherErrorCode> {
  static override readonly kind: string = 'MatcherError'
}

/** `OcspError`'s code (the class lives in ocsp.ts with the checks its `check` names). */
export type OcspErrorCode = 'ERR_MTLS_OCSP_INVALID'

/** `fetchOcspResponse` (mtls-core/internal) could not get an answer: not http:, a timeout, an HTTP error, too large. */
export type OcspFetchErrorCode = 'ERR_MTLS_OCSP_FETCH'

/** `fetchCrl` (mtls-core/ocsp) could not get a CRL: not http:, a timeout, an HTTP error, too large. */
export type CrlFetchErrorCode = 'ERR_MTLS_CRL_FETCH'

/** `CrlStatusError`'s code (the class lives in crl-status.ts with the checks its `check` names). */
export type CrlStatusErrorCode = 'ERR_MTLS_CRL_INVALID'

export type XfccErrorCode = 'ERR_MTLS_XFCC_EMPTY' | 'ERR_MTLS_XFCC_TOO_LONG' | 'ERR_MTLS_XFCC_SYNTAX' | 'ERR_MTLS_XFCC_DUPLICATE_KEY' | 'ERR_MTLS_XFCC_BAD_VALUE'

/** A malformed `x-forwarded-client-cert` header. */
export class XfccError extends MtlsCoreError<XfccErrorCode> {
  static override readonly kind: string = 'XfccError'
}

export type MaterialErrorCode =
  | 'ERR_MTLS_MATERIAL_OPTION_INVALID'
  | 'ERR_MTLS_MATERIAL_FILE_UNREADABLE'
  | 'ERR_MTLS_MATERIAL_FILE_TOO_LARGE'
  | 'ERR_MTLS_MATERIAL_NO_PEM'
  | 'ERR_MTLS_MATERIAL_CERT_MALFORMED'
  | 'ERR_MTLS_MATERIAL_CERT_IS_CA'
  | 'ERR_MTLS_MATERIAL_KEY_UNREADABLE'
  | 'ERR_MTLS_MATERIAL_KEY_MISMATCH'
  | 'ERR_MTLS_MATERIAL_NOT_YET_VALID'
  | 'ERR_MTLS_MATERIAL_EXPIRED'
  | 'ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN'
  | 'ERR_MTLS_MATERIAL_EKU_UNSUITABLE'
  | 'ERR_MTLS_MATERIAL_CA_EMPTY'
  | 'ERR_MTLS_MATERIAL_CRL_MALFORMED'
  | 'ERR_MTLS_MATERIAL_CRL_EXPIRED'
  | 'ERR_MTLS_MATERIAL_REFUSED_BY_TLS'

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
