import { X509Certificate, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { parseTrustDomain } from 'mtls-core'
import { WorkloadApiError, type WorkloadApiErrorCode } from './errors.js'
import { readJwtAuthority, type JwtAuthorityProblem, type JwtBundle } from './jwt-bundles.js'

/**
 * One trust domain's bundle in the SPIFFE bundle format (SPIFFE_Trust_Domain_and_Bundle.md, section 4): its X.509
 * authorities, its JWT authorities, and the sequence number and refresh hint its publisher gave.
 */
export interface SpiffeBundle {
  readonly trustDomain: string
  /** DER CA certificates (`use: "x509-svid"` keys), in document order. */
  readonly x509Authorities: readonly Buffer[]
  /** The JWT authorities (`use: "jwt-svid"` keys) by key ID, as `validateJwtSvid` takes them. */
  readonly jwtAuthorities: JwtBundle
  /** `spiffe_sequence`, or `null` when the document has none. */
  readonly sequence: number | null
  /** `spiffe_refresh_hint` in seconds, or `null` when the document has none. */
  readonly refreshHintSeconds: number | null
}

/** What `formatSpiffeBundle` takes: the authorities, and the sequence number and refresh hint to publish. */
export interface SpiffeBundleInput {
  /** DER CA certificates. */
  readonly x509Authorities?: readonly Buffer[]
  /** JWT authorities by key ID (a `JwtBundle`'s `keys`). */
  readonly jwtAuthorities?: ReadonlyMap<string, KeyObject>
  readonly sequence?: number
  readonly refreshHintSeconds?: number
}

/** The largest bundle document read or parsed: the Workload API's own message limit (gRPC's 4 MiB). */
export const MAX_BUNDLE_BYTES = 4 * 1024 * 1024

const X509_SVID = 'x509-svid'
const JWT_SVID = 'jwt-svid'

const JWT_PROBLEMS: Record<JwtAuthorityProblem, WorkloadApiErrorCode> = {
  kid: 'ERR_MTLS_BUNDLE_KID_MISSING',
  kty: 'ERR_MTLS_BUNDLE_KEY_TYPE',
  duplicate: 'ERR_MTLS_BUNDLE_DUPLICATE_KID'
}

function refuse (code: WorkloadApiErrorCode, trustDomain: string, message: string, cause?: unknown): WorkloadApiError {
  return new WorkloadApiError(code, `bundle of ${JSON.stringify(trustDomain)} refused: ${message}`, { cause })
}

/**
 * Parses a SPIFFE bundle document (JSON text or bytes) of `trustDomain`. Strict: every malformed part is refused
 * with its own `ERR_MTLS_BUNDLE_*` code, and nothing half-read is returned. Keys whose `use` is neither
 * `x509-svid` nor `jwt-svid` are ignored, as the specification says.
 */
export function parseSpiffeBundle (json: string | Buffer | Uint8Array, trustDomain: string): SpiffeBundle {
  const td = parseTrustDomain(trustDomain)
  const size = typeof json === 'string' ? Buffer.byteLength(json) : json.byteLength
  if (size > MAX_BUNDLE_BYTES) throw refuse('ERR_MTLS_BUNDLE_TOO_LARGE', td, `${size} bytes, over ${MAX_BUNDLE_BYTES}`)
  let document: unknown
  try {
    document = JSON.parse(typeof json === 'string' ? json : Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8'))
  } catch (err) {
    throw refuse('ERR_MTLS_BUNDLE_NOT_JSON', td, 'not JSON', err)
  }
  if (document === null || typeof document !== 'object' || Array.isArray(document)) throw refuse('ERR_MTLS_BUNDLE_MALFORMED', td, 'not a JSON object')
  const { keys: entries, spiffe_sequence: sequence, spiffe_refresh_hint: refreshHint } = document as Record<string, unknown>
  if (!Array.isArray(entries)) throw refuse('ERR_MTLS_BUNDLE_MALFORMED', td, '"keys" is not a list')
  if (sequence !== undefined && !(Number.isSafeInteger(sequence) && (sequence as number) >= 0)) {
    throw refuse('ERR_MTLS_BUNDLE_SEQUENCE', td, `spiffe_sequence ${JSON.stringify(sequence)} is not a non-negative integer`)
  }
  if (refreshHint !== undefined && !(typeof refreshHint === 'number' && Number.isFinite(refreshHint) && refreshHint > 0)) {
    throw refuse('ERR_MTLS_BUNDLE_REFRESH_HINT', td, `spiffe_refresh_hint ${JSON.stringify(refreshHint)} is not a positive number of seconds`)
  }
  const x509Authorities: Buffer[] = []
  const jwtKeys = new Map<string, KeyObject>()
  const jwks: JsonWebKey[] = []
  for (const [index, jwk] of (entries as unknown[]).entries()) {
    if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw refuse('ERR_MTLS_BUNDLE_MALFORMED', td, `key ${index} is not an object`)
    const entry = jwk as JsonWebKey & { use?: unknown, x5c?: unknown, kid?: unknown }
    if (typeof entry.use !== 'string') throw refuse('ERR_MTLS_BUNDLE_MALFORMED', td, `key ${index} has no "use"`)
    if (entry.use === X509_SVID) {
      x509Authorities.push(readX509Authority(entry, index, td))
    } else if (entry.use === JWT_SVID) {
      const { kid, key } = readJwtAuthority(entry, index, jwtKeys, (problem, message, cause) => refuse(JWT_PROBLEMS[problem], td, message, cause))
      jwtKeys.set(kid, key)
      jwks.push(Object.freeze({ ...entry }))
    }
    // Any other use: ignored (section 4.2.2).
  }
  return Object.freeze({
    trustDomain: td,
    x509Authorities: Object.freeze(x509Authorities),
    jwtAuthorities: Object.freeze({ trustDomain: td, keys: jwtKeys, jwks: Object.freeze({ keys: Object.freeze(jwks) }) }),
    sequence: sequence === undefined ? null : sequence as number,
    refreshHintSeconds: refreshHint === undefined ? null : refreshHint
  })
}

/** An `x509-svid` key: exactly one certificate in `x5c`, a CA, whose public key is the key's own when it gives one. */
function readX509Authority (entry: JsonWebKey & { x5c?: unknown }, index: number, td: string): Buffer {
  const x5c = entry.x5c
  if (!Array.isArray(x5c) || x5c.length !== 1 || typeof x5c[0] !== 'string') {
    throw refuse('ERR_MTLS_BUNDLE_X5C', td, `x509-svid key ${index} does not hold exactly one certificate in x5c`)
  }
  const der = Buffer.from(x5c[0], 'base64')
  let certificate: X509Certificate
  try {
    // Strict base64: what decodes must encode back to the same text (Buffer.from skips what it cannot read).
    if (der.toString('base64') !== x5c[0]) throw new Error('x5c is not standard base64')
    certificate = new X509Certificate(der)
  } catch (err) {
    throw refuse('ERR_MTLS_BUNDLE_X5C', td, `x509-svid key ${index}: x5c is not a DER certificate (${(err as Error).message})`, err)
  }
  if (!certificate.ca) throw refuse('ERR_MTLS_BUNDLE_NOT_CA', td, `x509-svid key ${index}: ${certificate.subject.replaceAll('\n', ', ')} is not a CA certificate`)
  if (entry.kty !== undefined) {
    let matches = false
    try {
      matches = createPublicKey({ key: entry, format: 'jwk' }).equals(certificate.publicKey)
    } catch {}
    if (!matches) throw refuse('ERR_MTLS_BUNDLE_X5C', td, `x509-svid key ${index}: the key parameters are not the certificate's public key`)
  }
  return der
}

/**
 * A bundle as a SPIFFE bundle document (JSON text), as a bundle endpoint serves it: each CA as an `x509-svid` key
 * with its public key parameters and `x5c`, each JWT authority as a `jwt-svid` key with its `kid`.
 */
export function formatSpiffeBundle (bundle: SpiffeBundleInput): string {
  const keys: object[] = []
  for (const der of bundle.x509Authorities ?? []) {
    const certificate = new X509Certificate(der)
    keys.push({ use: X509_SVID, ...certificate.publicKey.export({ format: 'jwk' }), x5c: [Buffer.from(der).toString('base64')] })
  }
  for (const [kid, key] of bundle.jwtAuthorities ?? new Map<string, KeyObject>()) {
    // The public half only, whatever was given: a bundle never carries private material.
    keys.push({ use: JWT_SVID, kid, ...(key.type === 'public' ? key : createPublicKey(key)).export({ format: 'jwk' }) })
  }
  return JSON.stringify({
    keys,
    ...(bundle.refreshHintSeconds === undefined ? {} : { spiffe_refresh_hint: bundle.refreshHintSeconds }),
    ...(bundle.sequence === undefined ? {} : { spiffe_sequence: bundle.sequence })
  })
}
