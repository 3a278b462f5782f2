import { XfccError, type XfccErrorCode } from './errors.js'

/** One element of an `x-forwarded-client-cert` header: what one proxy said about the client it saw. */
export interface XfccElement {
  /** The URI SANs of the proxy's own certificate: Envoy writes one `By` per URI SAN, so a proxy may have several. */
  readonly by: readonly string[]
  /** SHA-256 of the client certificate's DER, lowercase hex. */
  readonly hash: string | null
  /** The client certificate, PEM (URL-decoded). */
  readonly cert: string | null
  /** The client's chain, PEM (URL-decoded). */
  readonly chain: string | null
  readonly subject: string | null
  readonly uri: readonly string[]
  readonly dns: readonly string[]
}

export interface ParseXfccOptions {
  /** Longest header accepted, in characters. Default: 65,536. */
  maxLength?: number
}

type SingleKey = 'hash' | 'cert' | 'chain' | 'subject'
const SINGLE_KEYS = new Set<string>(['hash', 'cert', 'chain', 'subject'])
const DEFAULT_MAX_LENGTH = 65_536

/**
 * Parses Envoy's `x-forwarded-client-cert` header: elements separated by `,`, `key=value` pairs by `;`,
 * keys `By`, `Hash`, `Cert`, `Chain`, `Subject`, `URI`, `DNS` in any case (others are skipped), values
 * bare or double-quoted with backslash escapes. `By`, `URI` and `DNS` may repeat (Envoy writes one pair per SAN);
 * the others may not.
 * Throws XfccError for anything malformed; it never returns part of an element.
 * The last element is the one the nearest proxy appended.
 */
export function parseXfcc (header: unknown, options: ParseXfccOptions = {}): XfccElement[] {
  if (typeof header !== 'string') throw fail('ERR_MTLS_XFCC_SYNTAX', `the header must be a string; got ${typeof header}`)
  const maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH
  if (header.length > maxLength) throw fail('ERR_MTLS_XFCC_TOO_LONG', `the header is ${header.length} characters; at most ${maxLength} are accepted`)
  if (header.trim() === '') throw fail('ERR_MTLS_XFCC_EMPTY', 'the header is empty')

  const elements: XfccElement[] = []
  const n = header.length
  let i = 0
  let element = newElement()
  for (;;) {
    i = skipSpace(header, i)
    const keyStart = i
    while (i < n && !isDelimiter(header.charCodeAt(i)) && header.charCodeAt(i) !== 0x3d) i++
    const key = header.slice(keyStart, i).trimEnd()
    if (key === '') throw syntax(header, i, 'expected a key')
    if (!isToken(key)) throw syntax(header, keyStart, `the key ${JSON.stringify(key)} is not a word of letters, digits, "-" and "_"`)
    if (header.charCodeAt(i) !== 0x3d) throw syntax(header, i, `expected "=" after the key ${JSON.stringify(key)}`)
    i++

    let value: string
    if (header.charCodeAt(i) === 0x22) {
      value = ''
      i++
      for (;;) {
        if (i >= n) throw syntax(header, i, 'a quoted value is not closed')
        const c = header.charCodeAt(i)
        if (c === 0x22) { i++; break }
        if (c === 0x5c) {
          if (i + 1 >= n) throw syntax(header, i, 'a backslash ends the header')
          value += header[i + 1]
          i += 2
        } else {
          value += header[i]
          i++
        }
      }
    } else {
      const valueStart = i
      while (i < n && header.charCodeAt(i) !== 0x3b && header.charCodeAt(i) !== 0x2c) {
        if (header.charCodeAt(i) === 0x22) throw syntax(header, i, 'a quote inside an unquoted value')
        i++
      }
      value = header.slice(valueStart, i).trim()
    }
    assign(element, key, value)

    i = skipSpace(header, i)
    if (i >= n) break
    const c = header.charCodeAt(i)
    if (c !== 0x3b && c !== 0x2c) throw syntax(header, i, 'expected ";" or "," after a value')
    i++
    if (c === 0x2c) {
      elements.push(freeze(element))
      element = newElement()
    }
  }
  elements.push(freeze(element))
  return elements
}

interface MutableElement {
  by: string[]
  hash: string | null
  cert: string | null
  chain: string | null
  subject: string | null
  uri: string[]
  dns: string[]
}

function newElement (): MutableElement {
  return { by: [], hash: null, cert: null, chain: null, subject: null, uri: [], dns: [] }
}

function assign (element: MutableElement, rawKey: string, value: string): void {
  const key = rawKey.toLowerCase()
  if (key === 'by' || key === 'uri' || key === 'dns') {
    if (value !== '') element[key].push(value) // Envoy writes `URI=` when the certificate has none
    return
  }
  if (!SINGLE_KEYS.has(key)) return // a key a newer proxy may add; its syntax was still checked
  const single = key as SingleKey
  if (element[single] !== null) throw fail('ERR_MTLS_XFCC_DUPLICATE_KEY', `the key ${JSON.stringify(rawKey)} appears twice in one element`)
  element[single] = single === 'cert' || single === 'chain' ? urlDecode(rawKey, value) : single === 'hash' ? checkHash(value) : value
}

function urlDecode (key: string, value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    throw fail('ERR_MTLS_XFCC_BAD_VALUE', `the value of ${JSON.stringify(key)} is not valid URL encoding`)
  }
}

function checkHash (value: string): string {
  if (value.length !== 64) throw fail('ERR_MTLS_XFCC_BAD_VALUE', `Hash must be 64 hex digits (SHA-256); got ${value.length} characters`)
  for (let i = 0; i < 64; i++) {
    const c = value.charCodeAt(i) | 0x20
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) throw fail('ERR_MTLS_XFCC_BAD_VALUE', 'Hash must be hex digits')
  }
  return value.toLowerCase()
}

function freeze (element: MutableElement): XfccElement {
  Object.freeze(element.by)
  Object.freeze(element.uri)
  Object.freeze(element.dns)
  return Object.freeze(element)
}

function isToken (key: string): boolean {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
    if (!(letter || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f)) return false
  }
  return true
}

function isDelimiter (c: number): boolean {
  return c === 0x3b || c === 0x2c || c === 0x22
}

function skipSpace (text: string, i: number): number {
  while (i < text.length && (text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x09)) i++
  return i
}

function syntax (header: string, at: number, reason: string): XfccError {
  return fail('ERR_MTLS_XFCC_SYNTAX', `${reason} at character ${at}${at < header.length ? ` (${JSON.stringify(header.slice(at, at + 10))})` : ''}`)
}

function fail (code: XfccErrorCode, message: string): XfccError {
  return new XfccError(code, `x-forwarded-client-cert: ${message}`)
}
