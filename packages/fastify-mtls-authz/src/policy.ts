import { IdentityMatcher, type IdentityPattern } from 'mtls-core'
import { snapshotOptions, unknownOption } from 'mtls-core/internal'
import { codes } from './errors.js'
import type { MtlsRole } from './roles.js'

/** Who holds which roles, and who is refused everywhere. Plain data, so it can live in a JSON file. */
export interface MtlsPolicy<Role extends string = MtlsRole> {
  /** Identity patterns (`IdentityPattern`: exact SPIFFE IDs, `spiffe://td/**`, `*`, `dns:`, `cn:`, `sha256:` pins) mapped to roles. */
  acl?: Array<{ identities: IdentityPattern[], roles: Role[] }>
  /** Identity patterns refused on every route but public ones, before anything else is looked at. */
  deny?: IdentityPattern[]
  /** For routes that declare nothing: `'deny'` (the secure default) or `'allow'`. */
  defaultPolicy?: 'deny' | 'allow'
}

/** A policy compiled once into lookup structures; swapped whole by `setPolicy`. */
export interface CompiledPolicy {
  readonly roles: IdentityMatcher<string>
  readonly deny: IdentityMatcher<IdentityPattern>
  readonly defaultPolicy: 'deny' | 'allow'
  /** Every role some ACL entry grants, to find roles that routes require and nobody holds. */
  readonly grantedRoles: ReadonlySet<string>
  readonly source: Readonly<MtlsPolicy<string>>
}

/** Validates and compiles a policy; throws FST_MTLS_AUTHZ_INVALID_POLICY naming what is wrong. */
export function compilePolicy (given: MtlsPolicy<string>): CompiledPolicy {
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw invalid('the policy must be an object { acl, deny, defaultPolicy }')
  // Read once, own keys only: a polluted Object.prototype.defaultPolicy must not turn deny into allow.
  const policy = snapshotOptions(given)
  const unknown = unknownOption(policy, ['acl', 'deny', 'defaultPolicy'], 'policy')
  if (unknown !== null) throw invalid(unknown)
  const defaultPolicy = policy.defaultPolicy ?? 'deny'
  if (defaultPolicy !== 'deny' && defaultPolicy !== 'allow') throw invalid(`defaultPolicy must be 'deny' or 'allow'; got ${JSON.stringify(defaultPolicy)}`)
  const acl = policy.acl ?? []
  if (!Array.isArray(acl)) throw invalid('acl must be a list of { identities, roles }')
  const entries: Array<[IdentityPattern, string]> = []
  acl.forEach((given, index) => {
    if (typeof given !== 'object' || given === null || Array.isArray(given)) throw invalid(`acl[${index}] must be { identities: string[], roles: string[] }`)
    const entry = snapshotOptions(given)
    const unknownKey = unknownOption(entry, ['identities', 'roles'], `acl[${index}]`)
    if (unknownKey !== null) throw invalid(unknownKey)
    if (!isStringList(entry.identities) || !isStringList(entry.roles)) throw invalid(`acl[${index}] must be { identities: string[], roles: string[] }`)
    if (entry.roles.some(role => role === '')) throw invalid(`acl[${index}].roles: a role name cannot be empty`)
    for (const identity of entry.identities) for (const role of entry.roles) entries.push([identity, role])
  })
  const deny = policy.deny ?? []
  if (!isStringList(deny)) throw invalid('deny must be a list of identity patterns')
  const pin = deny.find(isCertificatePin)
  if (pin !== undefined) throw invalid(`deny: ${PIN_CANNOT_DENY} (${JSON.stringify(pin)})`)
  try {
    return Object.freeze({
      roles: new IdentityMatcher(entries),
      deny: new IdentityMatcher(deny.map(pattern => [pattern, pattern] as const)),
      defaultPolicy,
      grantedRoles: new Set(entries.map(([, role]) => role)),
      source: structuredClone(policy)
    })
  } catch (err) {
    throw invalid((err as Error).message)
  }
}

/**
 * Why a `sha256:` pin cannot deny: the fingerprint covers the signature, and the holder of an ECDSA
 * certificate can re-encode its signature ((r, s) as (r, n - s), which OpenSSL accepts) into a certificate
 * with the same names and key and another fingerprint. A pin allows exactly one encoding; it cannot shut a
 * certificate out.
 */
export const PIN_CANNOT_DENY = 'a sha256: certificate pin cannot deny: the certificate\'s holder can re-encode its signature and change the fingerprint; deny its SPIFFE ID, DNS name or CN, or revoke it with a CRL'

export function isCertificatePin (pattern: string): boolean {
  return pattern.slice(0, 7).toLowerCase() === 'sha256:'
}

function isStringList (value: unknown): value is string[] {
  return Array.isArray(value) && value.every(item => typeof item === 'string')
}

function invalid (reason: string): Error {
  return new codes.FST_MTLS_AUTHZ_INVALID_POLICY(reason)
}
