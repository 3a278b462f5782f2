export { MtlsAgent, createMtlsAgent, type MtlsAgentOptions, type MtlsAgentStatus, type ServerAuthorizer } from './agent.js'
export { MtlsClientError, ServerUnauthorizedError, type MtlsClientErrorCode } from './errors.js'
