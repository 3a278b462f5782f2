import type { KeyObject } from 'node:crypto'
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose'
import { parseSpiffeId } from 'mtls-core'
import { WorkloadApiError, type WorkloadApiErrorCode } from './errors.js'
import type { JwtBundles } from './jwt-bundles.js'

/** The algorithms the JWT-SVID specification allows; nothing else (no `none`, no HMAC) is ever accepted. */
export const JWT_SVID_ALGORITHMS = Object.freeze(['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'] as const)

export interface ValidateJwtSvidOptions {
  /** The audience we are: the token's `aud` must contain it. */
  audience: string
  bundles: JwtBundles
  /** Clock skew allowed on `exp` (and `nbf`), in seconds. Default: 30. */
  clockToleranceSec?: number
}

/** A validated JWT-SVID. */
export interface ValidatedJwtSvid {
  readonly spiffeId: string
  readonly claims: Readonly<JWTPayload>
  readonly expiresAt: Date
}

function refuse (code: WorkloadApiErrorCode, message: string, cause?: unknown): WorkloadApiError {
  return new WorkloadApiError(code, `JWT-SVID refused: ${message}`, { cause })
}

/**
 * Validates a JWT-SVID against JWT bundles, as the JWT-SVID specification asks: an allowed algorithm, a `kid` found in
 * the bundle of the trust domain of the token's `sub`, a valid signature, `aud` containing ours, `exp` present and
 * current. Each refusal is a `WorkloadApiError` with an `ERR_MTLS_JWT_*` code. Pure: no agent involved.
 */
export async function validateJwtSvid (token: string, options: ValidateJwtSvidOptions): Promise<ValidatedJwtSvid> {
  if (typeof token !== 'string' || token === '') throw refuse('ERR_MTLS_JWT_MALFORMED', 'no token')
  let header
  let unverified
  try {
    header = decodeProtectedHeader(token)
    unverified = decodeJwt(token)
  } catch (err) {
    throw refuse('ERR_MTLS_JWT_MALFORMED', 'not a signed JWT in compact form', err)
  }
  if (typeof header.alg !== 'string' || !(JWT_SVID_ALGORITHMS as readonly string[]).includes(header.alg)) {
    throw refuse('ERR_MTLS_JWT_ALGORITHM', `algorithm ${JSON.stringify(header.alg)} is not one the JWT-SVID specification allows (${JWT_SVID_ALGORITHMS.join(', ')})`)
  }
  if (header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE') {
    throw refuse('ERR_MTLS_JWT_MALFORMED', `typ ${JSON.stringify(header.typ)} is neither JWT nor JOSE`)
  }
  if (typeof header.kid !== 'string' || header.kid === '') throw refuse('ERR_MTLS_JWT_KID_MISSING', 'the header has no kid')
  if (typeof unverified.sub !== 'string') throw refuse('ERR_MTLS_JWT_SUBJECT_INVALID', 'no sub claim')
  let trustDomain: string
  try {
    const id = parseSpiffeId(unverified.sub)
    if (id.path === '') throw new Error('a workload\'s SPIFFE ID has a path')
    trustDomain = id.trustDomain
  } catch (err) {
    throw refuse('ERR_MTLS_JWT_SUBJECT_INVALID', `sub ${JSON.stringify(unverified.sub)} is not a SPIFFE ID of a workload (${(err as Error).message})`, err)
  }
  const bundle = options.bundles.get(trustDomain)
  if (bundle === undefined) throw refuse('ERR_MTLS_JWT_TRUST_DOMAIN_UNKNOWN', `no JWT bundle for trust domain ${JSON.stringify(trustDomain)} (of ${unverified.sub})`)
  const key: KeyObject | undefined = bundle.keys.get(header.kid)
  if (key === undefined) throw refuse('ERR_MTLS_JWT_KEY_NOT_FOUND', `key ${JSON.stringify(header.kid)} is not in the JWT bundle of ${JSON.stringify(trustDomain)}`)
  let payload: JWTPayload
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: [header.alg],
      audience: options.audience,
      clockTolerance: options.clockToleranceSec ?? 30,
      requiredClaims: ['exp', 'aud', 'sub']
    }))
  } catch (err) {
    throw fromJose(err, options.audience)
  }
  return Object.freeze({ spiffeId: payload.sub as string, claims: Object.freeze(payload), expiresAt: new Date((payload.exp as number) * 1000) })
}

function fromJose (err: unknown, audience: string): WorkloadApiError {
  if (err instanceof joseErrors.JWTExpired) return refuse('ERR_MTLS_JWT_EXPIRED', 'expired', err)
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return refuse('ERR_MTLS_JWT_AUDIENCE', `aud does not contain ${JSON.stringify(audience)}`, err)
    // exp must be present and current: a token without one never expires, which the specification forbids.
    if (err.claim === 'exp') return refuse('ERR_MTLS_JWT_EXPIRED', err.message, err)
    return refuse('ERR_MTLS_JWT_MALFORMED', `${err.message} (${err.claim})`, err)
  }
  // A bad signature, or a key of another type than the algorithm needs.
  return refuse('ERR_MTLS_JWT_SIGNATURE', `signature not verified: ${(err as Error).message}`, err)
}
