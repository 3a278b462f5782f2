import { MatcherError } from './errors.js'
import type { PeerIdentity } from './identity.js'
import { parseSpiffeId, parseTrustDomain } from './spiffe-id.js'

/**
 * Identity patterns, compiled once:
 * - `spiffe://td/path/to/service`   exactly this SPIFFE ID
 * - `spiffe://td/production/*`      `*` is exactly one path segment
 * - `spiffe://td/production/**`     `**` is any number of segments (zero or more)
 * - `spiffe://td/**`                any member of trust domain `td`
 * - `dns:api.example.com`           a DNS SAN (case-insensitive); `dns:*.example.com` one label under it
 * - `cn:order-service`              the subject common name, exactly
 * - `sha256:AB:CD:...`              a certificate fingerprint pin (hex, colons optional, any case)
 * Wildcards stand for whole segments or labels only; the trust domain is always literal.
 */
export type IdentityPattern = string

/** The parts of a PeerIdentity a pattern looks at. */
export type MatchableIdentity = Pick<PeerIdentity, 'spiffeId' | 'dnsNames' | 'commonName' | 'fingerprint256'>

interface TrieNode<T> {
  readonly children: Map<string, TrieNode<T>>
  star: TrieNode<T> | null
  globstar: TrieNode<T> | null
  readonly values: T[]
}

/**
 * A table from identity patterns to values (roles, rule names, the patterns themselves), compiled into
 * hash maps and a segment trie per trust domain, so a lookup costs the same with 10 patterns or 10,000.
 */
export class IdentityMatcher<T = IdentityPattern> {
  readonly patterns: readonly IdentityPattern[]
  readonly #spiffe = new Map<string, TrieNode<T>>()
  readonly #dns = new Map<string, T[]>()
  readonly #dnsWildcard = new Map<string, T[]>()
  readonly #cn = new Map<string, T[]>()
  readonly #sha256 = new Map<string, T[]>()

  constructor (entries: Iterable<readonly [IdentityPattern, T]>) {
    const patterns: IdentityPattern[] = []
    for (const [pattern, value] of entries) {
      this.#add(pattern, value)
      patterns.push(pattern)
    }
    this.patterns = Object.freeze(patterns)
  }

  /** Every value whose pattern matches the identity, in no particular order, possibly repeated. */
  lookup (identity: MatchableIdentity): T[] {
    const found: T[] = []
    this.#collect(identity, found, false)
    return found
  }

  /** Whether any pattern matches; stops at the first. */
  matches (identity: MatchableIdentity): boolean {
    return this.#collect(identity, null, true)
  }

  #collect (identity: MatchableIdentity, found: T[] | null, stopAtFirst: boolean): boolean {
    let any = false
    if (identity.spiffeId !== null) {
      const root = this.#spiffe.get(identity.spiffeId.trustDomain)
      if (root !== undefined) any = walk(root, identity.spiffeId.segments, 0, found, stopAtFirst)
      if (any && stopAtFirst) return true
    }
    // Pins are rare; reading the fingerprint costs a hash the first time, so only look when there are some.
    if (this.#sha256.size > 0) any = collect(this.#sha256.get(identity.fingerprint256), found) || any
    if (identity.commonName !== null) any = collect(this.#cn.get(identity.commonName), found) || any
    for (const name of identity.dnsNames) {
      if (any && stopAtFirst) return true
      const lower = name.toLowerCase()
      any = collect(this.#dns.get(lower), found) || any
      const dot = lower.indexOf('.')
      if (dot > 0) any = collect(this.#dnsWildcard.get(lower.slice(dot + 1)), found) || any
    }
    return any
  }

  #add (pattern: IdentityPattern, value: T): void {
    if (typeof pattern !== 'string') throw invalid(String(pattern), 'a pattern must be a string')
    const colon = pattern.indexOf(':')
    const kind = colon === -1 ? '' : pattern.slice(0, colon)
    const rest = pattern.slice(colon + 1)
    switch (kind) {
      case 'spiffe': return this.#addSpiffe(pattern, value)
      case 'dns': return this.#addDns(pattern, rest, value)
      case 'cn':
        if (rest === '') throw invalid(pattern, 'the common name is empty')
        return push(this.#cn, rest, value)
      case 'sha256': {
        const hex = rest.replaceAll(':', '').toUpperCase()
        if (hex.length !== 64 || !isHex(hex)) throw invalid(pattern, 'a SHA-256 pin is 32 bytes of hex (64 digits, colons optional)')
        // Stored in PeerIdentity#fingerprint256's form, so a lookup needs no string work.
        return push(this.#sha256, hex.match(/../g)!.join(':'), value)
      }
      default:
        throw invalid(pattern, 'expected spiffe://..., dns:..., cn:... or sha256:...')
    }
  }

  #addSpiffe (pattern: string, value: T): void {
    const slash = pattern.indexOf('/', 'spiffe://'.length)
    const trustDomainPart = pattern.slice(0, slash === -1 ? pattern.length : slash)
    let trustDomain: string
    try {
      trustDomain = parseTrustDomain(trustDomainPart)
    } catch (err) {
      throw invalid(pattern, (err as Error).message)
    }
    if (slash === -1) throw invalid(pattern, `a trust domain alone matches no workload; use "${pattern}/**" for any member of it`)
    const segments = pattern.slice(slash + 1).split('/')
    // Check the literal segments by the SPIFFE rules, with each wildcard standing in for a valid segment.
    const literal = segments.map(segment => (segment === '*' || segment === '**') ? 'x' : segment).join('/')
    try {
      parseSpiffeId(`spiffe://${trustDomain}/${literal}`)
    } catch (err) {
      const reason = segments.some(segment => segment !== '*' && segment !== '**' && segment.includes('*'))
        ? '"*" and "**" must be whole path segments'
        : (err as Error).message
      throw invalid(pattern, reason)
    }
    let node = this.#spiffe.get(trustDomain)
    if (node === undefined) this.#spiffe.set(trustDomain, node = newNode())
    for (const segment of segments) {
      if (segment === '*') node = node.star ??= newNode()
      else if (segment === '**') node = node.globstar ??= newNode()
      else {
        let child = node.children.get(segment)
        if (child === undefined) node.children.set(segment, child = newNode())
        node = child
      }
    }
    node.values.push(value)
  }

  #addDns (pattern: string, name: string, value: T): void {
    const lower = name.toLowerCase()
    const wildcard = lower.startsWith('*.')
    const host = wildcard ? lower.slice(2) : lower
    const labels = host.split('.')
    if (host === '' || labels.some(label => label === '' || !isDnsLabel(label))) {
      throw invalid(pattern, wildcard || !lower.includes('*') ? 'not a DNS name (letters, digits, "-" and "_" in dot-separated labels)' : '"*" stands only as the whole first label: dns:*.example.com')
    }
    push(wildcard ? this.#dnsWildcard : this.#dns, host, value)
  }
}

/** Compiles identity patterns (see IdentityPattern) into a matcher; throws MatcherError naming a bad pattern. */
export function compileMatcher (patterns: Iterable<IdentityPattern>): IdentityMatcher<IdentityPattern> {
  const entries: Array<[IdentityPattern, IdentityPattern]> = []
  for (const pattern of patterns) entries.push([pattern, pattern])
  return new IdentityMatcher(entries)
}

function walk<T> (node: TrieNode<T>, segments: readonly string[], index: number, found: T[] | null, stopAtFirst: boolean): boolean {
  let any = false
  if (index === segments.length) {
    any = collect(node.values, found)
    // A trailing `**` also matches zero segments.
    if (node.globstar !== null && (!any || !stopAtFirst)) any = walk(node.globstar, segments, index, found, stopAtFirst) || any
    return any
  }
  const child = node.children.get(segments[index] as string)
  if (child !== undefined) any = walk(child, segments, index + 1, found, stopAtFirst)
  if (any && stopAtFirst) return true
  if (node.star !== null) any = walk(node.star, segments, index + 1, found, stopAtFirst) || any
  if (any && stopAtFirst) return true
  if (node.globstar !== null) {
    // `**` takes segments index .. skip-1, for every skip from index (none) to the end (all).
    for (let skip = index; skip <= segments.length; skip++) {
      any = walk(node.globstar, segments, skip, found, stopAtFirst) || any
      if (any && stopAtFirst) return true
    }
  }
  return any
}

function collect<T> (values: T[] | undefined, found: T[] | null): boolean {
  if (values === undefined || values.length === 0) return false
  if (found !== null) for (const value of values) found.push(value)
  return true
}

function newNode<T> (): TrieNode<T> {
  return { children: new Map(), star: null, globstar: null, values: [] }
}

function push<K, T> (map: Map<K, T[]>, key: K, value: T): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [value])
  else list.push(value)
}

function isHex (text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46))) return false
  }
  return true
}

function isDnsLabel (label: string): boolean {
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i)
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f)) return false
  }
  return true
}

function invalid (pattern: string, reason: string): MatcherError {
  return new MatcherError('ERR_MTLS_MATCHER_INVALID_PATTERN', `identity pattern ${JSON.stringify(pattern)}: ${reason}`)
}
