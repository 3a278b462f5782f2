export { MtlsAgent, createMtlsAgent, type AgentKeyExchange, type MtlsAgentStatus } from './agent.js'
export type { MtlsAgentOptions } from './agent-options.js'
export { MtlsClientError, ServerUnauthorizedError, type MtlsClientErrorCode } from './errors.js'
export type { ServerAuthorizer } from './server-authorizer.js'
