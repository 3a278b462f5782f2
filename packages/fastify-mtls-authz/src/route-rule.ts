import { compileMatcher, type IdentityMatcher, type IdentityPattern, type PeerIdentity } from 'mtls-core'
import { snapshotOptions, unknownOption } from 'mtls-core/internal'
import { codes } from './errors.js'
import { PIN_CANNOT_DENY, isCertificatePin, type CompiledPolicy } from './policy.js'
import type { MtlsRole, OneOfMtlsRoles } from './roles.js'

// A role in `config.mtls` is `MtlsRole | (string & OneOfMtlsRoles<MtlsRole>)`, written out (an alias would be what
// errors print). Fastify infers a route's config type from the literal and intersects it with FastifyContextConfig,
// so a misspelt role met `MtlsRole & 'payments:chrage'`, which is `never`, and the error named no role. No string
// literal is a `string & OneOfMtlsRoles<...>`, but that member survives the intersection, so the error reads
// `Type '"payments:chrage"' is not assignable to type 'OneOfMtlsRoles<"payments:charge" | "payments:read"> & "payments:chrage"'`.
/** What a route needs, in `config: { mtls: ... }` or `fastify.mtlsAuthorize(...)`. */
export interface RouteMtlsConfig {
  /** Open to anyone, certificate or not (health checks). */
  public?: boolean
  /** Any one of these roles (from the policy's ACL). */
  roles?: Array<MtlsRole | (string & OneOfMtlsRoles<MtlsRole>)>
  /** Every one of these roles. */
  allRoles?: Array<MtlsRole | (string & OneOfMtlsRoles<MtlsRole>)>
  /** These identities (identity patterns, `IdentityPattern`), whatever their roles. */
  allow?: IdentityPattern[]
  /** These identities (identity patterns) are refused here, whatever else would allow them. */
  deny?: IdentityPattern[]
  /**
   * RFC 8705: the verified access token's `cnf['x5t#S256']` must be the thumbprint of the certificate presented,
   * else 401 `invalid_token`. Alone, it requires a verified peer (and no role); with roles or allow, both must hold.
   */
  boundToken?: boolean
}

/** A route's requirement compiled once, at registration. */
export interface RouteRule {
  readonly public: boolean
  /** False when the route declared nothing: the policy's defaultPolicy decides. */
  readonly declared: boolean
  readonly roles: readonly string[]
  readonly allRoles: readonly string[]
  readonly allow: IdentityMatcher | null
  readonly deny: IdentityMatcher | null
  readonly boundToken: boolean
}

export interface Decision {
  readonly allowed: boolean
  /** 200 when allowed, 401 without a verified peer, 403 otherwise. */
  readonly status: 200 | 401 | 403
  /** The rule that decided, for the audit log and `explain`. */
  readonly rule: string
}

const KEYS = ['public', 'roles', 'allRoles', 'allow', 'deny', 'boundToken']

export function compileRouteRule (given: RouteMtlsConfig | undefined, where: string): RouteRule {
  if (given === undefined) return { public: false, declared: false, roles: [], allRoles: [], allow: null, deny: null, boundToken: false }
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw invalid(where, 'config.mtls must be an object')
  const config = snapshotOptions(given)
  const unknown = unknownOption(config, KEYS, 'config.mtls')
  if (unknown !== null) throw invalid(where, unknown)
  if (config.public !== undefined && typeof config.public !== 'boolean') throw invalid(where, 'config.mtls.public must be true or false')
  if (config.boundToken !== undefined && typeof config.boundToken !== 'boolean') throw invalid(where, 'config.mtls.boundToken must be true or false')
  const list = (name: 'roles' | 'allRoles' | 'allow' | 'deny'): string[] => {
    const value = config[name]
    if (value === undefined) return []
    if (!Array.isArray(value) || value.some(item => typeof item !== 'string' || item === '')) throw invalid(where, `config.mtls.${name} must be a list of non-empty strings`)
    return value
  }
  const matcher = (name: 'allow' | 'deny'): IdentityMatcher | null => {
    const patterns = list(name)
    if (patterns.length === 0) return null
    const pin = name === 'deny' ? patterns.find(isCertificatePin) : undefined
    if (pin !== undefined) throw invalid(where, `config.mtls.deny: ${PIN_CANNOT_DENY} (${JSON.stringify(pin)})`)
    try {
      return compileMatcher(patterns)
    } catch (err) {
      throw invalid(where, `config.mtls.${name}: ${(err as Error).message}`)
    }
  }
  const rule = { public: config.public === true, roles: list('roles'), allRoles: list('allRoles'), allow: matcher('allow'), deny: matcher('deny'), boundToken: config.boundToken === true }
  if (rule.public && (rule.roles.length > 0 || rule.allRoles.length > 0 || rule.allow !== null || rule.deny !== null || rule.boundToken)) {
    throw invalid(where, 'config.mtls.public cannot be combined with roles, allRoles, allow, deny or boundToken')
  }
  return { ...rule, declared: true }
}

/** What the policy says of one identity, whatever the route: looked up once per identity and policy by the caller. */
export interface PeerPolicy {
  /** The identity's roles. */
  readonly roles: ReadonlySet<string>
  /** The policy's deny pattern that matches it, or `undefined`. */
  readonly deny: string | undefined
}

/** What the policy says of `identity`: its roles and the first policy deny pattern that matches it. */
export function peerPolicy (policy: CompiledPolicy, identity: PeerIdentity): PeerPolicy {
  return { roles: new Set(policy.roles.lookup(identity)), deny: policy.deny.lookup(identity)[0] }
}

/**
 * Decides: a public route is open; then deny rules (the policy's, then the route's) refuse a peer they
 * match, whatever else would allow it, under either defaultPolicy; then a route that declares nothing
 * follows defaultPolicy; then a verified peer is required; then allow rules (route identities, then roles),
 * as Istio orders them. `peer` is what `policy` says of the identity (`peerPolicy`), looked up once per identity by the
 * caller; `null` with no identity.
 */
export function decide (rule: RouteRule, policy: CompiledPolicy, identity: PeerIdentity | null, peer: PeerPolicy | null): Decision {
  if (rule.public) return { allowed: true, status: 200, rule: 'route is public' }
  const known = identity === null ? null : peer ?? peerPolicy(policy, identity)
  if (known !== null) {
    const policyDeny = known.deny
    if (policyDeny !== undefined) return { allowed: false, status: 403, rule: `policy deny ${policyDeny}` }
    const routeDeny = rule.deny?.lookup(identity as PeerIdentity)[0]
    if (routeDeny !== undefined) return { allowed: false, status: 403, rule: `route deny ${routeDeny}` }
  }
  if (!rule.declared) {
    if (policy.defaultPolicy === 'allow') return { allowed: true, status: 200, rule: 'defaultPolicy allow' }
    return identity === null ? { allowed: false, status: 401, rule: 'no verified peer' } : { allowed: false, status: 403, rule: 'defaultPolicy deny' }
  }
  if (identity === null) return { allowed: false, status: 401, rule: 'no verified peer' }
  const routeAllow = rule.allow?.lookup(identity)[0]
  if (routeAllow !== undefined) return { allowed: true, status: 200, rule: `route allow ${routeAllow}` }
  const needsRoles = rule.roles.length > 0 || rule.allRoles.length > 0
  if (needsRoles) {
    const roles = (known as PeerPolicy).roles
    const anyRole = rule.roles.length === 0 ? undefined : rule.roles.find(role => roles.has(role))
    const allRoles = rule.allRoles.every(role => roles.has(role))
    if ((rule.roles.length === 0 || anyRole !== undefined) && allRoles) {
      return { allowed: true, status: 200, rule: anyRole !== undefined ? `role ${anyRole}` : `roles ${rule.allRoles.join(', ')}` }
    }
    const wanted = [rule.roles.length > 0 ? `one of ${rule.roles.join(', ')}` : '', rule.allRoles.length > 0 ? `all of ${rule.allRoles.join(', ')}` : ''].filter(Boolean).join(' and ')
    return { allowed: false, status: 403, rule: `lacks role: ${wanted}` }
  }
  // A route that asks only for a bound token needs a verified peer; the token check (after verification) does the rest.
  if (rule.boundToken && rule.allow === null) return { allowed: true, status: 200, rule: 'verified peer, token to check' }
  return { allowed: false, status: 403, rule: 'no allow rule matches' }
}

function invalid (where: string, reason: string): Error {
  return new codes.FST_MTLS_AUTHZ_INVALID_OPTION(`${where}: ${reason}`)
}
