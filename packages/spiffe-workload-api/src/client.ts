import * as grpc from '@grpc/grpc-js'
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js'
import { resolveWorkloadEndpoint, type WorkloadEndpoint } from './endpoint.js'
import { WorkloadApiError } from './errors.js'
import { checkOptionKeys, checkTimeout } from './option-keys.js'
import { SECURITY_HEADER, workloadServiceDefinition, type RawX509BundlesResponse, type RawX509SvidResponse } from './proto.js'
import { StreamWatch, type Watch, type WatchListener } from './stream-watch.js'
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
 * backoff; every call carries the `workload.spiffe.io: true` header. JWT-SVID calls are to come as more methods here.
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
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        watch.close()
        reject(noSvidInTime(this.endpoint, timeoutMs))
      }, timeoutMs)
      const watch = this.watchX509Context({
        onUpdate: context => {
          clearTimeout(timer)
          watch.close()
          resolve(context)
        },
        onError: error => {
          clearTimeout(timer)
          watch.close()
          reject(error)
        }
      })
    })
  }

  #watch<Raw, Update> (name: 'FetchX509SVID' | 'FetchX509Bundles', convert: (raw: Raw) => Update, listener: WatchListener<Update>): Watch {
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

function securityMetadata (): grpc.Metadata {
  const metadata = new grpc.Metadata()
  metadata.set(SECURITY_HEADER, 'true')
  return metadata
}

/** `ERR_MTLS_WORKLOAD_TIMEOUT`: no SVID came in time, with the last failure when there was one. */
export function noSvidInTime (endpoint: WorkloadEndpoint, timeoutMs: number, lastError: WorkloadApiError | null = null): WorkloadApiError {
  return new WorkloadApiError('ERR_MTLS_WORKLOAD_TIMEOUT',
    `no X.509-SVID from the Workload API at ${endpoint.target} within ${timeoutMs} ms` + (lastError === null ? '' : ` (last error: ${lastError.message})`),
    { cause: lastError ?? undefined })
}
