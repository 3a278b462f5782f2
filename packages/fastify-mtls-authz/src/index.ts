import { plugin } from './fastify-mtls-authz.js'

export { codes } from './errors.js'
export type { AuthzDecision, Explanation, FastifyMtlsAuthz, FastifyMtlsAuthzOptions, MtlsAuthorizeHook } from './fastify-mtls-authz.js'
export { compilePolicy, type CompiledPolicy, type MtlsPolicy } from './policy.js'
export type { MtlsRole, MtlsRoles, OneOfMtlsRoles } from './roles.js'
export type { RouteMtlsConfig } from './route-rule.js'

export { plugin as fastifyMtlsAuthz }
export default plugin
