import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RequestPayload, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { createRequire } from 'node:module'
import type Router from 'find-my-way'
import type { HTTPMethod } from 'find-my-way'
// The identity plugin's types declare request.peerIdentity; importing its PeerIdentity keeps them in our .d.ts.
import type { PeerIdentity } from 'fastify-mtls-identity'
import { snapshotOptions, unknownOption } from 'mtls-core/internal'
import { checkBoundToken } from './bound-token.js'
import { codes } from './errors.js'
import { decisionTelemetry } from './otel.js'
import { compilePolicy, type CompiledPolicy, type MtlsPolicy } from './policy.js'
import { policyFileSource } from './policy-file.js'
import { compileRouteRule, decide, peerPolicy, type Decision, type PeerPolicy, type RouteMtlsConfig, type RouteRule } from './route-rule.js'

type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/** One authorization decision, as written to the audit log and passed to `onDecision`. */
export interface AuthzDecision {
  readonly decision: 'allow' | 'deny'
  readonly status: 200 | 401 | 403
  /** The error code of a denial (`FST_MTLS_AUTHZ_PEER_REQUIRED`, `FST_MTLS_AUTHZ_FORBIDDEN`, `FST_MTLS_AUTHZ_TOKEN_*`); `null` when allowed. */
  readonly code: 'FST_MTLS_AUTHZ_PEER_REQUIRED' | 'FST_MTLS_AUTHZ_FORBIDDEN' | 'FST_MTLS_AUTHZ_TOKEN_REQUIRED' | 'FST_MTLS_AUTHZ_TOKEN_UNBOUND' | 'FST_MTLS_AUTHZ_TOKEN_MISMATCH' | null
  readonly identity: string | null
  readonly source: PeerIdentity['source'] | null
  readonly method: string
  /** The URL requested, as `request.url` has it. */
  readonly url: string
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
  /**
   * The verified access token's claims, for `boundToken` routes. Default: `request.user` (where @fastify/jwt puts
   * them). Return null or undefined when no token was verified: the request is refused.
   */
  getClaims?: (request: FastifyRequest) => unknown
  /**
   * OpenTelemetry: `mtls.authz.decision` and `mtls.authz.rule` on each recording request span, when @opentelemetry/api
   * is installed. Default: on when it is, silent when not; `true` also warns when it cannot be loaded; `false` turns it off.
   */
  openTelemetry?: boolean
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

type Denial = FastifyError & { headers?: Record<string, string> }

const kMtlsAuthorize = Symbol('fastify-mtls-authz.hook')
// Put in the config of the routes the plugin saw being added: whether the route guards itself with mtlsAuthorize().
const kSeen = Symbol('fastify-mtls-authz.seen')
const OPTIONS = ['policy', 'policyFile', 'hook', 'allowLogLevel', 'onDecision', 'getClaims', 'openTelemetry']
const LOG_LEVELS = new Set<unknown>(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])

/** A route's compiled rule, kept per route config. */
interface RouteEntry {
  readonly rule: RouteRule
  /** The route's pattern, for audit lines. */
  readonly route: string
  /** The route declares nothing and guards itself with fastify.mtlsAuthorize(): that hook decides. */
  readonly delegated: boolean
}

const fastifyMtlsAuthz: FastifyPluginAsync<FastifyMtlsAuthzOptions> = async (fastify: FastifyInstance, given: FastifyMtlsAuthzOptions) => {
  const options = snapshotOptions(given)
  const unknown = unknownOption(options, OPTIONS, 'fastify-mtls-authz')
  if (unknown !== null) throw new codes.FST_MTLS_AUTHZ_INVALID_OPTION(unknown)
  const hookName = options.hook ?? 'onRequest'
  if (hookName !== 'onRequest' && hookName !== 'preHandler') throw new codes.FST_MTLS_AUTHZ_INVALID_OPTION(`hook must be 'onRequest' or 'preHandler'; got ${JSON.stringify(hookName)}`)
  const allowLevel = options.allowLogLevel ?? 'info'
  if (!LOG_LEVELS.has(allowLevel)) throw new codes.FST_MTLS_AUTHZ_INVALID_OPTION(`allowLogLevel must be a log level; got ${JSON.stringify(allowLevel)}`)
  if (options.onDecision !== undefined && typeof options.onDecision !== 'function') throw new codes.FST_MTLS_AUTHZ_INVALID_OPTION('onDecision must be a function')
  if (options.policy !== undefined && options.policyFile !== undefined) throw new codes.FST_MTLS_AUTHZ_INVALID_OPTION('give policy or policyFile, not both')
  if (options.getClaims !== undefined && typeof options.getClaims !== 'function') throw new codes.FST_MTLS_AUTHZ_INVALID_OPTION('getClaims must be a function')
  if (options.openTelemetry !== undefined && typeof options.openTelemetry !== 'boolean') throw new codes.FST_MTLS_AUTHZ_INVALID_OPTION('openTelemetry must be true or false')
  const noteDecision = await decisionTelemetry(fastify, options.openTelemetry)
  const { onDecision } = options
  const getClaims = options.getClaims ?? ((request: FastifyRequest): unknown => (request as { user?: unknown }).user)
  // Whether a route or mtlsAuthorize() asks for a bound token, to check at ready() that something verifies tokens.
  let boundTokenWanted: string | null = null
  const noteBoundToken = (rule: RouteRule, where: string): void => { if (rule.boundToken) boundTokenWanted ??= where }

  // The one compiled policy in force. A request reads it once, so it never sees half of two policies.
  // A policy file goes through mtls-core's one reload protocol: read, validate, apply (swap it in), commit.
  const policySource = options.policyFile === undefined ? null : await policyFileSource(options.policyFile)
  let current: CompiledPolicy = policySource?.current ?? compilePolicy(options.policy ?? {})
  // An identity lives as long as its connection: what the policy says of it (its roles, a policy deny) is looked up
  // once per connection and policy; a request then makes one decision on the route's precompiled rule.
  const peerCache = new WeakMap<PeerIdentity, { policy: CompiledPolicy, peer: PeerPolicy }>()
  const peerOf = (identity: PeerIdentity | null, policy: CompiledPolicy): PeerPolicy | null => {
    if (identity === null) return null
    const cached = peerCache.get(identity)
    if (cached !== undefined && cached.policy === policy) return cached.peer
    const peer = peerPolicy(policy, identity)
    peerCache.set(identity, { policy, peer })
    return peer
  }

  // Roles that routes and mtlsAuthorize() require, to warn about those no ACL entry grants.
  const requiredRoles = new Set<string>()
  const requireRoles = (rule: RouteRule): void => { for (const role of [...rule.roles, ...rule.allRoles]) requiredRoles.add(role) }
  let ready = false
  const warnedRoles = new WeakMap<CompiledPolicy, Set<string>>()
  const warnUngrantedRoles = (): void => {
    const warned = warnedRoles.get(current) ?? new Set<string>()
    warnedRoles.set(current, warned)
    for (const role of requiredRoles) {
      if (current.grantedRoles.has(role) || warned.has(role)) continue
      warned.add(role)
      fastify.log.warn({ role }, `fastify-mtls-authz: role ${JSON.stringify(role)} is required by a route but no ACL entry grants it: every request there is refused (a misspelt role?)`)
    }
  }

  // Decides, writes the one audit line, and gives the denial as a FastifyError (with no stack), or null to go on.
  // With checkToken false, a bound-token route allowed on its identity is not audited yet: the decision so far is
  // kept for the preParsing hook, which checks the token and writes the one audit line.
  const decideAndAudit = (request: FastifyRequest, rule: RouteRule, route: string, checkToken = true): Denial | null | 'token' => {
    const policy = current
    const identity = rule.public ? null : request.peerIdentity
    let decision: Decision = decide(rule, policy, identity, peerOf(identity, policy))
    if (decision.allowed && rule.boundToken) {
      if (!checkToken) {
        pendingTokens.set(request, { identity: identity as PeerIdentity, decision, route })
        return 'token'
      }
      decision = boundTokenDecision(request, identity as PeerIdentity, decision)
    }
    return audit(request, identity, decision, route)
  }
  const pendingTokens = new WeakMap<FastifyRequest, { identity: PeerIdentity, decision: Decision, route: string }>()

  const boundTokenDecision = (request: FastifyRequest, identity: PeerIdentity, decision: Decision): Decision & { token?: ReturnType<typeof checkBoundToken> } => {
    let claims: unknown
    try {
      claims = getClaims(request)
    } catch (err) {
      request.log.error({ err }, 'fastify-mtls-authz: getClaims() threw; the request is refused')
      claims = null
    }
    const refusal = checkBoundToken(claims, identity)
    if (refusal === null) return { ...decision, rule: `${decision.rule}; token bound to this certificate` }
    return { allowed: false, status: 401, rule: refusal.reason, token: refusal }
  }

  const audit = (request: FastifyRequest, identity: PeerIdentity | null, decision: Decision & { token?: ReturnType<typeof checkBoundToken> }, route: string): Denial | null => {
    const denial: Denial | null = decision.allowed
      ? null
      : decision.token != null
        ? tokenDenial(decision.token.code, decision.token.reason, identity)
        : decision.status === 401
          ? new codes.FST_MTLS_AUTHZ_PEER_REQUIRED(request.peerCertificateError ?? 'ERR_MTLS_NO_PEER_CERTIFICATE')
          : new codes.FST_MTLS_AUTHZ_FORBIDDEN(identity?.id ?? 'anonymous', request.method, request.url)
    noteDecision(request, decision.allowed, decision.rule)
    const level = decision.allowed ? allowLevel : 'warn'
    if (onDecision !== undefined || (request.log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.(level) !== false) {
      const record: AuthzDecision = {
        decision: decision.allowed ? 'allow' : 'deny',
        status: decision.status,
        code: (denial?.code ?? null) as AuthzDecision['code'],
        identity: identity?.id ?? null,
        source: identity?.source ?? null,
        method: request.method,
        url: request.url,
        route,
        rule: decision.rule
      }
      request.log[level]({ mtlsAuthz: record }, denial === null ? 'mtls authz allow' : `mtls authz deny: ${denial.message}`)
      onDecision?.(record, request)
    }
    return denial
  }

  // Routes added after the plugin have their config.mtls checked here, at registration (a typo fails ready()).
  // A router of our own, beside Fastify's, serves explain(): Fastify's findRoute answers with a handler every
  // route shares, never with the route or its config. It is built on the first explain() (find-my-way is not
  // loaded for apps that never ask), with the app's own router options, so that both read a URL alike (trailing
  // slash, case, duplicate slashes, semicolons, parameter length); and it answers only for URLs the app routes.
  const routes: Array<{ methods: HTTPMethod[], route: string, rule: RouteRule }> = []
  let explainer: ReturnType<typeof Router> | null = null
  fastify.addHook('onRoute', (routeOptions: RouteOptions) => {
    const method = Array.isArray(routeOptions.method) ? routeOptions.method.join(',') : routeOptions.method
    const route = routeOptions.url
    const config = (routeOptions.config ?? {}) as object
    const rule = compileRouteRule(mtlsOf(config), `${method} ${route}`)
    requireRoles(rule)
    noteBoundToken(rule, `${method} ${route}`)
    routes.push({ methods: [routeOptions.method].flat() as HTTPMethod[], route, rule })
    explainer = null
    const hooks = [routeOptions.onRequest, routeOptions.preHandler].flat()
    const delegates = hooks.some(hook => typeof hook === 'function' && kMtlsAuthorize in hook)
    routeOptions.config = { ...config, [kSeen]: { delegates } } as never
  })

  // What decides is the route's config as Fastify holds it once every onRoute hook has run (a plugin registered
  // after this one may still set or tighten config.mtls), compiled on the route's first request and kept. A
  // config.mtls that does not compile refuses every request there (500), never opens the route.
  const entries = new WeakMap<object, RouteEntry | Error>()
  const entryOf = (request: FastifyRequest, config: { [kSeen]?: { delegates: boolean }, url?: string }): RouteEntry | Error => {
    let entry = entries.get(config)
    if (entry === undefined) {
      const route = request.is404 ? '(not found)' : config.url ?? request.url
      try {
        const rule = compileRouteRule(mtlsOf(config), `${request.method} ${route}`)
        // A route that declares nothing but guards itself with fastify.mtlsAuthorize() is left to that hook.
        entry = { rule, route, delegated: config[kSeen]?.delegates === true && !rule.declared }
        if (config[kSeen] === undefined) {
          requireRoles(rule)
          if (!request.is404) fastify.log.warn({ route }, `fastify-mtls-authz: route ${route} was added before the plugin: its config.mtls is compiled at its first request; register fastify-mtls-authz first to have it checked at startup`)
          warnUngrantedRoles()
        }
      } catch (err) {
        entry = err as Error
        fastify.log.error({ route, code: (err as { code?: string }).code }, `fastify-mtls-authz: every request to ${route} is refused: ${(err as Error).message}`)
      }
      entries.set(config, entry)
    }
    return entry
  }

  // One hook on the instance decides every route in it and in every plugin below it, added before or after
  // this plugin, awaited or not, the 404 handler too: Fastify hands instance hooks to all of its children.
  // A denial is answered here, with the body Fastify's default error handler gives a FastifyError, and not
  // handed to the error handler: the audit line is its one log line (the default handler would log every
  // 401/403 again at info, with the error), and the status cannot be lost to an error handler that forgets
  // reply.code(). The route handler never runs; onSend and onResponse hooks, response schemas and the reply
  // serializer apply as to any reply.
  fastify.addHook(hookName, function mtlsAuthzGuard (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    const entry = entryOf(request, request.routeOptions.config as object)
    if (entry instanceof Error) return done(entry)
    if (entry.delegated) return done()
    // At onRequest a token verifier registered after this plugin has not run yet: the token waits for preParsing.
    const denial = decideAndAudit(request, entry.rule, entry.route, hookName === 'preHandler')
    if (denial === null || denial === 'token') return done()
    answer(reply, denial)
  })

  // Bound tokens, with hook 'onRequest': checked at preParsing, after every onRequest hook (where @fastify/jwt's
  // jwtVerify() runs, whatever the registration order) and still before the body is read. No claims there: 401.
  if (hookName === 'onRequest') {
    fastify.addHook('preParsing', function mtlsAuthzBoundToken (request: FastifyRequest, reply: FastifyReply, payload: RequestPayload, done: (err?: Error | null, payload?: RequestPayload) => void) {
      const pending = pendingTokens.get(request)
      if (pending === undefined) return done(null, payload)
      pendingTokens.delete(request)
      const denial = audit(request, pending.identity, boundTokenDecision(request, pending.identity, pending.decision), pending.route)
      if (denial === null) return done(null, payload)
      answer(reply, denial)
    })
  }

  fastify.addHook('onReady', async () => {
    ready = true
    warnUngrantedRoles()
    // Without a verifier every bound-token request would be refused: say so now rather than with 401s in production.
    if (boundTokenWanted !== null && options.getClaims === undefined && !fastify.hasRequestDecorator('user')) {
      throw new codes.FST_MTLS_AUTHZ_INVALID_OPTION(`${boundTokenWanted} has boundToken but nothing verifies tokens: register @fastify/jwt (request.user) or give getClaims`)
    }
  })

  const swapPolicy = (policy: CompiledPolicy): void => {
    current = policy
    if (ready) warnUngrantedRoles()
  }
  const setPolicy = (policy: MtlsPolicy): void => { swapPolicy(compilePolicy(policy)) }
  policySource?.on('apply', swapPolicy)
  policySource?.on('update', () => { fastify.log.info({ file: options.policyFile }, 'fastify-mtls-authz: policy reloaded') })
  policySource?.on('error', err => {
    fastify.log.error({ file: options.policyFile, code: (err as { code?: string }).code }, `fastify-mtls-authz: policy file refused, the previous policy stays: ${err.message}`)
  })
  fastify.addHook('onClose', async () => { policySource?.close() })

  fastify.decorate('mtlsAuthz', {
    setPolicy,
    get policy () { return current.source },
    explain (identity: PeerIdentity | null, method: string, url: string): Explanation | null {
      if (fastify.findRoute({ method: method.toUpperCase() as HTTPMethod, url }) === null) return null
      explainer ??= routerOf(routes, routerOptionsOf(fastify.initialConfig))
      const entry = explainer.find(method.toUpperCase() as HTTPMethod, url)?.store as { rule: RouteRule, route: string } | undefined
      if (entry === undefined) return null
      return { ...decide(entry.rule, current, identity, peerOf(identity, current)), route: entry.route }
    },
    rolesOf: (identity: PeerIdentity) => [...(peerOf(identity, current) as PeerPolicy).roles]
  })
  fastify.decorate('mtlsAuthorize', (requirements: RouteMtlsConfig) => {
    const rule = compileRouteRule(requirements, 'mtlsAuthorize()')
    requireRoles(rule)
    noteBoundToken(rule, 'mtlsAuthorize()')
    // A hook hands its denial to whoever runs it (Fastify, or @fastify/auth composing strategies), as an error.
    const hook: MtlsAuthorizeHook = function mtlsAuthorize (request, _reply, done) {
      // Runs where the app puts it: a bound token is checked now, so put it after the token's verification.
      const denial = decideAndAudit(request, rule, 'mtlsAuthorize()') as Denial | null
      if (denial === null) done()
      else done(denial)
    }
    return Object.defineProperty(hook, kMtlsAuthorize, { value: true })
  })
}

// The body Fastify's default error handler gives a FastifyError, with RFC 6750's header for token denials.
function answer (reply: FastifyReply, denial: Denial): void {
  const status = denial.statusCode as number
  if (denial.headers !== undefined) reply.headers(denial.headers)
  reply.code(status).send({ statusCode: status, code: denial.code, error: STATUS_CODES[status], message: denial.message })
}

// RFC 8705 section 3 answers a token bound to another certificate as RFC 6750's invalid_token; the header goes with
// the error, so Fastify's error handler sends it too when mtlsAuthorize() hands the denial on.
function tokenDenial (code: 'FST_MTLS_AUTHZ_TOKEN_REQUIRED' | 'FST_MTLS_AUTHZ_TOKEN_UNBOUND' | 'FST_MTLS_AUTHZ_TOKEN_MISMATCH', reason: string, identity: PeerIdentity | null): Denial {
  const denial: Denial = code === 'FST_MTLS_AUTHZ_TOKEN_MISMATCH' ? new codes[code](identity?.id ?? 'anonymous') : new codes[code](reason)
  denial.headers = { 'www-authenticate': `Bearer error="invalid_token", error_description="${reason}"` }
  return denial
}

// Fastify's router options and their defaults: `routerOptions` where the app gave them, else the top-level
// options Fastify 5 still reads (a value given in neither is the default either way).
const ROUTER_DEFAULTS = { caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: 100, allowUnsafeRegex: false, useSemicolonDelimiter: false }
type RouterOptions = Partial<typeof ROUTER_DEFAULTS>

function routerOptionsOf (initialConfig: object): RouterOptions {
  const config = initialConfig as RouterOptions & { routerOptions?: RouterOptions }
  const options: Record<string, unknown> = {}
  for (const [key, fallback] of Object.entries(ROUTER_DEFAULTS) as Array<[keyof RouterOptions, unknown]>) {
    const nested = config.routerOptions?.[key]
    options[key] = nested !== undefined && nested !== fallback ? nested : config[key] ?? fallback
  }
  return options
}

function routerOf (routes: ReadonlyArray<{ methods: HTTPMethod[], route: string, rule: RouteRule }>, options: RouterOptions): ReturnType<typeof Router> {
  const router = (createRequire(import.meta.url)('find-my-way') as typeof Router)(options)
  for (const { methods, route, rule } of routes) {
    for (const method of methods) {
      if (router.hasRoute(method, route)) router.off(method, route)
      router.on(method, route, () => {}, { rule, route })
    }
  }
  return router
}

// A route's own config.mtls only: a polluted Object.prototype.mtls declares nothing.
function mtlsOf (config: object): RouteMtlsConfig | undefined {
  return Object.hasOwn(config, 'mtls') ? (config as { mtls?: RouteMtlsConfig }).mtls : undefined
}

/** The plugin, wrapped once; it needs `request.peerIdentity` from fastify-mtls-identity, registered first. */
export const plugin = fp(fastifyMtlsAuthz, {
  fastify: '5.x',
  name: 'fastify-mtls-authz',
  dependencies: ['fastify-mtls-identity'],
  decorators: { request: ['peerIdentity'] }
})
