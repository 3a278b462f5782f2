import type { KeyObject } from 'node:crypto'
import { expectAssignable, expectError, expectType } from 'tsd'
import {
  WorkloadApiClient, WorkloadApiError, X509Source, createX509Source, parseWorkloadEndpoint, svidToPem,
  type Watch, type WorkloadApiErrorCode, type WorkloadEndpoint, type X509BundlesUpdate, type X509Context, type X509Material,
  type X509SourceStatus, type X509Svid, JwtSource, createJWTSource, validateJwtSvid, type JwtBundles, type JwtSourceStatus, type JwtSvid,
  type ValidatedJwtSvid, BundleSource, FederatedBundleSource, createBundleSource, createFederatedBundleSource, fetchBundle,
  formatSpiffeBundle, parseSpiffeBundle, type BundleSourceStatus, type FederatedBundleSourceStatus, type SpiffeBundle
} from 'spiffe-workload-api'
import { bundleEndpoint } from 'spiffe-workload-api/bundle-endpoint'
import Fastify from 'fastify'
import { loadServerTls } from 'fastify-mtls'
import { TestWorkloadApi, jwksOf, pemToDer, svidMessage } from 'spiffe-workload-api/testing'
import type { MaterialFeed, MaterialInput } from 'mtls-core'

const source = await createX509Source({ endpoint: 'unix:///run/spire/agent.sock', timeoutMs: 5000, backoff: { initialMs: 100, maxMs: 30_000 } })
expectType<X509Source>(source)
await createX509Source({ pick: 'spiffe://example.org/a' })
await createX509Source({ pick: svids => svids.find(svid => svid.hint === 'internal') })
expectError(createX509Source({ pick: 42 }))
expectError(createX509Source({ timeout: 5 }))
expectError(createX509Source({ backoff: { initial: 5 } }))

expectType<X509Material>(source.current)
expectType<string>(source.current.svid.spiffeId)
expectType<readonly Buffer[]>(source.current.svid.certificates)
expectType<KeyObject>(source.current.svid.privateKey)
expectType<ReadonlyMap<string, readonly Buffer[]>>(source.current.bundles)
expectType<X509SourceStatus>(source.status())
expectType<Date | null>(source.status().lastUpdate)
expectType<WorkloadApiError | null>(source.status().lastError)
source.on('update', material => expectType<X509Material>(material))
source.on('error', error => expectType<WorkloadApiErrorCode>(error.code))
expectError(source.on('updated', () => {}))
expectType<void>(source.close())

const client = new WorkloadApiClient({ endpoint: 'tcp://127.0.0.1:8081' })
expectType<WorkloadEndpoint>(client.endpoint)
const watch = client.watchX509Context({ onUpdate: context => expectType<X509Context>(context), onError: (error, retrying) => { expectType<WorkloadApiError>(error); expectType<boolean>(retrying) } })
expectType<Watch>(watch)
expectType<number>(watch.reconnects)
client.watchX509Bundles({ onUpdate: update => expectType<X509BundlesUpdate>(update) })
expectType<Promise<X509Context>>(client.fetchX509Context({ timeoutMs: 1000 }))
expectError(client.watchX509Context({}))
expectType<WorkloadEndpoint>(parseWorkloadEndpoint('unix:///a.sock'))
expectAssignable<{ cert: string, key: string, ca: string }>(svidToPem({} as X509Svid))
expectType<number | null>(new WorkloadApiError('ERR_MTLS_WORKLOAD_TIMEOUT', 'x').grpcCode)
expectError(new WorkloadApiError('ERR_MTLS_WORKLOAD_NOPE', 'x'))

// An X509Source is an mtls-core MaterialFeed: what loadServerTls and createMtlsAgent take as x509Source.
expectAssignable<MaterialFeed>(source)
expectType<MaterialInput>(source.materialInput)
expectType<string>(source.status().endpoint)

// spiffe-workload-api/testing
const agent = await TestWorkloadApi.start({ tcp: true })
expectType<string>(agent.endpoint)
agent.setX509({ svids: [svidMessage('spiffe://example.org/a', { chain: '', key: '', ca: '' })], federatedBundles: { 'example.org': Buffer.alloc(0) } })
expectType<Buffer[]>(pemToDer(''))
expectType<Promise<void>>(agent.close())
expectError(TestWorkloadApi.start({ tcp: 'yes' }))

// JWT-SVIDs
const jwtSource = await createJWTSource({ endpoint: 'unix:///run/spire/agent.sock', timeoutMs: 5000, clockToleranceSec: 10 })
expectType<JwtSource>(jwtSource)
expectError(createJWTSource({ audience: 'x' }))
expectType<JwtSvid>(await jwtSource.fetchJWTSVID({ audience: 'spiffe://example.org/b', hint: 'internal' }))
expectType<string>((await jwtSource.fetchJWTSVID({ audience: ['a', 'b'], subject: 'spiffe://example.org/a' })).token)
expectError(jwtSource.fetchJWTSVID({}))
expectError(jwtSource.fetchJWTSVID({ audience: 1 }))
expectType<JwtSvid | null>(jwtSource.cachedJWTSVID({ audience: 'a' }))
expectType<JwtBundles>(jwtSource.bundles)
expectType<ValidatedJwtSvid>(await jwtSource.validateJWTSVID('token', 'aud'))
expectType<JwtSourceStatus>(jwtSource.status())
expectType<number>(jwtSource.status().tokens)
jwtSource.on('update', bundles => expectType<JwtBundles>(bundles))
expectType<ValidatedJwtSvid>(await validateJwtSvid('token', { audience: 'a', bundles: jwtSource.bundles }))
expectError(validateJwtSvid('token', { audience: 'a' }))
expectType<Promise<JwtSvid[]>>(client.fetchJWTSVIDs({ audience: 'a' }))
expectType<Promise<JwtBundles>>(client.fetchJWTBundles())
expectType<Promise<{ spiffeId: string, claims: Record<string, unknown> }>>(client.validateJWTSVID({ token: 't', audience: 'a' }))
client.watchJWTBundles({ onUpdate: bundles => expectType<JwtBundles>(bundles) })
await createX509Source({ pick: { hint: 'internal' } })
expectError(createX509Source({ pick: { hint: 1 } }))
agent.setJwtSvids([{ spiffeId: 'spiffe://example.org/a', key: {} as KeyObject, kid: 'k', hint: 'h', lifetimeSeconds: 60 }])
agent.setJwtBundles({ 'example.org': jwksOf([{ key: {} as KeyObject, kid: 'k' }]) })
expectType<number>(agent.jwtIssued)

// Bundles and federation.
const spiffeBundle = parseSpiffeBundle('{"keys":[]}', 'partner.example')
expectType<SpiffeBundle>(spiffeBundle)
expectType<number | null>(spiffeBundle.sequence)
expectType<string>(formatSpiffeBundle({ x509Authorities: [Buffer.alloc(0)], sequence: 1, refreshHintSeconds: 300 }))
expectError(formatSpiffeBundle({ sequence: '1' }))
expectType<SpiffeBundle>(await fetchBundle({ url: 'https://x', trustDomain: 'td', profile: 'https_web', ca: 'PEM' }))
expectType<SpiffeBundle>(await fetchBundle({ url: 'https://x', trustDomain: 'td', profile: 'https_spiffe', endpointSpiffeId: 'spiffe://td/b', bundle: spiffeBundle }))
expectError(fetchBundle({ url: 'https://x', trustDomain: 'td', profile: 'https_spiffe' }))
expectError(fetchBundle({ url: 'https://x', trustDomain: 'td', profile: 'https_web', endpointSpiffeId: 'spiffe://td/b' }))
expectError(fetchBundle({ url: 'https://x', trustDomain: 'td', profile: 'https' }))
const federated = await createFederatedBundleSource({ url: 'https://x', trustDomain: 'td', profile: 'https_web', minRefreshMs: 1000, maxRefreshMs: 60_000, defaultRefreshMs: 300_000, startTimeoutMs: 5000 })
expectType<FederatedBundleSource>(federated)
expectType<FederatedBundleSourceStatus>(federated.status())
federated.on('update', bundle => expectType<SpiffeBundle>(bundle))
federated.on('error', error => expectType<WorkloadApiError>(error))
const bundleSource = createBundleSource({ x509Source: await createX509Source(), federation: [federated] })
expectType<BundleSource>(bundleSource)
expectType<readonly Buffer[] | undefined>(bundleSource.getX509Bundle('td'))
expectType<JwtBundles>(bundleSource.jwtBundles)
expectType<boolean>(bundleSource.removeFederation('td'))
expectType<BundleSourceStatus>(bundleSource.status())
expectError(createBundleSource({ federation: federated }))
await loadServerTls({ x509Source: bundleSource, mode: 'optional' })
const fastifyApp = Fastify()
await fastifyApp.register(bundleEndpoint, { source: bundleSource, trustDomain: 'td', path: '/bundle', refreshHintSeconds: 60 })
expectError(fastifyApp.register(bundleEndpoint, { source: bundleSource }))
