import Fastify from 'fastify'
import { expectAssignable, expectError, expectType } from 'tsd'
import fastifyMtlsDefault, {
  codes,
  fastifyMtls,
  loadServerTls,
  type FastifyMtls,
  type HandshakeFailureReason,
  type HandshakeStats,
  type MtlsConnection,
  type MtlsMode,
  type MtlsStatus,
  type OcspStapleStatus,
  type OcspStaplingOptions,
  type ReloadResult,
  type RevocationOptions,
  type RevocationStatus,
  type ServerKeyExchange,
  type ServerTls
} from 'fastify-mtls'
import type { MaterialFeed, MaterialFeedReport } from 'mtls-core'

const serverTls = await loadServerTls({ certFile: 'c', keyFile: 'k', caFile: 'ca', crlFile: 'crl', mode: 'optional', minVersion: 'TLSv1.3', tlsOptions: { ciphers: 'x' } })
expectType<ServerTls>(serverTls)
expectType<MtlsMode>(serverTls.mode)
expectError(loadServerTls({ certFile: 'c', mode: 'permissive' }))
expectError(loadServerTls({ certFile: 'c', minVersion: 'TLSv1.1' }))
expectError(loadServerTls({ certFile: 'c', tlsOptions: { cert: 'x' } }))

const app = Fastify({ https: serverTls.httpsOptions })
expectType<typeof fastifyMtls>(fastifyMtlsDefault)
await app.register(fastifyMtls, { tls: serverTls, watch: { debounceMs: 50 }, sighup: true, expiryWarningDays: [30, 7], reloadFailureWindowMs: 60_000 })
expectError(app.register(fastifyMtls, { tls: serverTls, watch: 'yes' }))
expectError(app.register(fastifyMtls, { tls: serverTls, sighub: true }))
await app.register(fastifyMtls, { tls: serverTls, openTelemetry: false })
expectError(app.register(fastifyMtls, { tls: serverTls, openTelemetry: 'on' }))
expectError(app.register(fastifyMtls, { tls: serverTls, watch: { debounceMS: 50 } }))
await app.register(fastifyMtls, { tls: serverTls, refusalLogIntervalMs: 10_000 })
expectError(app.register(fastifyMtls, { tls: serverTls, refusalLogIntervalMs: '10s' }))
expectError(loadServerTls({ certFile: 'c', crlfile: 'crl' }))
expectError(app.register(fastifyMtls, {}))
declare const registry: import('prom-client').Registry
await app.register(fastifyMtls, { tls: serverTls, metrics: { registry, prefix: 'edge_' } })
expectError(app.register(fastifyMtls, { tls: serverTls, metrics: { registry: {} } }))
expectType<Promise<ServerTls>>(loadServerTls({ cert: '', key: '', ca: '', ticketKeysFile: '/run/ticket.key' }))

expectType<FastifyMtls>(app.mtls)
expectType<Promise<ReloadResult>>(app.mtls.reload())
expectType<MtlsStatus>(app.mtls.status())
expectType<number>(app.mtls.status().certificate.daysToExpiry)
expectType<HandshakeStats>(app.mtls.stats())
expectType<number>(app.mtls.stats().failures.unknown_ca)
expectError(app.mtls.stats().failures.nope)
expectType<Promise<boolean>>(app.mtls.healthCheck())
app.get('/who', async request => {
  const connection = app.mtls.connection(request.raw.socket)
  expectType<MtlsConnection | null>(connection)
  if (connection !== null) {
    expectType<boolean>(connection.verified)
    expectType<string | null>(connection.refusal)
    expectType<Buffer | null>(connection.certificate)
    expectType<number>(connection.validUntil)
    expectType<boolean>(connection.resumed)
    expectError(connection.verified = true)
  }
  return null
})
expectAssignable<HandshakeFailureReason>('ca_as_leaf')
expectType<'FST_MTLS_RELOAD_FAILED'>(new codes.FST_MTLS_RELOAD_FAILED('x').code)

// A material feed (spiffe-workload-api's X509Source) instead of files; its state in status().
declare const feed: MaterialFeed
expectType<Promise<ServerTls>>(loadServerTls({ x509Source: feed, mode: 'require' }))
expectError(loadServerTls({ x509Source: { materialInput: {} } }))
expectType<MaterialFeedReport | null>(app.mtls.status().x509Source)

// Post-quantum key exchange: a boolean option; status reports the configured groups (a server cannot see the agreed one).
const postQuantum = await loadServerTls({ certFile: 'c', keyFile: 'k', caFile: 'ca', requirePostQuantum: true })
expectType<ServerKeyExchange>(postQuantum.keyExchange)
expectError(loadServerTls({ certFile: 'c', requirePostQuantum: 'yes' }))
expectType<ServerKeyExchange>(app.mtls.status().keyExchange)
expectType<readonly string[] | null>(app.mtls.status().keyExchange.groups)
expectType<boolean>(app.mtls.status().keyExchange.postQuantumRequired)
expectError(app.mtls.status().keyExchange.group)
expectAssignable<Error>(new codes.FST_MTLS_POST_QUANTUM_UNSUPPORTED('needs OpenSSL 3.5'))

// OCSP stapling
await app.register(fastifyMtls, { tls: serverTls, ocspStapling: true })
await app.register(fastifyMtls, { tls: serverTls, ocspStapling: { url: 'http://127.0.0.1:8888/', refreshBefore: 60_000, failMode: 'open', timeoutMs: 2000 } })
expectError(app.register(fastifyMtls, { tls: serverTls, ocspStapling: { failMode: 'maybe' } }))
expectError(app.register(fastifyMtls, { tls: serverTls, ocspStapling: 'yes' }))
expectType<OcspStapleStatus | null>(app.mtls.status().ocsp)
expectAssignable<OcspStaplingOptions>({ failMode: 'closed' })
await app.register(fastifyMtls, { tls: serverTls, revocation: { ocsp: true } })
await app.register(fastifyMtls, { tls: serverTls, revocation: { ocsp: true, failMode: 'open', timeoutMs: 2000, maxResponders: 4, allowHttps: true } })
expectError(app.register(fastifyMtls, { tls: serverTls, revocation: { ocsp: true, failMode: 'maybe' } }))
expectError(app.register(fastifyMtls, { tls: serverTls, revocation: true }))
await app.register(fastifyMtls, { tls: serverTls, revocation: { crlDistributionPoints: true, maxCrlBytes: 1 << 20, crlRefreshMs: 600_000 } })
await app.register(fastifyMtls, { tls: serverTls, revocation: { ocsp: true, crlDistributionPoints: true } })
expectError(app.register(fastifyMtls, { tls: serverTls, revocation: { crlDistributionPoints: 'yes' } }))
expectError(app.register(fastifyMtls, { tls: serverTls, revocation: { crlDistributionPoint: true } }))
expectError(app.register(fastifyMtls, { tls: serverTls, revocation: { ocsp: true, crlRefreshMs: '1h' } }))
expectType<RevocationStatus | null>(app.mtls.status().revocation)
expectType<number>((app.mtls.status().revocation as RevocationStatus).ocsp.pending)
expectType<Date | undefined>((app.mtls.status().revocation as RevocationStatus).crl?.distributionPoints[0]?.nextFetchAt)
expectAssignable<RevocationOptions>({ ocsp: true, failMode: 'closed' })
