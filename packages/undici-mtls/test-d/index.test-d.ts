import { expectAssignable, expectError, expectType } from 'tsd'
import { Dispatcher, Pool, fetch, request } from 'undici'
import type { MaterialFeed, MaterialFeedReport, PeerIdentity } from 'mtls-core'
import { jwtSvidInterceptor, MtlsAgent, MtlsClientError, ServerUnauthorizedError, createMtlsAgent, openTelemetryRequestHook, type AgentKeyExchange, type TelemetrySpan, type MtlsAgentStatus, type MtlsClientErrorCode, type ServerAuthorizer, type MtlsAgentOptions, type AgentOcspStatus, type OcspMode, type ServerStaple } from 'undici-mtls'

const agent = await createMtlsAgent({
  certFile: 'tls.crt',
  keyFile: 'tls.key',
  caFile: 'ca.crt',
  server: 'spiffe://mycompany.com/production/payment-service',
  verifyHostname: false,
  watch: { debounceMs: 50 },
  maxCachedSessions: 10,
  agent: { connections: 4, allowH2: true, headersTimeout: 5000 }
})
expectType<MtlsAgent>(agent)
expectAssignable<Dispatcher>(agent)
await createMtlsAgent({ cert: '', key: '', ca: [''], server: ['spiffe://a/b', 'sha256:00'] })
await createMtlsAgent({ cert: '', key: '', ca: '', server: (identity: PeerIdentity) => identity.spiffeId?.trustDomain === 'a' })
expectError(createMtlsAgent({ cert: '', key: '', ca: '', server: 42 }))
// Only `true` approves a server: a function that may return nothing, or a Promise, does not type-check.
expectError(createMtlsAgent({ cert: '', key: '', ca: '', server: (identity: PeerIdentity) => { console.log(identity.id) } }))
expectError(createMtlsAgent({ cert: '', key: '', ca: '', server: (identity: PeerIdentity) => identity.spiffeId === null ? false : undefined }))
expectError(createMtlsAgent({ cert: '', key: '', ca: '', server: async () => true }))
expectAssignable<ServerAuthorizer>((identity: PeerIdentity) => identity.id === 'spiffe://a/b')
expectError(createMtlsAgent({ cert: '', key: '', ca: '', sever: 'spiffe://a/b' }))
expectError(createMtlsAgent({ cert: '', key: '', ca: '', watch: { debounceMS: 50 } }))
expectError(createMtlsAgent({ cert: '', key: '', ca: '', minVersion: 'TLSv1' }))
expectError(createMtlsAgent({ cert: '', key: '', ca: '', agent: { connect: {} } }))

await request('https://x', { dispatcher: agent })
await fetch('https://x', { dispatcher: agent })
const pool = new Pool('https://x', { connect: agent.connector })
expectAssignable<Dispatcher>(pool)
expectType<MtlsAgentStatus>(agent.status())
expectType<Promise<{ changed: boolean, fingerprint256: string, thumbprintS256: string }>>(agent.reload())
expectType<string>(agent.status().certificate.thumbprintS256)
expectType<Promise<void>>(agent.close())

const error = new ServerUnauthorizedError('a', 'b')
expectType<string>(error.expected)
expectAssignable<MtlsClientError>(error)
expectType<MtlsClientErrorCode>(error.code)

// A material feed (spiffe-workload-api's X509Source) instead of files; its state in status().
declare const feed: MaterialFeed
const fed = await createMtlsAgent({ x509Source: feed, verifyHostname: false, server: 'spiffe://mycompany.com/production/payment-service' })
expectType<MaterialFeedReport | null>(fed.status().x509Source)
expectError(createMtlsAgent({ x509Source: 'unix:///run/spire/agent.sock' }))
await createMtlsAgent({ cert: '', key: '', trustDomains: { 'mycompany.com': '', 'partner.example': ['', Buffer.alloc(0)] } })

// The requestHook of @opentelemetry/instrumentation-undici: any span with isRecording and setAttributes.
expectType<(span: TelemetrySpan, request: object) => void>(openTelemetryRequestHook)
expectError(openTelemetryRequestHook({}, {}))

// Post-quantum key exchange: a boolean option; status reports the groups and the one the latest connection agreed.
const postQuantum = await createMtlsAgent({ cert: '', key: '', ca: '', requirePostQuantum: true })
expectError(createMtlsAgent({ cert: '', key: '', ca: '', requirePostQuantum: 'yes' }))
expectType<AgentKeyExchange>(postQuantum.status().keyExchange)
expectType<string | null>(postQuantum.status().keyExchange.lastGroup)
expectType<readonly string[] | null>(postQuantum.status().keyExchange.groups)
expectType<boolean>(postQuantum.status().keyExchange.postQuantumRequired)
expectType<string | null>(postQuantum.negotiatedGroup({}))
expectAssignable<MtlsClientErrorCode>('ERR_MTLS_POST_QUANTUM_UNSUPPORTED')
expectAssignable<MtlsClientErrorCode>('ERR_MTLS_SERVER_NOT_POST_QUANTUM')

// jwtSvidInterceptor: a JwtSource-shaped fetcher and an audience; its result composes onto any dispatcher.
const jwtFetcher = { fetchJWTSVID: async (_options: { audience: string }) => ({ token: 'a.b.c', spiffeId: 'spiffe://td/a' }) }
expectType<Dispatcher.DispatcherComposeInterceptor>(jwtSvidInterceptor({ source: jwtFetcher, audience: 'spiffe://td/b' }))
declare const someAgent: MtlsAgent
expectAssignable<Dispatcher>(someAgent.compose(jwtSvidInterceptor({ source: jwtFetcher, audience: 'x', header: 'x-jwt-svid' })))
expectError(jwtSvidInterceptor({ source: jwtFetcher }))
expectError(jwtSvidInterceptor({ source: { fetchJWTSVID: () => 'token' }, audience: 'x' }))
expectAssignable<MtlsClientErrorCode>('ERR_MTLS_CLIENT_JWT_SVID_UNAVAILABLE')

// ocsp: one of three modes; status().ocsp reports the mode, the last staple and the latest refusal.
expectAssignable<MtlsAgentOptions>({ cert: '', key: '', ca: '', ocsp: 'require' })
expectAssignable<MtlsAgentOptions>({ cert: '', key: '', ca: '', ocsp: 'off' })
expectError(createMtlsAgent({ cert: '', key: '', ca: '', ocsp: true }))
expectError(createMtlsAgent({ cert: '', key: '', ca: '', ocsp: 'required' }))
expectType<AgentOcspStatus>(agent.status().ocsp)
expectType<OcspMode>(agent.status().ocsp.mode)
expectType<ServerStaple | null>(agent.status().ocsp.lastStaple)
expectType<'good' | 'revoked' | 'unknown' | undefined>(agent.status().ocsp.lastStaple?.status)
expectType<string | undefined>(agent.status().ocsp.lastError?.code)
