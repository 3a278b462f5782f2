import { plugin } from './fastify-mtls.js'

export { codes } from './errors.js'
export { FAILURE_REASONS, type HandshakeFailureReason, type HandshakeStats } from './handshake-stats.js'
export type { MetricsRegistry } from './metrics.js'
export type { TicketKeys } from './ticket-keys.js'
export type { CertificateStatus, FastifyMtls, FastifyMtlsOptions, MtlsStatus, ReloadResult } from './fastify-mtls.js'
export type { MtlsConnection } from './connection-records.js'
export type { OcspStapleStatus, OcspStaplingOptions } from './ocsp-stapling.js'
export type { CrlInUse, RevocationError, RevocationOptions, RevocationStatus } from './client-revocation.js'
export { loadServerTls, type MtlsMode, type ServerKeyExchange, type ServerTls, type ServerTlsOptions, type ServerTlsOverrides } from './server-tls.js'

export { plugin as fastifyMtls }
export default plugin
