import { plugin } from './plugin.js'

export { codes } from './errors.js'
export type { AuthzDecision, Explanation, FastifyMtlsAuthz, FastifyMtlsAuthzOptions, MtlsAuthorizeHook } from './plugin.js'
export { compilePolicy, type CompiledPolicy, type MtlsPolicy } from './policy.js'
export type { MtlsRole, MtlsRoles } from './roles.js'
export type { RouteMtlsConfig } from './route-rule.js'

export { plugin as fastifyMtlsAuthz }
export default plugin
