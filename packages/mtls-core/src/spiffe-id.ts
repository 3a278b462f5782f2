import { SpiffeIdError } from './errors.js'

/** A parsed SPIFFE ID: `spiffe://<trustDomain><path>`. */
export interface SpiffeId {
  /** Lowercase trust domain name, e.g. `mycompany.com`. */
  readonly trustDomain: string
  /** `''` for the trust domain's own ID, else `/segment/...`. */
  readonly path: string
  /** The path's segments (`[]` for the trust domain's own ID). */
  readonly segments: readonly string[]
  toString: () => string
}

const SCHEME = 'spiffe://'
/** SPIFFE-ID specification 2.3: URIs longer than 2048 bytes are not SPIFFE IDs. */
export const MAX_SPIFFE_ID_LENGTH = 2048
/** SPIFFE-ID specification 2.1: trust domain names are at most 255 bytes. */
export const MAX_TRUST_DOMAIN_LENGTH = 255

class ParsedSpiffeId implements SpiffeId {
  readonly trustDomain: string
  readonly path: string
  readonly segments: readonly string[]
  readonly #text: string

  constructor (text: string, trustDomain: string, path: string, segments: string[]) {
    this.#text = text
    this.trustDomain = trustDomain
    this.path = path
    this.segments = Object.freeze(segments)
    Object.freeze(this)
  }

  toString (): string {
    return this.#text
  }

  toJSON (): string {
    return this.#text
  }
}

/**
 * Parses a SPIFFE ID by the SPIFFE-ID specification: scheme `spiffe://`, a trust domain of lowercase
 * letters, digits, `.`, `-` and `_`, then an optional path of segments of letters, digits, `.`, `-` and
 * `_`, none empty, `.` or `..`, and no trailing slash. No port, userinfo, query, fragment or
 * percent-encoding. Throws SpiffeIdError with a code that says which rule was broken.
 */
export function parseSpiffeId (input: unknown): SpiffeId {
  if (typeof input !== 'string') throw error('ERR_MTLS_SPIFFE_ID_NOT_A_STRING', `a SPIFFE ID must be a string; got ${typeof input}`)
  if (input.length === 0) throw error('ERR_MTLS_SPIFFE_ID_EMPTY', 'a SPIFFE ID cannot be empty')
  if (Buffer.byteLength(input) > MAX_SPIFFE_ID_LENGTH) throw error('ERR_MTLS_SPIFFE_ID_TOO_LONG', `a SPIFFE ID is at most ${MAX_SPIFFE_ID_LENGTH} bytes; got ${Buffer.byteLength(input)}`)
  if (!input.startsWith(SCHEME)) {
    const scheme = input.toLowerCase().startsWith(SCHEME) ? 'the scheme must be lowercase "spiffe://"' : 'the scheme must be "spiffe://"'
    throw error('ERR_MTLS_SPIFFE_ID_WRONG_SCHEME', `${describe(input)}: ${scheme}`)
  }
  let slash = input.indexOf('/', SCHEME.length)
  if (slash === -1) slash = input.length
  const trustDomain = input.slice(SCHEME.length, slash)
  checkTrustDomain(trustDomain, input)
  const path = input.slice(slash)
  const segments = path === '' ? [] : checkPath(path, input)
  return new ParsedSpiffeId(input, trustDomain, path, segments)
}

/** Whether a value is a valid SPIFFE ID string. */
export function isSpiffeId (input: unknown): input is string {
  try {
    parseSpiffeId(input)
    return true
  } catch {
    return false
  }
}

/** Parses a trust domain name, given bare (`example.org`) or as its SPIFFE ID (`spiffe://example.org`). */
export function parseTrustDomain (input: unknown): string {
  if (typeof input !== 'string') throw error('ERR_MTLS_SPIFFE_ID_NOT_A_STRING', `a trust domain must be a string; got ${typeof input}`)
  if (input.includes(':/')) {
    const id = parseSpiffeId(input)
    if (id.path !== '') throw error('ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', `${describe(input)}: a trust domain has no path`)
    return id.trustDomain
  }
  checkTrustDomain(input, input)
  return input
}

function checkTrustDomain (trustDomain: string, input: string): void {
  if (trustDomain.length === 0) throw error('ERR_MTLS_SPIFFE_ID_MISSING_TRUST_DOMAIN', `${describe(input)}: the trust domain is missing`)
  if (trustDomain.length > MAX_TRUST_DOMAIN_LENGTH) {
    throw error('ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', `${describe(input)}: a trust domain is at most ${MAX_TRUST_DOMAIN_LENGTH} bytes`)
  }
  for (let i = 0; i < trustDomain.length; i++) {
    const c = trustDomain.charCodeAt(i)
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x5f) continue
    throw error('ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', `${describe(input)}: ${trustDomainCharProblem(trustDomain[i] as string)}`)
  }
}

function trustDomainCharProblem (char: string): string {
  if (char === ':') return 'a trust domain has no port'
  if (char === '@') return 'a SPIFFE ID has no userinfo'
  if (char === '?') return 'a SPIFFE ID has no query'
  if (char === '#') return 'a SPIFFE ID has no fragment'
  if (char === '%') return 'a SPIFFE ID has no percent-encoding'
  if (char >= 'A' && char <= 'Z') return 'the trust domain must be lowercase'
  return `the trust domain may hold only a-z, 0-9, ".", "-" and "_"; found ${JSON.stringify(char)}`
}

function checkPath (path: string, input: string): string[] {
  const segments: string[] = []
  let start = 1 // path[0] is "/"
  for (let i = 1; i <= path.length; i++) {
    if (i < path.length && path.charCodeAt(i) !== 0x2f) {
      const c = path.charCodeAt(i)
      if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x5f) continue
      throw error('ERR_MTLS_SPIFFE_ID_BAD_PATH', `${describe(input)}: ${pathCharProblem(path[i] as string)}`)
    }
    const segment = path.slice(start, i)
    if (segment === '') {
      throw error('ERR_MTLS_SPIFFE_ID_BAD_PATH', `${describe(input)}: ${i === path.length ? 'a path has no trailing slash' : 'a path has no empty segments'}`)
    }
    if (segment === '.' || segment === '..') throw error('ERR_MTLS_SPIFFE_ID_BAD_PATH', `${describe(input)}: a path has no "." or ".." segments`)
    segments.push(segment)
    start = i + 1
  }
  return segments
}

function pathCharProblem (char: string): string {
  if (char === '?') return 'a SPIFFE ID has no query'
  if (char === '#') return 'a SPIFFE ID has no fragment'
  if (char === '%') return 'a SPIFFE ID has no percent-encoding'
  return `a path segment may hold only a-z, A-Z, 0-9, ".", "-" and "_"; found ${JSON.stringify(char)}`
}

function describe (input: string): string {
  return JSON.stringify(input.length > 80 ? input.slice(0, 80) + '…' : input)
}

function error (code: ConstructorParameters<typeof SpiffeIdError>[0], message: string): SpiffeIdError {
  return new SpiffeIdError(code, message)
}
