import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { decodeJwt } from 'jose'
import { parseTrustDomain } from 'mtls-core'
import { WorkloadApiError } from './errors.js'
import { JWT_SVID_ALGORITHMS } from './jwt-validate.js'
import type { RawJwtBundlesResponse, RawJwtSvid } from './proto.js'
import { trustDomainOf } from './x509-context.js'

/** One trust domain's JWT authorities: public keys by key ID. */
export interface JwtBundle {
  readonly trustDomain: string
  readonly keys: ReadonlyMap<string, KeyObject>
  /** The JWKS document as the agent sent it. */
  readonly jwks: { readonly keys: readonly JsonWebKey[] }
}

/** JWT bundles by trust domain name. */
export type JwtBundles = ReadonlyMap<string, JwtBundle>

/** One JWT-SVID from the agent. */
export interface JwtSvid {
  readonly spiffeId: string
  /** The encoded token, for an `Authorization: Bearer` header. */
  readonly token: string
  /** The agent's label for this SVID, `''` when none. */
  readonly hint: string
  readonly audience: readonly string[]
  readonly expiresAt: Date
  /** When it was received: its lifetime runs from here (or from `iat`, when the token has one) to `expiresAt`. */
  readonly issuedAt: Date
}

function invalidResponse (message: string, cause?: unknown): WorkloadApiError {
  return new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_RESPONSE', `invalid Workload API response: ${message}`, { cause })
}

/** How a JWT authority can be wrong: each caller reports it under its own codes. */
export type JwtAuthorityProblem = 'kid' | 'kty' | 'duplicate'

/**
 * One JWKS entry as a JWT authority: a key ID, not seen before, an RSA or EC public key (a symmetric key or private
 * material has no place in a bundle: refused rather than used), and an `alg`, when given, that JWT-SVIDs may use.
 */
export function readJwtAuthority (entry: JsonWebKey & { kid?: unknown, alg?: unknown }, index: number, seen: ReadonlyMap<string, KeyObject>,
  fail: (problem: JwtAuthorityProblem, message: string, cause?: unknown) => Error): { kid: string, key: KeyObject } {
  if (typeof entry.kid !== 'string' || entry.kid === '') throw fail('kid', `key ${index} has no key ID (kid)`)
  const kid = JSON.stringify(entry.kid)
  if (seen.has(entry.kid)) throw fail('duplicate', `key ID ${kid} appears twice`)
  if (entry.kty !== 'RSA' && entry.kty !== 'EC') throw fail('kty', `key ${kid} has kty ${JSON.stringify(entry.kty)} (RSA or EC only)`)
  if (entry.kty === 'EC' && !(EC_CURVES as readonly unknown[]).includes(entry.crv)) throw fail('kty', `key ${kid} is on curve ${JSON.stringify(entry.crv)} (${EC_CURVES.join(', ')} only)`)
  if (entry.alg !== undefined && !(JWT_SVID_ALGORITHMS as readonly unknown[]).includes(entry.alg)) {
    throw fail('kty', `key ${kid} is for algorithm ${JSON.stringify(entry.alg)}, not one JWT-SVIDs may use`)
  }
  if ('d' in entry) throw fail('kty', `key ${kid} carries private material`)
  try {
    return { kid: entry.kid, key: createPublicKey({ key: entry, format: 'jwk' }) }
  } catch (err) {
    throw fail('kty', `key ${kid} is not a valid JWK`, err)
  }
}

/** The curves of ES256, ES384 and ES512. */
const EC_CURVES = Object.freeze(['P-256', 'P-384', 'P-521'] as const)

/** A JWKS document (JSON bytes) as a bundle: every JWT authority needs a key ID, and only public keys are taken. */
export function parseJwtBundle (trustDomain: string, data: Buffer | string): JwtBundle {
  const what = `JWT bundle of ${JSON.stringify(trustDomain)}`
  let document: unknown
  try {
    document = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'))
  } catch (err) {
    throw invalidResponse(`${what} is not JSON`, err)
  }
  const entries = (document as { keys?: unknown } | null)?.keys
  if (!Array.isArray(entries)) throw invalidResponse(`${what} is not a JWKS document (no "keys" list)`)
  const keys = new Map<string, KeyObject>()
  const jwks: JsonWebKey[] = []
  for (const [index, jwk] of (entries as unknown[]).entries()) {
    if (jwk === null || typeof jwk !== 'object') throw invalidResponse(`${what}: key ${index} is not an object`)
    const entry = jwk as JsonWebKey & { kid?: unknown, use?: unknown }
    // An X.509 authority in the same document (SPIFFE bundle format) is not for JWTs.
    if (entry.use === 'x509-svid') continue
    const { kid, key } = readJwtAuthority(entry, index, keys, (_problem, message, cause) => invalidResponse(`${what}: ${message}`, cause))
    keys.set(kid, key)
    jwks.push(Object.freeze({ ...entry }))
  }
  return Object.freeze({ trustDomain, keys, jwks: Object.freeze({ keys: Object.freeze(jwks) }) })
}

export function toJwtBundles (raw: RawJwtBundlesResponse): JwtBundles {
  const bundles = new Map<string, JwtBundle>()
  for (const [key, data] of Object.entries(raw.bundles)) {
    let trustDomain: string
    try {
      trustDomain = parseTrustDomain(key)
    } catch (err) {
      throw invalidResponse(`JWT bundle key ${JSON.stringify(key)} is not a trust domain (${(err as Error).message})`, err)
    }
    bundles.set(trustDomain, parseJwtBundle(trustDomain, data))
  }
  return bundles
}

/**
 * A JWTSVID message, read but not verified (the agent signed it for us; a peer verifies it): its `sub` must be the
 * message's SPIFFE ID, and it must carry `exp` and `aud`.
 */
export function toJwtSvid (raw: RawJwtSvid, receivedAt: Date = new Date()): JwtSvid {
  const what = `JWT-SVID ${JSON.stringify(raw.spiffeId)}`
  trustDomainOf(raw.spiffeId)
  let claims
  try {
    claims = decodeJwt(raw.svid)
  } catch (err) {
    throw invalidResponse(`${what} is not a JWT`, err)
  }
  if (claims.sub !== raw.spiffeId) throw invalidResponse(`${what}: the token's sub is ${JSON.stringify(claims.sub)}, not the SVID's ID`)
  if (typeof claims.exp !== 'number') throw invalidResponse(`${what} has no exp`)
  const audience = typeof claims.aud === 'string' ? [claims.aud] : claims.aud
  if (audience === undefined || audience.length === 0) throw invalidResponse(`${what} has no aud`)
  const issuedAt = typeof claims.iat === 'number' && claims.iat * 1000 <= receivedAt.getTime() ? new Date(claims.iat * 1000) : receivedAt
  return Object.freeze({
    spiffeId: raw.spiffeId,
    token: raw.svid,
    hint: raw.hint,
    audience: Object.freeze([...audience]),
    expiresAt: new Date(claims.exp * 1000),
    issuedAt
  })
}
