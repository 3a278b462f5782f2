import { readFile } from 'node:fs/promises'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import Router, { type HTTPMethod } from 'find-my-way'
// The identity plugin's types declare request.peerIdentity; importing its PeerIdentity keeps them in our .d.ts.
import type { PeerIdentity } from 'fastify-mtls-identity'
import { watchFiles } from 'mtls-core'
import { codes } from './errors.js'
import { compilePolicy, type CompiledPolicy, type MtlsPolicy } from './policy.js'
import { compileRouteRule, decide, type Decision, type RouteMtlsConfig, type RouteRule } from './route-rule.js'

type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/** One authorization decision, as written to the audit log and passed to `onDecision`. */
export interface AuthzDecision {
  readonly decision: 'allow' | 'deny'
  readonly status: 200 | 401 | 403
  readonly identity: string | null
  readonly source: 'tls' | 'forwarded' | null
  readonly method: string
  readonly route: string
  readonly rule: string
}

export interface FastifyMtlsAuthzOptions {
  /** Roles and global deny rules. Default: no roles, `defaultPolicy: 'deny'`. */
  policy?: MtlsPolicy
  /** The policy as a JSON file, watched: a valid change is swapped in whole, an invalid one logged and ignored. */
  policyFile?: string
  /** Where route checks run. Default: `'onRequest'`, before the body is read. */
  hook?: 'onRequest' | 'preHandler'
  /** Log level of allowed decisions. Default: `'info'`; denials are always logged at `warn`. */
  allowLogLevel?: LogLevel
  /** Called with every decision, for shipping them elsewhere. */
  onDecision?: (decision: AuthzDecision, request: FastifyRequest) => void
}

export type MtlsAuthorizeHook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

export interface Explanation extends Decision {
  /** The route pattern that matched the URL. */
  readonly route: string
}

export interface FastifyMtlsAuthz {
  /** Validates and swaps in a whole new policy; throws FST_MTLS_AUTHZ_INVALID_POLICY and keeps the old one. */
  setPolicy: (policy: MtlsPolicy) => void
  /** The policy in force. */
  readonly policy: Readonly<MtlsPolicy<string>>
  /** What would be decided for this identity on this method and URL, and by which rule; `null` when no route matches. */
  explain: (identity: PeerIdentity | null, method: string, url: string) => Explanation | null
  /** The roles the policy gives an identity. */
  rolesOf: (identity: PeerIdentity) => string[]
}

declare module 'fastify' {
  interface FastifyContextConfig {
    mtls?: RouteMtlsConfig
  }
  interface FastifyInstance {
    mtlsAuthz: FastifyMtlsAuthz
    /** A hook (for onRequest, preHandler or @fastify/auth) that enforces the same requirements as `config.mtls`. */
    mtlsAuthorize: (requirements: RouteMtlsConfig) => MtlsAuthorizeHook
  }
}

const kMtlsAuthorize = Symbol('fastify-mtls-authz.hook')
const LOG_LEVELS = new Set<unknown>(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])
const NO_ROLES: ReadonlySet<string> = new Set()

const fastifyMtlsAuthz: FastifyPluginAsync<FastifyMtlsAuthzOptions> = async (fastify: FastifyInstance, options: FastifyMtlsAuthzOptions) => {
  const hookName = options.hook ?? 'onRequest'
  if (hookName !== 'onRequest' && hookName !== 'preHandler') throw new codes.FST_MTLS_AUTHZ_INVALID_OPTION(`hook must be 'onRequest' or 'preHandler'; got ${JSON.stringify(hookName)}`)
  const allowLevel = options.allowLogLevel ?? 'info'
  if (!LOG_LEVELS.has(allowLevel)) throw new codes.FST_MTLS_AUTHZ_INVALID_OPTION(`allowLogLevel must be a log level; got ${JSON.stringify(allowLevel)}`)
  if (options.onDecision !== undefined && typeof options.onDecision !== 'function') throw new codes.FST_MTLS_AUTHZ_INVALID_OPTION('onDecision must be a function')
  if (options.policy !== undefined && options.policyFile !== undefined) throw new codes.FST_MTLS_AUTHZ_INVALID_OPTION('give policy or policyFile, not both')
  const { onDecision } = options

  // The one compiled policy in force. A request reads it once, so it never sees half of two policies.
  let current: CompiledPolicy = options.policyFile === undefined ? compilePolicy(options.policy ?? {}) : await readPolicyFile(options.policyFile)
  // An identity lives as long as its connection: its roles are looked up once per connection and policy.
  const roleCache = new WeakMap<PeerIdentity, { policy: CompiledPolicy, roles: ReadonlySet<string> }>()
  const rolesOf = (identity: PeerIdentity | null, policy: CompiledPolicy): ReadonlySet<string> => {
    if (identity === null) return NO_ROLES
    const cached = roleCache.get(identity)
    if (cached !== undefined && cached.policy === policy) return cached.roles
    const roles = new Set(policy.roles.lookup(identity))
    roleCache.set(identity, { policy, roles })
    return roles
  }

  const hookFor = (rule: RouteRule, route: string): MtlsAuthorizeHook => function mtlsAuthorize (request, reply, done) {
    const policy = current
    const identity = rule.public ? null : request.peerIdentity
    const decision = decide(rule, policy, identity, rolesOf(identity, policy))
    const record: AuthzDecision = {
      decision: decision.allowed ? 'allow' : 'deny',
      status: decision.status,
      identity: identity?.id ?? null,
      source: identity?.source ?? null,
      method: request.method,
      route,
      rule: decision.rule
    }
    request.log[decision.allowed ? allowLevel : 'warn']({ mtlsAuthz: record }, `mtls authz ${record.decision}`)
    onDecision?.(record, request)
    if (decision.allowed) return done()
    if (decision.status === 401) return done(new codes.FST_MTLS_PEER_REQUIRED(request.peerCertificateError ?? 'NO_PEER_CERTIFICATE'))
    done(new codes.FST_MTLS_FORBIDDEN(identity?.id ?? 'anonymous', request.method, request.url))
  }

  // A router of our own, beside Fastify's, only for explain(): Fastify's findRoute does not expose route config.
  const rules = Router()
  fastify.addHook('onRoute', (routeOptions: RouteOptions) => {
    const method = Array.isArray(routeOptions.method) ? routeOptions.method.join(',') : routeOptions.method
    const route = routeOptions.url
    const rule = compileRouteRule((routeOptions.config as { mtls?: RouteMtlsConfig } | undefined)?.mtls, `${method} ${route}`)
    for (const each of [routeOptions.method].flat()) {
      if (rules.hasRoute(each as HTTPMethod, route)) rules.off(each as HTTPMethod, route)
      rules.on(each as HTTPMethod, route, () => {}, { rule, route })
    }
    // A route that declares nothing but guards itself with fastify.mtlsAuthorize() is left to that hook.
    const hooks = [routeOptions.onRequest, routeOptions.preHandler].flat()
    if (!rule.declared && hooks.some(hook => typeof hook === 'function' && kMtlsAuthorize in hook)) return
    const hook = hookFor(rule, route)
    const existing = routeOptions[hookName]
    routeOptions[hookName] = existing === undefined ? [hook] : [hook, ...(Array.isArray(existing) ? existing : [existing])] as never
  })

  const setPolicy = (policy: MtlsPolicy): void => { current = compilePolicy(policy) }
  let lastPolicyError = ''
  const policyWatcher = options.policyFile === undefined
    ? null
    : watchFiles([options.policyFile], () => {
      readPolicyFile(options.policyFile as string).then(policy => {
        current = policy
        lastPolicyError = ''
        fastify.log.info({ file: options.policyFile }, 'fastify-mtls-authz: policy reloaded')
      }, (err: Error) => {
        if (err.message !== lastPolicyError) fastify.log.error({ file: options.policyFile, code: (err as { code?: string }).code }, `fastify-mtls-authz: policy file refused, the previous policy stays: ${err.message}`)
        lastPolicyError = err.message
      })
    })
  fastify.addHook('onClose', async () => { policyWatcher?.close() })

  fastify.decorate('mtlsAuthz', {
    setPolicy,
    get policy () { return current.source },
    explain (identity: PeerIdentity | null, method: string, url: string): Explanation | null {
      const entry = rules.find(method.toUpperCase() as HTTPMethod, url)?.store as { rule: RouteRule, route: string } | undefined
      if (entry === undefined) return null
      return { ...decide(entry.rule, current, identity, rolesOf(identity, current)), route: entry.route }
    },
    rolesOf: (identity: PeerIdentity) => [...rolesOf(identity, current)]
  })
  fastify.decorate('mtlsAuthorize', (requirements: RouteMtlsConfig) => {
    const hook = hookFor(compileRouteRule(requirements, 'mtlsAuthorize()'), 'mtlsAuthorize()')
    return Object.defineProperty(hook, kMtlsAuthorize, { value: true })
  })
}

async function readPolicyFile (file: string): Promise<CompiledPolicy> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new codes.FST_MTLS_AUTHZ_INVALID_POLICY(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  let policy: MtlsPolicy<string>
  try {
    policy = JSON.parse(text) as MtlsPolicy<string>
  } catch (err) {
    throw new codes.FST_MTLS_AUTHZ_INVALID_POLICY(`${file}: not JSON (${(err as Error).message})`)
  }
  try {
    return compilePolicy(policy)
  } catch (err) {
    throw new codes.FST_MTLS_AUTHZ_INVALID_POLICY(`${file}: ${(err as Error).message.replace(/^fastify-mtls-authz: invalid policy: /, '')}`)
  }
}

/** The plugin, wrapped once; it needs `request.peerIdentity` from fastify-mtls-identity, registered first. */
export const plugin = fp(fastifyMtlsAuthz, {
  fastify: '5.x',
  name: 'fastify-mtls-authz',
  dependencies: ['fastify-mtls-identity'],
  decorators: { request: ['peerIdentity'] }
})
