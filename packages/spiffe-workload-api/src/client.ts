import * as grpc from '@grpc/grpc-js'
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js'
import { resolveWorkloadEndpoint, type WorkloadEndpoint } from './endpoint.js'
import { WorkloadApiError } from './errors.js'
import { checkOptionKeys, checkTimeout } from './option-keys.js'
import { toJwtBundles, toJwtSvid, type JwtBundles, type JwtSvid } from './jwt-bundles.js'
import {
  SECURITY_HEADER, fromRawStruct, workloadServiceDefinition, type RawJwtBundlesResponse, type RawJwtSvidResponse,
  type RawValidateJwtSvidResponse, type RawX509BundlesResponse, type RawX509SvidResponse
} from './proto.js'
import { StreamWatch, toWorkloadApiError, type Watch, type WatchListener } from './stream-watch.js'
import { toX509BundlesUpdate, toX509Context, type X509BundlesUpdate, type X509Context } from './x509-context.js'

export interface WorkloadApiClientOptions {
  /** `unix:///path/to/agent.sock` or `tcp://IP:port`. Default: the `SPIFFE_ENDPOINT_SOCKET` environment variable. */
  endpoint?: string
  /** Delays between reconnection attempts of a watch. Default: from 100 ms, doubling, up to 30 s, with jitter. */
  backoff?: BackoffOptions
}

const CLIENT_KEYS = ['endpoint', 'backoff'] as const satisfies ReadonlyArray<keyof WorkloadApiClientOptions>
const BACKOFF_KEYS = ['initialMs', 'maxMs'] as const satisfies ReadonlyArray<keyof BackoffOptions>

export function checkBackoff (backoff: BackoffOptions | undefined, where: string): void {
  if (backoff === undefined) return
  checkOptionKeys(backoff, BACKOFF_KEYS, `${where}.backoff`)
  for (const key of BACKOFF_KEYS) {
    const value = backoff[key]
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', `${where}: backoff.${key} must be a positive number of milliseconds; got ${String(value)}`)
    }
  }
  if ((backoff.initialMs ?? DEFAULT_BACKOFF.initialMs) > (backoff.maxMs ?? DEFAULT_BACKOFF.maxMs)) {
    throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', `${where}: backoff.initialMs must not exceed backoff.maxMs`)
  }
}

/**
 * A client of the SPIFFE Workload API. Each `watch…` method keeps one server stream open and reconnects it with
 * backoff; every call carries the `workload.spiffe.io: true` header.
 */
export class WorkloadApiClient {
  readonly endpoint: WorkloadEndpoint
  readonly #client: grpc.Client
  readonly #backoff: BackoffOptions | undefined
  readonly #watches = new Set<Watch>()
  #closed = false

  constructor (options: WorkloadApiClientOptions = {}) {
    checkOptionKeys(options, CLIENT_KEYS, 'WorkloadApiClient')
    checkBackoff(options.backoff, 'WorkloadApiClient')
    this.endpoint = resolveWorkloadEndpoint(options.endpoint)
    this.#backoff = options.backoff === undefined ? undefined : { ...options.backoff }
    this.#client = new grpc.Client(this.endpoint.target, grpc.credentials.createInsecure(), {
      // The channel's own reconnection must not lag behind the watches' backoff.
      'grpc.initial_reconnect_backoff_ms': this.#backoff?.initialMs ?? DEFAULT_BACKOFF.initialMs,
      'grpc.max_reconnect_backoff_ms': this.#backoff?.maxMs ?? DEFAULT_BACKOFF.maxMs
    })
  }

  /** Streams FetchX509SVID: every message, as an `X509Context`, to `listener.onUpdate`. */
  watchX509Context (listener: WatchListener<X509Context>): Watch {
    return this.#watch<RawX509SvidResponse, X509Context>('FetchX509SVID', toX509Context, listener)
  }

  /** Streams FetchX509Bundles: the trust bundles (own and federated) and CRLs, without SVIDs. */
  watchX509Bundles (listener: WatchListener<X509BundlesUpdate>): Watch {
    return this.#watch<RawX509BundlesResponse, X509BundlesUpdate>('FetchX509Bundles', toX509BundlesUpdate, listener)
  }

  /** The first X509Context the agent sends; rejects with the first error, or `ERR_MTLS_WORKLOAD_TIMEOUT`. */
  async fetchX509Context (options: { timeoutMs?: number } = {}): Promise<X509Context> {
    const timeoutMs = checkTimeout(options.timeoutMs ?? 10_000, 'fetchX509Context')
    return await this.#first(listener => this.watchX509Context(listener), 'X.509-SVID', timeoutMs)
  }

  /** Streams FetchJWTBundles: the JWT bundles (JWKS) of every trust domain, by trust domain name. */
  watchJWTBundles (listener: WatchListener<JwtBundles>): Watch {
    return this.#watch<RawJwtBundlesResponse, JwtBundles>('FetchJWTBundles', toJwtBundles, listener)
  }

  /** The first JWT bundles message; rejects with the first error, or `ERR_MTLS_WORKLOAD_TIMEOUT`. */
  async fetchJWTBundles (options: { timeoutMs?: number } = {}): Promise<JwtBundles> {
    const timeoutMs = checkTimeout(options.timeoutMs ?? 10_000, 'fetchJWTBundles')
    return await this.#first(listener => this.watchJWTBundles(listener), 'JWT bundles', timeoutMs)
  }

  // The first message of a stream (`what` names it in the timeout's message), then the stream is closed.
  async #first<T> (watch: (listener: WatchListener<T>) => Watch, what: string, timeoutMs: number): Promise<T> {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.close()
        reject(nothingInTime(this.endpoint, what, timeoutMs))
      }, timeoutMs)
      const stream = watch({
        onUpdate: update => { clearTimeout(timer); stream.close(); resolve(update) },
        onError: error => { clearTimeout(timer); stream.close(); reject(error) }
      })
    })
  }

  /**
   * FetchJWTSVID: JWT-SVIDs for `audience` (one or more), every SVID of the workload or only `subject`'s, or only
   * those labelled `hint`. Rejects with `ERR_MTLS_WORKLOAD_SVID_NOT_FOUND` when none is left.
   */
  async fetchJWTSVIDs (options: FetchJwtSvidOptions): Promise<JwtSvid[]> {
    const { audience, subject, hint, timeoutMs } = checkFetchJwtSvid(options, 'fetchJWTSVIDs')
    const raw = await this.#unary<RawJwtSvidResponse>('FetchJWTSVID', { audience, spiffeId: subject ?? '' }, timeoutMs)
    const receivedAt = new Date()
    const svids = raw.svids.map(svid => toJwtSvid(svid, receivedAt)).filter(svid => hint === undefined || svid.hint === hint)
    if (svids.length === 0) {
      throw new WorkloadApiError('ERR_MTLS_WORKLOAD_SVID_NOT_FOUND',
        `no JWT-SVID${subject === undefined ? '' : ` for ${subject}`}${hint === undefined ? '' : ` with hint ${JSON.stringify(hint)}`} among ${raw.svids.map(s => s.spiffeId).join(', ') || 'none'}`)
    }
    return svids
  }

  /** The first JWT-SVID `fetchJWTSVIDs` gives: the agent's default, or the one `subject` or `hint` chose. */
  async fetchJWTSVID (options: FetchJwtSvidOptions): Promise<JwtSvid> {
    return (await this.fetchJWTSVIDs(options))[0]!
  }

  /** ValidateJWTSVID: the agent validates `token` for `audience` and answers with its SPIFFE ID and claims. */
  async validateJWTSVID (options: { token: string, audience: string, timeoutMs?: number }): Promise<{ spiffeId: string, claims: Record<string, unknown> }> {
    checkOptionKeys(options, ['token', 'audience', 'timeoutMs'], 'validateJWTSVID')
    if (typeof options.token !== 'string' || options.token === '') throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', 'validateJWTSVID: token must be a non-empty string')
    if (typeof options.audience !== 'string' || options.audience === '') throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', 'validateJWTSVID: audience must be a non-empty string')
    const timeoutMs = checkTimeout(options.timeoutMs ?? 10_000, 'validateJWTSVID')
    const raw = await this.#unary<RawValidateJwtSvidResponse>('ValidateJWTSVID', { audience: options.audience, svid: options.token }, timeoutMs)
    return { spiffeId: raw.spiffeId, claims: fromRawStruct(raw.claims) }
  }

  async #unary<Response> (name: 'FetchJWTSVID' | 'ValidateJWTSVID', request: object, timeoutMs: number): Promise<Response> {
    if (this.#closed) throw new WorkloadApiError('ERR_MTLS_WORKLOAD_CLOSED', 'the Workload API client is closed')
    const method = workloadServiceDefinition()[name] as grpc.MethodDefinition<object, Response>
    return await new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, securityMetadata(),
        { deadline: Date.now() + timeoutMs }, (err, response) => {
          if (err != null) {
            reject(err.code === grpc.status.DEADLINE_EXCEEDED
              ? new WorkloadApiError('ERR_MTLS_WORKLOAD_TIMEOUT', `Workload API ${name}: no answer within ${timeoutMs} ms`, { grpcCode: err.code })
              : toWorkloadApiError(name, err))
          } else resolve(response as Response)
        })
    })
  }

  #watch<Raw, Update> (name: 'FetchX509SVID' | 'FetchX509Bundles' | 'FetchJWTBundles', convert: (raw: Raw) => Update, listener: WatchListener<Update>): Watch {
    if (this.#closed) throw new WorkloadApiError('ERR_MTLS_WORKLOAD_CLOSED', 'the Workload API client is closed')
    const method = workloadServiceDefinition()[name] as grpc.MethodDefinition<object, Raw>
    const watch = new StreamWatch<Raw, Update>({
      client: this.#client,
      method,
      name,
      request: {},
      metadata: securityMetadata,
      convert,
      backoff: this.#backoff,
      onClose: closed => this.#watches.delete(closed)
    }, listener)
    this.#watches.add(watch)
    return watch
  }

  /** Closes every watch and the channel. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    for (const watch of [...this.#watches]) watch.close()
    this.#client.close()
  }
}

/** What `fetchJWTSVID` asks for. */
export interface FetchJwtSvidOptions {
  /** The audience (or audiences) the token is for: the `aud` of the service it is sent to. */
  audience: string | readonly string[]
  /** The SPIFFE ID of the SVID wanted (the agent's `spiffe_id`). Default: every SVID, the agent's default first. */
  subject?: string
  /** Only the SVID the agent labels with this hint. */
  hint?: string
  /** Default: 10000. */
  timeoutMs?: number
}

const FETCH_JWT_KEYS = ['audience', 'subject', 'hint', 'timeoutMs'] as const satisfies ReadonlyArray<keyof FetchJwtSvidOptions>

/** Checks fetch options once, where they enter; audiences become a non-empty list of non-empty strings. */
export function checkFetchJwtSvid (options: FetchJwtSvidOptions, where: string): { audience: string[], subject: string | undefined, hint: string | undefined, timeoutMs: number } {
  checkOptionKeys(options, FETCH_JWT_KEYS, where)
  const audience = typeof options.audience === 'string' ? [options.audience] : Array.isArray(options.audience) ? [...options.audience as string[]] : null
  if (audience === null || audience.length === 0 || audience.some(aud => typeof aud !== 'string' || aud === '')) {
    throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', `${where}: audience must be a non-empty string or a non-empty list of them`)
  }
  for (const key of ['subject', 'hint'] as const) {
    const value = options[key]
    if (value !== undefined && (typeof value !== 'string' || value === '')) {
      throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', `${where}: ${key} must be a non-empty string`)
    }
  }
  return { audience, subject: options.subject, hint: options.hint, timeoutMs: checkTimeout(options.timeoutMs ?? 10_000, where) }
}

function securityMetadata (): grpc.Metadata {
  const metadata = new grpc.Metadata()
  metadata.set(SECURITY_HEADER, 'true')
  return metadata
}

/** `ERR_MTLS_WORKLOAD_TIMEOUT`: no `what` (an X.509-SVID, JWT bundles) came in time, with the last failure when there was one. */
export function nothingInTime (endpoint: WorkloadEndpoint, what: string, timeoutMs: number, lastError: WorkloadApiError | null = null): WorkloadApiError {
  return new WorkloadApiError('ERR_MTLS_WORKLOAD_TIMEOUT',
    `no ${what} from the Workload API at ${endpoint.target} within ${timeoutMs} ms` + (lastError === null ? '' : ` (last error: ${lastError.message})`),
    { cause: lastError ?? undefined })
}
