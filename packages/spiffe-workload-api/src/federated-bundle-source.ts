import { EventEmitter } from 'node:events'
import { Backoff, type BackoffOptions } from './backoff.js'
import { checkBundleRequest, fetchCheckedBundle, type BundleRequest, type FetchBundleSpiffeOptions, type FetchBundleWebOptions } from './bundle-fetch.js'
import { checkBackoff } from './client.js'
import { WorkloadApiError } from './errors.js'
import { FirstUpdate, started } from './first-update.js'
import { checkTimeout } from './option-keys.js'
import type { SpiffeBundle } from './spiffe-bundle.js'

interface RefreshOptions {
  /** How long `createFederatedBundleSource` waits for the first bundle. Default: 30000. */
  startTimeoutMs?: number
  /** Refresh interval when the bundle gives no `spiffe_refresh_hint`. Default: 300000 (5 minutes). */
  defaultRefreshMs?: number
  /** The shortest refresh interval, whatever the hint says. Default: 10000. */
  minRefreshMs?: number
  /** The longest refresh interval, whatever the hint says. Default: 3600000 (1 hour). */
  maxRefreshMs?: number
  /** Delays between attempts after a failed fetch. Default: from 1 s, doubling, up to 5 minutes, with jitter. */
  backoff?: BackoffOptions
}

/** A trust domain's bundle kept current from its bundle endpoint. For `https_spiffe`, `bundle` is the endpoint trust domain's bundle we hold. */
export type FederatedBundleSourceOptions = (FetchBundleWebOptions & RefreshOptions) | (FetchBundleSpiffeOptions & RefreshOptions)

export interface FederatedBundleSourceStatus {
  readonly trustDomain: string
  readonly url: string
  readonly profile: 'https_web' | 'https_spiffe'
  /** The bundle in force has been fetched, and the last fetch succeeded. */
  readonly connected: boolean
  /** When a fetch last succeeded. */
  readonly lastFetch: Date | null
  /** When the bundle in force last changed. */
  readonly lastUpdate: Date | null
  /** The `spiffe_sequence` of the bundle in force (`null`: none, or no bundle yet). */
  readonly sequence: number | null
  /** When the next fetch is due. */
  readonly nextRefresh: Date | null
  /** Failed fetches since the last good one. */
  readonly failures: number
  /** The last failure; `null` again once a fetch succeeds. */
  readonly lastError: WorkloadApiError | null
  readonly closed: boolean
}

export interface FederatedBundleSourceEvents {
  update: [bundle: SpiffeBundle]
  error: [error: WorkloadApiError]
}

const REFRESH_KEYS = ['startTimeoutMs', 'defaultRefreshMs', 'minRefreshMs', 'maxRefreshMs', 'backoff'] as const satisfies ReadonlyArray<keyof RefreshOptions>
const FAILURE_BACKOFF = Object.freeze({ initialMs: 1000, maxMs: 300_000 })

/** What a bundle says, without its sequence: two bundles that say the same need no update. */
function contentOf (bundle: SpiffeBundle): string {
  return JSON.stringify([bundle.x509Authorities.map(der => der.toString('base64')), bundle.jwtAuthorities.jwks.keys])
}

function checkInterval (value: unknown, name: string, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', `${where}: ${name} must be a positive number of milliseconds; got ${String(value)}`)
  }
  return value
}

/**
 * A federated trust domain's bundle, fetched from its SPIFFE bundle endpoint at start and again as its
 * `spiffe_refresh_hint` says (kept between `minRefreshMs` and `maxRefreshMs`). A failed fetch keeps the bundle in
 * force and is retried with backoff; a bundle whose `spiffe_sequence` goes backwards is refused
 * (`ERR_MTLS_BUNDLE_SEQUENCE_REGRESSION`) and the one in force kept. For a self-served `https_spiffe` endpoint (its
 * SPIFFE ID in the trust domain it serves), each bundle fetched authenticates the next fetch.
 */
export class FederatedBundleSource extends EventEmitter<FederatedBundleSourceEvents> {
  readonly #request: BundleRequest
  #endpointBundle: readonly Buffer[] | null
  readonly #defaultRefreshMs: number
  readonly #minRefreshMs: number
  readonly #maxRefreshMs: number
  readonly #backoff: Backoff
  #current: SpiffeBundle | null = null
  #content = ''
  #lastFetch: Date | null = null
  #lastUpdate: Date | null = null
  #nextRefresh: Date | null = null
  #failures = 0
  #lastError: WorkloadApiError | null = null
  #timer: NodeJS.Timeout | null = null
  #closed = false
  readonly #firstUpdate = new FirstUpdate()

  /** Use `createFederatedBundleSource`, which waits for the first bundle. Fetching starts at once. */
  constructor (options: FederatedBundleSourceOptions) {
    super()
    const where = 'createFederatedBundleSource'
    const { request, endpointBundle } = checkBundleRequest(options, where, REFRESH_KEYS)
    checkBackoff(options.backoff, where)
    this.#request = request
    this.#endpointBundle = endpointBundle
    this.#defaultRefreshMs = checkInterval(options.defaultRefreshMs ?? 300_000, 'defaultRefreshMs', where)
    this.#minRefreshMs = checkInterval(options.minRefreshMs ?? 10_000, 'minRefreshMs', where)
    this.#maxRefreshMs = checkInterval(options.maxRefreshMs ?? 3_600_000, 'maxRefreshMs', where)
    if (this.#minRefreshMs > this.#maxRefreshMs) throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', `${where}: minRefreshMs must not exceed maxRefreshMs`)
    this.#backoff = new Backoff({ ...FAILURE_BACKOFF, ...options.backoff })
    this.#fetch()
  }

  get trustDomain (): string {
    return this.#request.trustDomain
  }

  /** The bundle in force; throws `ERR_MTLS_WORKLOAD_CLOSED` once closed, and before the first bundle. */
  get current (): SpiffeBundle {
    if (this.#current === null || this.#closed) {
      throw new WorkloadApiError('ERR_MTLS_WORKLOAD_CLOSED', this.#closed ? 'the federated bundle source is closed' : `no bundle of ${JSON.stringify(this.trustDomain)} yet`)
    }
    return this.#current
  }

  status (): FederatedBundleSourceStatus {
    return Object.freeze({
      trustDomain: this.#request.trustDomain,
      url: this.#request.url,
      profile: this.#request.trust.profile,
      connected: this.#current !== null && this.#failures === 0,
      lastFetch: this.#lastFetch,
      lastUpdate: this.#lastUpdate,
      sequence: this.#current?.sequence ?? null,
      nextRefresh: this.#nextRefresh,
      failures: this.#failures,
      lastError: this.#lastError,
      closed: this.#closed
    })
  }

  /** Resolves on the first bundle; rejects with `ERR_MTLS_WORKLOAD_TIMEOUT` (cause: the last error) after `timeoutMs`. */
  async ready (timeoutMs: number): Promise<void> {
    await this.#firstUpdate.wait(timeoutMs, () => new WorkloadApiError('ERR_MTLS_WORKLOAD_TIMEOUT',
      `no bundle of ${JSON.stringify(this.trustDomain)} from ${this.#request.url} within ${timeoutMs} ms${this.#lastError === null ? '' : `: ${this.#lastError.message}`}`,
      { cause: this.#lastError ?? undefined }))
  }

  #fetch (): void {
    this.#nextRefresh = null
    fetchCheckedBundle(this.#request, this.#endpointBundle).then(bundle => { this.#accept(bundle) }, (error: WorkloadApiError) => { this.#fail(error) })
  }

  #accept (bundle: SpiffeBundle): void {
    if (this.#closed) return
    const current = this.#current
    if (current !== null && current.sequence !== null && (bundle.sequence === null || bundle.sequence < current.sequence)) {
      this.#fail(new WorkloadApiError('ERR_MTLS_BUNDLE_SEQUENCE_REGRESSION',
        `bundle of ${JSON.stringify(this.trustDomain)} refused: spiffe_sequence ${String(bundle.sequence)} after ${current.sequence}; the bundle of sequence ${current.sequence} stays in force`))
      return
    }
    this.#lastFetch = new Date()
    this.#failures = 0
    this.#lastError = null
    this.#backoff.reset()
    const trust = this.#request.trust
    // Self-served: the endpoint's SVID is of the trust domain it serves, so its newest bundle is the one to verify it with.
    if (trust.profile === 'https_spiffe' && trust.endpointTrustDomain === this.trustDomain && bundle.x509Authorities.length > 0) this.#endpointBundle = bundle.x509Authorities
    const hintMs = bundle.refreshHintSeconds === null ? this.#defaultRefreshMs : bundle.refreshHintSeconds * 1000
    this.#schedule(Math.min(this.#maxRefreshMs, Math.max(this.#minRefreshMs, hintMs)))
    const content = contentOf(bundle)
    const changed = current === null || content !== this.#content || bundle.sequence !== current.sequence
    this.#current = bundle
    this.#content = content
    this.#firstUpdate.settle()
    if (!changed) return
    this.#lastUpdate = this.#lastFetch
    this.emit('update', bundle)
  }

  #fail (error: WorkloadApiError): void {
    if (this.#closed) return
    this.#failures++
    this.#lastError = error
    // A refused regression waits as long as a good fetch would: asking again at once would only be refused again.
    this.#schedule(error.code === 'ERR_MTLS_BUNDLE_SEQUENCE_REGRESSION' ? this.#minRefreshMs : this.#backoff.next())
    if (this.listenerCount('error') > 0) this.emit('error', error)
  }

  #schedule (delayMs: number): void {
    this.#nextRefresh = new Date(Date.now() + delayMs)
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#fetch()
    }, delayMs)
    this.#timer.unref()
  }

  /** Stops refreshing; `current` throws from then on. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#nextRefresh = null
    this.#firstUpdate.settle(new WorkloadApiError('ERR_MTLS_WORKLOAD_CLOSED', 'the federated bundle source was closed before its first bundle'))
  }
}

/** Starts a federated bundle source and resolves once its first bundle is in; closes and rejects if it does not come in time. */
export async function createFederatedBundleSource (options: FederatedBundleSourceOptions): Promise<FederatedBundleSource> {
  const timeoutMs = checkTimeout(options?.startTimeoutMs ?? 30_000, 'createFederatedBundleSource')
  return await started(new FederatedBundleSource(options), timeoutMs)
}
