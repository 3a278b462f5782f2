import { EventEmitter } from 'node:events'
import type { MaterialFeed, MaterialInput } from 'mtls-core'
import type { BackoffOptions } from './backoff.js'
import { WorkloadApiClient, checkBackoff, nothingInTime } from './client.js'
import { FirstUpdate, started } from './first-update.js'
import { WorkloadApiError } from './errors.js'
import { checkOptionKeys, checkTimeout } from './option-keys.js'
import { derToPem } from './pem.js'
import type { Watch } from './stream-watch.js'
import type { X509Bundles, X509Context, X509Svid } from './x509-context.js'

/** Chooses the SVID a source serves: a SPIFFE ID, `{ hint }` (the agent's label), or a function of all SVIDs the agent sent. */
export type SvidPicker = string | { readonly hint: string } | ((svids: readonly X509Svid[]) => X509Svid | undefined)

export interface X509SourceOptions {
  /** `unix:///path` or `tcp://IP:port`. Default: `SPIFFE_ENDPOINT_SOCKET`. */
  endpoint?: string
  /** How long `createX509Source` waits for the first SVID. Default: 30000. */
  timeoutMs?: number
  /** Default: the first SVID (the agent's default). */
  pick?: SvidPicker
  backoff?: BackoffOptions
}

/** What a source serves: one SVID with the bundles to verify peers with. */
export interface X509Material {
  readonly svid: X509Svid
  /** Own trust domain and federated ones, by trust domain name. */
  readonly bundles: X509Bundles
  readonly crls: readonly Buffer[]
}

export interface X509SourceStatus {
  /** The Workload API's address, `unix:///…` or `tcp://…`. */
  readonly endpoint: string
  /** A stream is open and has delivered a message. */
  readonly connected: boolean
  readonly lastUpdate: Date | null
  /** Streams reopened after one failed or ended. */
  readonly reconnects: number
  /** Why the source gets no updates now: `null` until a failure, and again once an update arrives. */
  readonly lastError: WorkloadApiError | null
  /**
   * No more updates will come: `close()` was called, or the agent refused the request as malformed
   * (InvalidArgument: it would refuse it again; go-spiffe gives up there too). `current` keeps the last SVID.
   */
  readonly closed: boolean
}

export interface X509SourceEvents {
  update: [material: X509Material]
  error: [error: WorkloadApiError]
}

const SOURCE_KEYS = ['endpoint', 'timeoutMs', 'pick', 'backoff'] as const satisfies ReadonlyArray<keyof X509SourceOptions>

function isHintPick (pick: unknown): pick is { hint: string } {
  if (pick === null || typeof pick !== 'object') return false
  const keys = Object.keys(pick)
  return keys.length === 1 && keys[0] === 'hint' && typeof (pick as { hint: unknown }).hint === 'string' && (pick as { hint: string }).hint !== ''
}

function describePick (pick: SvidPicker | undefined): string {
  if (typeof pick === 'string') return ` (wanted ${pick})`
  if (pick !== undefined && typeof pick === 'object') return ` (wanted hint ${JSON.stringify(pick.hint)})`
  return ''
}

function pickSvid (pick: SvidPicker | undefined, svids: readonly X509Svid[]): X509Svid | undefined {
  if (pick === undefined) return svids[0]
  if (typeof pick === 'string') return svids.find(svid => svid.spiffeId === pick)
  if (typeof pick === 'function') return pick(svids)
  return svids.find(svid => svid.hint === pick.hint)
}

/**
 * The current X.509-SVID and bundles, kept up to date from the Workload API (go-spiffe's `workloadapi.X509Source`).
 * `current` is swapped whole on each update and kept through disconnections; `error` events are only emitted when
 * someone listens.
 */
export class X509Source extends EventEmitter<X509SourceEvents> implements MaterialFeed {
  readonly #client: WorkloadApiClient
  readonly #watch: Watch
  readonly #pick: SvidPicker | undefined
  #current: X509Material | null = null
  #materialInput: MaterialInput | null = null
  #lastUpdate: Date | null = null
  #lastError: WorkloadApiError | null = null
  #closed = false
  readonly #firstUpdate = new FirstUpdate()

  /** Use `createX509Source`, which waits for the first SVID. */
  constructor (options: X509SourceOptions = {}) {
    super()
    checkOptionKeys(options, SOURCE_KEYS, 'createX509Source')
    checkBackoff(options.backoff, 'createX509Source')
    const pick = options.pick
    if (pick !== undefined && typeof pick !== 'string' && typeof pick !== 'function' && !isHintPick(pick)) {
      throw new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', 'createX509Source: pick must be a SPIFFE ID, { hint: string } or a function')
    }
    this.#pick = pick !== undefined && typeof pick === 'object' ? Object.freeze({ hint: pick.hint }) : pick
    this.#client = new WorkloadApiClient({ endpoint: options.endpoint, ...(options.backoff === undefined ? {} : { backoff: options.backoff }) })
    this.#watch = this.#client.watchX509Context({
      onUpdate: context => this.#update(context),
      onError: (error, retrying) => {
        this.#fail(error)
        if (!retrying) this.#firstUpdate.settle(error)
      }
    })
  }

  /** The SVID and bundles in force; throws `ERR_MTLS_WORKLOAD_CLOSED` once closed, and before the first update. */
  get current (): X509Material {
    if (this.#current === null || this.#closed) {
      throw new WorkloadApiError('ERR_MTLS_WORKLOAD_CLOSED', this.#closed ? 'the X509Source is closed' : 'the X509Source has no SVID yet')
    }
    return this.#current
  }

  /**
   * The current SVID as mtls-core certificate material, for fastify-mtls's `loadServerTls({ x509Source })` and
   * undici-mtls's `createMtlsAgent({ x509Source })`: the SVID's chain and key as PEM, every bundle by trust domain
   * (`trustDomains`: federated trust domains are trusted, each for its own SPIFFE IDs), and the CRLs. Built once per update.
   */
  get materialInput (): MaterialInput {
    const current = this.current
    if (this.#materialInput === null) {
      const { svid, bundles, crls } = current
      this.#materialInput = Object.freeze({
        cert: derToPem(svid.certificates),
        key: svid.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        // One PEM per certificate: an empty bundle is an empty list, which trusts nothing for its trust domain.
        trustDomains: Object.freeze(Object.fromEntries([...bundles].map(([trustDomain, anchors]) => [trustDomain, anchors.map(der => derToPem([der]))]))),
        ...(crls.length === 0 ? {} : { crl: derToPem(crls, 'X509 CRL') })
      })
    }
    return this.#materialInput
  }

  status (): X509SourceStatus {
    return Object.freeze({
      endpoint: this.#client.endpoint.uri,
      connected: this.#watch.connected,
      lastUpdate: this.#lastUpdate,
      reconnects: this.#watch.reconnects,
      lastError: this.#lastError,
      closed: this.#closed || this.#watch.closed
    })
  }

  /** Resolves on the first update; rejects with `ERR_MTLS_WORKLOAD_TIMEOUT` (cause: the last error) after `timeoutMs`. */
  async ready (timeoutMs: number): Promise<void> {
    await this.#firstUpdate.wait(timeoutMs, () => nothingInTime(this.#client.endpoint, 'X.509-SVID', timeoutMs, this.#lastError))
  }

  #update (context: X509Context): void {
    const svid = pickSvid(this.#pick, context.svids)
    if (svid === undefined) {
      this.#fail(new WorkloadApiError('ERR_MTLS_WORKLOAD_SVID_NOT_FOUND',
        `no SVID picked among ${context.svids.map(s => s.spiffeId).join(', ')}${describePick(this.#pick)}`))
      return
    }
    this.#current = Object.freeze({ svid, bundles: context.bundles, crls: context.crls })
    this.#materialInput = null
    this.#lastUpdate = new Date()
    this.#lastError = null // the outage, if any, is over
    this.#firstUpdate.settle()
    this.emit('update', this.#current)
  }

  #fail (error: WorkloadApiError): void {
    this.#lastError = error
    if (this.listenerCount('error') > 0) this.emit('error', error)
  }

  /** Stops watching and closes the connection; `current` throws from then on. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#firstUpdate.settle(new WorkloadApiError('ERR_MTLS_WORKLOAD_CLOSED', 'the X509Source was closed before its first SVID'))
    this.#client.close()
  }
}

/** Connects to the Workload API and resolves once the first SVID is in; closes and rejects if it does not come in time. */
export async function createX509Source (options: X509SourceOptions = {}): Promise<X509Source> {
  const timeoutMs = checkTimeout(options.timeoutMs ?? 30_000, 'createX509Source')
  return await started(new X509Source(options), timeoutMs)
}
