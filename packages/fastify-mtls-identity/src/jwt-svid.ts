import type { IncomingMessage } from 'node:http'
import type { Http2ServerRequest } from 'node:http2'
import { parseSpiffeId, type PeerIdentity, type PeerIdentityJson, type SpiffeId } from 'mtls-core'
import { unknownOption } from 'mtls-core/internal'
import { codes, PEER_ERRORS, type PeerCertificateError } from './errors.js'
import { headerValues } from './forwarded.js'

/** What a JWT-SVID validator returns for a token it accepts: spiffe-workload-api's `ValidatedJwtSvid` is one. */
export interface ValidatedJwtSvidLike {
  /** The token's `sub`: the caller's SPIFFE ID. */
  readonly spiffeId: string
  /** When the token expires. */
  readonly expiresAt: Date
  /** The token's claims (`iat` and `nbf`, when present, give `peerIdentity.notBefore`). */
  readonly claims?: Readonly<Record<string, unknown>>
}

/**
 * Validates a JWT-SVID for an audience: the validated claims, or a throw (with an `ERR_MTLS_JWT_*` `code` for a
 * refusal). spiffe-workload-api's `JwtSource` is one; taken by its shape, so this package never loads it.
 */
export interface JwtSvidValidator {
  validateJWTSVID: (token: string, audience: string) => Promise<ValidatedJwtSvidLike> | ValidatedJwtSvidLike
}

export interface JwtSvidOptions {
  /** Validates each token: a `JwtSource` from spiffe-workload-api (`createJWTSource()`), or any object of its shape. */
  source: JwtSvidValidator
  /** The audience this service is: a token's `aud` must contain it (for example this service's SPIFFE ID). */
  audience: string
  /**
   * The header that carries the token, lower case. Default: `'authorization'`, as `Bearer <token>`; any other
   * header carries the token alone.
   */
  header?: string
}

// Literals here, not in errors.ts: they are spiffe-workload-api's codes, passed on (check-error-codes reads errors.ts).
/** The refusals of the JWT-SVID validator (spiffe-workload-api's), passed on as `peerCertificateError`. */
export const JWT_VALIDATOR_ERRORS = Object.freeze([
  'ERR_MTLS_JWT_MALFORMED',
  'ERR_MTLS_JWT_ALGORITHM',
  'ERR_MTLS_JWT_KID_MISSING',
  'ERR_MTLS_JWT_KEY_NOT_FOUND',
  'ERR_MTLS_JWT_SUBJECT_INVALID',
  'ERR_MTLS_JWT_TRUST_DOMAIN_UNKNOWN',
  'ERR_MTLS_JWT_AUDIENCE',
  'ERR_MTLS_JWT_EXPIRED',
  'ERR_MTLS_JWT_SIGNATURE'
] as const)
export type JwtValidatorError = (typeof JWT_VALIDATOR_ERRORS)[number]

export interface CheckedJwtSvidOptions {
  readonly source: JwtSvidValidator
  readonly audience: string
  readonly header: string
  readonly bearer: boolean
}

const KEYS = ['source', 'audience', 'header']
// RFC 9110's field-name token, lower case: what Node's header names are compared against.
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/
// A JWS in compact serialization: three base64url parts, the signature never empty (no `alg: none` shape).
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
// RFC 6750: `Bearer` (the scheme is case-insensitive, RFC 9110 11.1), one or more spaces, the token.
const BEARER = /^bearer +(\S+)$/i

/** The `jwtSvid` option, checked once at registration. */
export function checkJwtSvidOptions (given: unknown): CheckedJwtSvidOptions | null {
  if (given === undefined) return null
  const invalid = (message: string): Error => new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`jwtSvid: ${message}`)
  if (given === null || typeof given !== 'object') throw invalid('must be { source, audience, header? }')
  const unknown = unknownOption(given, KEYS, 'fastify-mtls-identity jwtSvid')
  if (unknown !== null) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(unknown)
  const { source, audience, header } = given as Partial<JwtSvidOptions>
  if (source === null || typeof source !== 'object' || typeof source.validateJWTSVID !== 'function') {
    throw invalid('source must validate tokens: a JwtSource from spiffe-workload-api (createJWTSource()), or an object with validateJWTSVID(token, audience)')
  }
  if (typeof audience !== 'string' || audience === '') throw invalid('audience must be a non-empty string (the audience this service is, e.g. its SPIFFE ID)')
  const name = header ?? 'authorization'
  if (typeof name !== 'string' || !HEADER_NAME.test(name)) throw invalid(`header must be a lower-case header name; got ${JSON.stringify(name)}`)
  return Object.freeze({ source, audience, header: name, bearer: name === 'authorization' })
}

/** What the request's token header holds: nothing, a token, or why it gives no identity. */
export type TokenHeader = { token: null, error: null } | { token: string, error: null } | { token: null, error: PeerCertificateError }

const NO_TOKEN: TokenHeader = Object.freeze({ token: null, error: null })

/** Reads the token from the request's headers (raw: Node keeps only the first of two Authorization headers). */
export function tokenHeader (raw: IncomingMessage | Http2ServerRequest, options: CheckedJwtSvidOptions, maxLength: number): TokenHeader {
  const values = headerValues(raw, options.header)
  if (values.length === 0) return NO_TOKEN
  // Two headers are never merged or chosen between: one of them is not the caller's.
  if (values.length > 1) return { token: null, error: PEER_ERRORS.ERR_MTLS_JWT_SVID_REPEATED }
  const value = (values[0] as string).trim()
  if (value.length > maxLength) return { token: null, error: PEER_ERRORS.ERR_MTLS_JWT_SVID_TOO_LONG }
  const token = options.bearer ? BEARER.exec(value)?.[1] : value
  if (token === undefined || !COMPACT_JWS.test(token)) return { token: null, error: PEER_ERRORS.ERR_MTLS_JWT_SVID_MALFORMED }
  return { token, error: null }
}

/** Whether the request carries the token header at all (the cheap test on the path of every request). */
export function hasTokenHeader (headers: Record<string, unknown>, options: CheckedJwtSvidOptions): boolean {
  return headers[options.header] !== undefined
}

/** The code a validator's refusal gives: its own `ERR_MTLS_JWT_*`, else that the token could not be judged. */
export function jwtErrorCode (err: unknown): PeerCertificateError {
  const code = (err as { code?: unknown } | null)?.code
  return (JWT_VALIDATOR_ERRORS as readonly unknown[]).includes(code) ? code as JwtValidatorError : PEER_ERRORS.ERR_MTLS_JWT_SVID_UNVERIFIED
}

/**
 * A PeerIdentity from a validated JWT-SVID: the same `id` syntax as a certificate's (the SPIFFE ID), so policies
 * apply unchanged; the certificate's fields are empty (no certificate: `thumbprintS256` is `''`, which no
 * certificate-bound token matches). Throws when the validator's `spiffeId` is not a workload's SPIFFE ID.
 */
export function jwtSvidIdentity (validated: ValidatedJwtSvidLike): PeerIdentity {
  const spiffeId = parseSpiffeId(validated.spiffeId)
  if (spiffeId.path === '') throw new Error('a workload\'s SPIFFE ID has a path')
  if (!(validated.expiresAt instanceof Date) || Number.isNaN(validated.expiresAt.getTime())) throw new Error('the validator gave no expiry')
  return new JwtSvidIdentity(spiffeId, validated)
}

class JwtSvidIdentity implements PeerIdentity {
  readonly id: string
  readonly spiffeId: SpiffeId
  readonly uris: readonly string[]
  readonly dnsNames: readonly string[] = Object.freeze([])
  readonly ips: readonly string[] = Object.freeze([])
  readonly emails: readonly string[] = Object.freeze([])
  readonly commonName = null
  readonly subject = ''
  readonly issuer = ''
  readonly serialNumber = ''
  readonly fingerprint256 = ''
  readonly thumbprintS256 = ''
  readonly notBefore: Date
  readonly notAfter: Date
  readonly source = 'jwt-svid' as const

  constructor (spiffeId: SpiffeId, validated: ValidatedJwtSvidLike) {
    this.spiffeId = spiffeId
    this.id = spiffeId.toString()
    this.uris = Object.freeze([this.id])
    const claims = validated.claims ?? {}
    const start = typeof claims.nbf === 'number' ? claims.nbf : typeof claims.iat === 'number' ? claims.iat : null
    this.notBefore = new Date(start === null ? Date.now() : start * 1000)
    this.notAfter = new Date(validated.expiresAt.getTime())
    Object.freeze(this)
  }

  toJSON (): PeerIdentityJson {
    const { id, uris, dnsNames, ips, emails, commonName, subject, issuer, serialNumber, fingerprint256, thumbprintS256, notBefore, notAfter, source } = this
    return { id, spiffeId: id, uris, dnsNames, ips, emails, commonName, subject, issuer, serialNumber, fingerprint256, thumbprintS256, notBefore, notAfter, source }
  }
}
