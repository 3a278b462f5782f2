import Fastify, { type FastifyContextConfig } from 'fastify'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import fastifyMtlsAuthzDefault, { fastifyMtlsAuthz, type AuthzDecision, type Explanation, type MtlsAuthorizeHook, type MtlsRole, type OneOfMtlsRoles, type RouteMtlsConfig } from 'fastify-mtls-authz'
import type { PeerIdentity } from 'fastify-mtls-identity'

// A user who declares their roles gets a compile error for a misspelt one.
declare module 'fastify-mtls-authz' {
  interface MtlsRoles {
    'payments:charge': true
    'payments:read': true
  }
}

expectType<'payments:charge' | 'payments:read'>({} as MtlsRole)
expectType<typeof fastifyMtlsAuthz>(fastifyMtlsAuthzDefault)

const app = Fastify()
await app.register(fastifyMtlsAuthz, {
  policy: {
    acl: [{ identities: ['spiffe://mycompany.com/production/order-service'], roles: ['payments:charge'] }],
    deny: ['spiffe://partner.org/**'],
    defaultPolicy: 'deny'
  },
  hook: 'onRequest',
  allowLogLevel: 'debug',
  onDecision: (decision, request) => {
    expectType<AuthzDecision>(decision)
    expectType<'FST_MTLS_AUTHZ_PEER_REQUIRED' | 'FST_MTLS_AUTHZ_FORBIDDEN' | 'FST_MTLS_AUTHZ_TOKEN_REQUIRED' | 'FST_MTLS_AUTHZ_TOKEN_UNBOUND' | 'FST_MTLS_AUTHZ_TOKEN_MISMATCH' | null>(decision.code)
    expectType<string>(decision.url)
    expectType<PeerIdentity | null>(request.peerIdentity)
  }
})
expectError(app.register(fastifyMtlsAuthz, { policy: { acl: [{ identities: ['x'], roles: ['payments:chrage'] }] } }))
expectError(app.register(fastifyMtlsAuthz, { policy: { defaultPolicy: 'maybe' } }))
expectError(app.register(fastifyMtlsAuthz, { hook: 'onSend' }))
expectError(app.register(fastifyMtlsAuthz, { openTelemetry: 'on' }))

app.post('/charge', { config: { mtls: { roles: ['payments:charge'] } } }, async () => 'ok')
app.get('/read', { config: { mtls: { allRoles: ['payments:read'], allow: ['spiffe://x/**'], deny: ['dns:evil.example'] } } }, async () => 'ok')
app.get('/health', { config: { mtls: { public: true } } }, async () => 'ok')
app.get('/bound', { config: { mtls: { roles: ['payments:read'], boundToken: true } } }, async () => 'ok')
app.get('/hooked-bound', { preHandler: app.mtlsAuthorize({ boundToken: true }) }, async () => 'ok')
expectError(app.get('/bound-typo', { config: { mtls: { boundToken: 'yes' } } }, async () => 'ok'))
await app.register(fastifyMtlsAuthz, { getClaims: request => request.headers.authorization })
await app.register(fastifyMtlsAuthz, { openTelemetry: false })
expectError(app.register(fastifyMtlsAuthz, { getClaims: 'user' }))
expectError(app.post('/typo', { config: { mtls: { roles: ['payments:chrage'] } } }, async () => 'ok'))
expectError(app.get('/typo2', { config: { mtls: { allRoles: ['admin'] } } }, async () => 'ok'))
expectError(app.post('/typo3', { config: { mtls: { roles: ['payments:charge', 'payments:chrage'] } } }, async () => 'ok'))
expectError(app.route({ method: 'POST', url: '/typo4', config: { mtls: { roles: ['payments:chrage'] } }, handler: async () => 'ok' }))
expectAssignable<NonNullable<FastifyContextConfig['mtls']>>({ roles: ['payments:charge'], allRoles: ['payments:read'] })
expectNotAssignable<NonNullable<FastifyContextConfig['mtls']>>({ roles: ['payments:chrage'] })
expectAssignable<RouteMtlsConfig>({ roles: ['payments:read'] })
expectNotAssignable<RouteMtlsConfig>({ allRoles: ['payments:reed'] })
// Fastify infers a route's config from the literal and intersects it with FastifyContextConfig: a misspelt role is
// checked against this type, which the error prints, declared roles included: `Type '"payments:chrage"' is not
// assignable to type 'OneOfMtlsRoles<"payments:charge" | "payments:read"> & "payments:chrage"'` (not `never`).
type RouteRole = NonNullable<NonNullable<FastifyContextConfig['mtls']>['roles']>[number]
expectType<OneOfMtlsRoles<'payments:charge' | 'payments:read'> & 'payments:chrage'>({} as RouteRole & 'payments:chrage')
expectAssignable<RouteRole & 'payments:charge'>('payments:charge')
expectType<'payments:charge' | 'payments:read'>({} as OneOfMtlsRoles<MtlsRole>['a role declared in MtlsRoles'])

expectType<MtlsAuthorizeHook>(app.mtlsAuthorize({ roles: ['payments:read'] }))
expectError(app.mtlsAuthorize({ roles: ['payments:write'] }))
app.get('/hooked', { onRequest: app.mtlsAuthorize({ roles: ['payments:read'] }) }, async () => 'ok')

declare const identity: PeerIdentity
expectType<Explanation | null>(app.mtlsAuthz.explain(identity, 'GET', '/read'))
expectType<string[]>(app.mtlsAuthz.rolesOf(identity))
app.mtlsAuthz.setPolicy({ acl: [{ identities: ['spiffe://x/**'], roles: ['payments:read'] }] })
expectError(app.mtlsAuthz.setPolicy({ acl: [{ identities: ['spiffe://x/**'], roles: ['payments:reed'] }] }))
expectAssignable<200 | 401 | 403>(app.mtlsAuthz.explain(null, 'GET', '/')!.status)
