import { EventEmitter } from 'node:events'
import type { BackoffOptions } from './backoff.js'
import { WorkloadApiClient, checkBackoff, checkFetchJwtSvid, nothingInTime, type FetchJwtSvidOptions } from './client.js'
import { FirstUpdate, started } from './first-update.js'
import { WorkloadApiError } from './errors.js'
import type { JwtBundles, JwtSvid } from './jwt-bundles.js'
import { validateJwtSvid, type ValidatedJwtSvid } from './jwt-validate.js'
import { checkOptionKeys, checkTimeout } from './option-keys.js'
import type { Watch } from './stream-watch.js'

export interface JwtSourceOptions {
  /** `unix:///path` or `tcp://IP:port`. Default: `SPIFFE_ENDPOINT_SOCKET`. */
  endpoint?: string
  /** How long `createJWTSource` waits for the first JWT bundles. Default: 30000. */
  timeoutMs?: number
  backoff?: BackoffOptions
  /** Clock skew allowed on a token's `exp` when validating, in seconds. Default: 30. */
  clockToleranceSec?: number
}

export interface JwtSourceStatus {
  readonly endpoint: string
  /** The JWT bundle stream is open and has delivered a message. */
  readonly connected: boolean
  /** When the JWT bundles last changed. */
  readonly lastUpdate: Date | null
  readonly reconnects: number
  /** The last failure (bundle stream or token refresh); `null` again once bundles arrive. */
  readonly lastError: WorkloadApiError | null
  readonly closed: boolean
  /** Tokens held in the cache (one per audience, subject and hint asked for). */
  readonly tokens: number
}

export interface JwtSourceEvents {
  update: [bundles: JwtBundles]
  error: [error: WorkloadApiError]
}

const SOURCE_KEYS = ['endpoint', 'timeoutMs', 'backoff', 'clockToleranceSec'] as const satisfies ReadonlyArray<keyof JwtSourceOptions>

interface CachedToken {
  svid: JwtSvid | null
  pending: Promise<JwtSvid> | null
  timer: NodeJS.Timeout | null
  request: { audience: string[], subject: string | undefined, hint: string | undefined, timeoutMs: number }
}

/**
 * JWT bundles kept current from the Workload API's FetchJWTBundles stream, and JWT-SVIDs per audience, cached and
 * fetched anew at half their lifetime (go-spiffe's `workloadapi.JWTSource`).
 */
export class JwtSource extends EventEmitter<JwtSourceEvents> {
  readonly #client: WorkloadApiClient
  readonly #watch: Watch
  readonly #clockToleranceSec: number
  readonly #tokens = new Map<string, CachedToken>()
  #bundles: JwtBundles | null = null
  #lastUpdate: Date | null = null
  #lastError: WorkloadApiError | null = null
  #closed = false
  readonly #firstUpdate = new FirstUpdate()

  /** Use `createJWTSource`, which waits for the first bundles. */
  constructor (options: JwtSourceOptions = {}) {
    super()
    checkOptionKeys(options, SOURCE_KEYS, 'createJWTSource')
    checkBackoff(options.backoff, 'createJWTSource')
    const tolerance = options.clockToleranceSec ?? 30
    if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0) {
      throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', `createJWTSource: clockToleranceSec must be a number of seconds, 0 or more; got ${String(tolerance)}`)
    }
    this.#clockToleranceSec = tolerance
    this.#client = new WorkloadApiClient({ endpoint: options.endpoint, ...(options.backoff === undefined ? {} : { backoff: options.backoff }) })
    this.#watch = this.#client.watchJWTBundles({
      onUpdate: bundles => {
        this.#bundles = bundles
        this.#lastUpdate = new Date()
        this.#lastError = null
        this.#firstUpdate.settle()
        this.emit('update', bundles)
      },
      onError: (error, retrying) => {
        this.#fail(error)
        if (!retrying) this.#firstUpdate.settle(error)
      }
    })
  }

  /** The JWT bundles in force, by trust domain; throws `ERR_MTLS_WORKLOAD_CLOSED` once closed or before the first. */
  get bundles (): JwtBundles {
    if (this.#bundles === null || this.#closed) {
      throw new WorkloadApiError('ERR_MTLS_WORKLOAD_CLOSED', this.#closed ? 'the JWTSource is closed' : 'the JWTSource has no JWT bundles yet')
    }
    return this.#bundles
  }

  /**
   * A JWT-SVID for `audience`: from the cache while it is in the first half of its lifetime, else fetched (and from
   * then on fetched again at half its lifetime, in the background). A failed refresh keeps the token in use until it
   * expires and is reported as an `error` event.
   */
  async fetchJWTSVID (options: Omit<FetchJwtSvidOptions, 'timeoutMs'> & { timeoutMs?: number }): Promise<JwtSvid> {
    if (this.#closed) throw new WorkloadApiError('ERR_MTLS_WORKLOAD_CLOSED', 'the JWTSource is closed')
    const request = checkFetchJwtSvid(options, 'JWTSource.fetchJWTSVID')
    const key = JSON.stringify([[...request.audience].sort(), request.subject ?? null, request.hint ?? null])
    let entry = this.#tokens.get(key)
    if (entry === undefined) {
      entry = { svid: null, pending: null, timer: null, request }
      this.#tokens.set(key, entry)
    }
    if (entry.svid !== null && Date.now() < halfLife(entry.svid)) return entry.svid
    return await this.#refresh(entry)
  }

  /** The cached token for these options, if there is one still valid: for callers that cannot wait (an interceptor). */
  cachedJWTSVID (options: { audience: string | readonly string[], subject?: string, hint?: string }): JwtSvid | null {
    const audience = typeof options.audience === 'string' ? [options.audience] : [...options.audience]
    const entry = this.#tokens.get(JSON.stringify([audience.sort(), options.subject ?? null, options.hint ?? null]))
    return entry?.svid != null && Date.now() < entry.svid.expiresAt.getTime() ? entry.svid : null
  }

  #refresh (entry: CachedToken): Promise<JwtSvid> {
    if (entry.pending !== null) return entry.pending
    const pending = this.#client.fetchJWTSVID(entry.request).then(svid => {
      entry.svid = svid
      this.#schedule(entry)
      return svid
    }, (error: WorkloadApiError) => {
      this.#fail(error)
      // Keep what is still valid; try again soon.
      if (entry.svid !== null && Date.now() < entry.svid.expiresAt.getTime()) {
        this.#schedule(entry, 1000)
        return entry.svid
      }
      throw error
    }).finally(() => { entry.pending = null })
    entry.pending = pending
    return pending
  }

  #schedule (entry: CachedToken, retryMs?: number): void {
    if (entry.timer !== null) clearTimeout(entry.timer)
    if (this.#closed || entry.svid === null) return
    const delay = retryMs ?? Math.max(0, halfLife(entry.svid) - Date.now())
    entry.timer = setTimeout(() => {
      entry.timer = null
      this.#refresh(entry).catch(() => {})
    }, delay)
    entry.timer.unref()
  }

  /** Validates a JWT-SVID locally against the JWT bundles in force (`ERR_MTLS_JWT_*` on refusal). */
  async validateJWTSVID (token: string, audience: string): Promise<ValidatedJwtSvid> {
    return await validateJwtSvid(token, { audience, bundles: this.bundles, clockToleranceSec: this.#clockToleranceSec })
  }

  status (): JwtSourceStatus {
    return Object.freeze({
      endpoint: this.#client.endpoint.uri,
      connected: this.#watch.connected,
      lastUpdate: this.#lastUpdate,
      reconnects: this.#watch.reconnects,
      lastError: this.#lastError,
      closed: this.#closed || this.#watch.closed,
      tokens: [...this.#tokens.values()].filter(entry => entry.svid !== null).length
    })
  }

  /** Resolves on the first JWT bundles; rejects with `ERR_MTLS_WORKLOAD_TIMEOUT` (cause: the last error) after `timeoutMs`. */
  async ready (timeoutMs: number): Promise<void> {
    await this.#firstUpdate.wait(timeoutMs, () => nothingInTime(this.#client.endpoint, 'JWT bundles', timeoutMs, this.#lastError))
  }

  #fail (error: WorkloadApiError): void {
    this.#lastError = error
    if (this.listenerCount('error') > 0) this.emit('error', error)
  }

  /** Stops the bundle stream and the token refreshes, and closes the connection. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    for (const entry of this.#tokens.values()) if (entry.timer !== null) clearTimeout(entry.timer)
    this.#tokens.clear()
    this.#firstUpdate.settle(new WorkloadApiError('ERR_MTLS_WORKLOAD_CLOSED', 'the JWTSource was closed before its first JWT bundles'))
    this.#client.close()
  }
}

/** The moment a token is due for refresh: half way from issue to expiry. */
function halfLife (svid: JwtSvid): number {
  return svid.issuedAt.getTime() + (svid.expiresAt.getTime() - svid.issuedAt.getTime()) / 2
}

/** Connects to the Workload API and resolves once the first JWT bundles are in; closes and rejects if they do not come in time. */
export async function createJWTSource (options: JwtSourceOptions = {}): Promise<JwtSource> {
  const timeoutMs = checkTimeout(options.timeoutMs ?? 30_000, 'createJWTSource')
  return await started(new JwtSource(options), timeoutMs)
}
