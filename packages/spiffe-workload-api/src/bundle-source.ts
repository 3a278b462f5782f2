import { EventEmitter } from 'node:events'
import type { MaterialFeed, MaterialFeedStatus, MaterialInput } from 'mtls-core'
import { WorkloadApiError } from './errors.js'
import type { FederatedBundleSource } from './federated-bundle-source.js'
import type { JwtBundle, JwtBundles } from './jwt-bundles.js'
import type { JwtSource } from './jwt-source.js'
import { checkOptionKeys } from './option-keys.js'
import { derToPem } from './pem.js'
import type { X509Bundles } from './x509-context.js'
import { trustDomainOf } from './x509-context.js'
import type { X509Source } from './x509-source.js'

export interface BundleSourceOptions {
  /** Our SVID and the bundles the agent holds (own and federated trust domains). */
  x509Source?: X509Source
  /** The JWT bundles the agent holds. */
  jwtSource?: JwtSource
  /** Trust domains fetched from their bundle endpoints. */
  federation?: readonly FederatedBundleSource[]
}

export interface BundleSourceStatus extends MaterialFeedStatus {
  /** Our trust domain (the SVID's), `null` without an X509Source. */
  readonly trustDomain: string | null
  /** The federated trust domains added, and whether each has a bundle in force. */
  readonly federation: ReadonlyArray<{ readonly trustDomain: string, readonly inForce: boolean, readonly lastError: WorkloadApiError | null }>
}

export interface BundleSourceEvents {
  update: []
  error: [error: WorkloadApiError]
}

const SOURCE_KEYS = ['x509Source', 'jwtSource', 'federation'] as const satisfies ReadonlyArray<keyof BundleSourceOptions>

interface Federated {
  readonly source: FederatedBundleSource
  readonly onUpdate: () => void
  readonly onError: (error: WorkloadApiError) => void
}

function invalid (message: string): WorkloadApiError {
  return new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', `createBundleSource: ${message}`)
}

/**
 * X.509 and JWT bundles by trust domain (go-spiffe's `x509bundle.Source` and `jwtbundle.Source`): what the agent holds
 * (an X509Source, a JwtSource) merged with trust domains fetched from their bundle endpoints. A federated bundle is
 * taken over the agent's for its trust domain, but never for our own trust domain. With an X509Source it is also a
 * material feed: `loadServerTls({ x509Source: bundleSource })` and `createMtlsAgent({ x509Source: bundleSource })`
 * trust each federated trust domain's CAs for that trust domain's SPIFFE IDs, from the next connection after a change.
 * It does not own its sources: `close()` stops listening to them; close them yourself.
 */
export class BundleSource extends EventEmitter<BundleSourceEvents> implements MaterialFeed {
  readonly #x509Source: X509Source | null
  readonly #jwtSource: JwtSource | null
  readonly #federated = new Map<string, Federated>()
  #x509Bundles: X509Bundles | null = null
  #jwtBundles: JwtBundles | null = null
  #materialInput: MaterialInput | null = null
  #closed = false
  readonly #onChange = (): void => { this.#changed() }
  readonly #onError = (error: WorkloadApiError): void => { this.#fail(error) }

  constructor (options: BundleSourceOptions = {}) {
    super()
    checkOptionKeys(options, SOURCE_KEYS, 'createBundleSource')
    const { x509Source, jwtSource, federation = [] } = options
    if (x509Source !== undefined && typeof x509Source?.on !== 'function') throw invalid('x509Source must be an X509Source')
    if (jwtSource !== undefined && typeof jwtSource?.on !== 'function') throw invalid('jwtSource must be a JWTSource')
    if (!Array.isArray(federation)) throw invalid('federation must be a list of federated bundle sources')
    this.#x509Source = x509Source ?? null
    this.#jwtSource = jwtSource ?? null
    for (const source of federation) this.addFederation(source)
    this.#x509Source?.on('update', this.#onChange)
    this.#x509Source?.on('error', this.#onError)
    this.#jwtSource?.on('update', this.#onChange)
    this.#jwtSource?.on('error', this.#onError)
  }

  /** Our trust domain: the SVID's, `null` without an X509Source. */
  get trustDomain (): string | null {
    return this.#x509Source === null ? null : trustDomainOf(this.#x509Source.current.svid.spiffeId)
  }

  /**
   * Adds a federated trust domain: its bundle is merged from now on and `update` is emitted. Refused
   * (`ERR_MTLS_BUNDLE_OWN_TRUST_DOMAIN`) for our own trust domain, and (`ERR_MTLS_WORKLOAD_INVALID_OPTION`) for a
   * trust domain already federated.
   */
  addFederation (source: FederatedBundleSource): void {
    this.#open()
    if (source === null || typeof source !== 'object' || typeof source.on !== 'function' || typeof source.trustDomain !== 'string') {
      throw invalid('a federation entry must be a FederatedBundleSource')
    }
    const trustDomain = source.trustDomain
    if (trustDomain === this.trustDomain) {
      throw new WorkloadApiError('ERR_MTLS_BUNDLE_OWN_TRUST_DOMAIN', `${JSON.stringify(trustDomain)} is our own trust domain: its bundle comes from the Workload API, never from a bundle endpoint`)
    }
    if (this.#federated.has(trustDomain)) throw invalid(`${JSON.stringify(trustDomain)} is federated already`)
    const entry = { source, onUpdate: this.#onChange, onError: this.#onError }
    source.on('update', entry.onUpdate)
    source.on('error', entry.onError)
    this.#federated.set(trustDomain, entry)
    this.#changed()
  }

  /** Stops merging a federated trust domain (it is not closed); `true` if it was federated. */
  removeFederation (trustDomain: string): boolean {
    this.#open()
    const entry = this.#federated.get(trustDomain)
    if (entry === undefined) return false
    entry.source.off('update', entry.onUpdate)
    entry.source.off('error', entry.onError)
    this.#federated.delete(trustDomain)
    this.#changed()
    return true
  }

  /** X.509 bundles (DER CA certificates) by trust domain. */
  get x509Bundles (): X509Bundles {
    this.#open()
    if (this.#x509Bundles === null) {
      const own = this.trustDomain
      const bundles = new Map(this.#x509Source?.current.bundles ?? [])
      for (const [trustDomain, bundle] of this.#federatedBundles()) if (trustDomain !== own) bundles.set(trustDomain, bundle.x509Authorities)
      this.#x509Bundles = bundles
    }
    return this.#x509Bundles
  }

  /** JWT bundles by trust domain, as `validateJwtSvid` takes them. */
  get jwtBundles (): JwtBundles {
    this.#open()
    if (this.#jwtBundles === null) {
      const own = this.trustDomain
      const bundles = new Map<string, JwtBundle>(this.#jwtSource?.bundles ?? [])
      for (const [trustDomain, bundle] of this.#federatedBundles()) if (trustDomain !== own) bundles.set(trustDomain, bundle.jwtAuthorities)
      this.#jwtBundles = bundles
    }
    return this.#jwtBundles
  }

  getX509Bundle (trustDomain: string): readonly Buffer[] | undefined {
    return this.x509Bundles.get(trustDomain)
  }

  getJwtBundle (trustDomain: string): JwtBundle | undefined {
    return this.jwtBundles.get(trustDomain)
  }

  /** The X509Source's material, trusting every trust domain's bundle (federated ones included) by trust domain. */
  get materialInput (): MaterialInput {
    this.#open()
    if (this.#x509Source === null) throw invalid('materialInput needs an x509Source')
    if (this.#materialInput === null) {
      const trustDomains = Object.fromEntries([...this.x509Bundles].map(([trustDomain, anchors]) => [trustDomain, anchors.map(der => derToPem([der]))]))
      this.#materialInput = Object.freeze({ ...this.#x509Source.materialInput, trustDomains: Object.freeze(trustDomains) })
    }
    return this.#materialInput
  }

  /** The X509Source's status (what fastify-mtls and undici-mtls report for a feed) and the federated trust domains'. */
  status (): BundleSourceStatus {
    const feed = this.#x509Source?.status() ?? this.#jwtSource?.status()
    return Object.freeze({
      endpoint: feed?.endpoint ?? '',
      connected: feed?.connected ?? true,
      lastUpdate: feed?.lastUpdate ?? null,
      reconnects: feed?.reconnects ?? 0,
      lastError: feed?.lastError ?? null,
      closed: this.#closed || feed?.closed === true,
      trustDomain: this.#closed || this.#x509Source === null ? null : this.trustDomain,
      federation: Object.freeze([...this.#federated.values()].map(({ source }) => {
        const status = source.status()
        return Object.freeze({ trustDomain: status.trustDomain, inForce: status.lastFetch !== null && !status.closed, lastError: status.lastError })
      }))
    })
  }

  * #federatedBundles (): Iterable<[string, { x509Authorities: readonly Buffer[], jwtAuthorities: JwtBundle }]> {
    for (const [trustDomain, { source }] of this.#federated) {
      // A source with no bundle yet (or closed) adds nothing: its trust domain stays as the agent has it.
      if (source.status().lastFetch === null || source.status().closed) continue
      yield [trustDomain, source.current]
    }
  }

  #changed (): void {
    this.#x509Bundles = null
    this.#jwtBundles = null
    this.#materialInput = null
    this.emit('update')
  }

  #fail (error: WorkloadApiError): void {
    if (this.listenerCount('error') > 0) this.emit('error', error)
  }

  #open (): void {
    if (this.#closed) throw new WorkloadApiError('ERR_MTLS_WORKLOAD_CLOSED', 'the bundle source is closed')
  }

  /** Stops listening to its sources (which stay open); the bundles throw from then on. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    for (const entry of this.#federated.values()) {
      entry.source.off('update', entry.onUpdate)
      entry.source.off('error', entry.onError)
    }
    this.#federated.clear()
    this.#x509Source?.off('update', this.#onChange)
    this.#x509Source?.off('error', this.#onError)
    this.#jwtSource?.off('update', this.#onChange)
    this.#jwtSource?.off('error', this.#onError)
  }
}

/** Merges the bundles of the sources given; see `BundleSource`. */
export function createBundleSource (options: BundleSourceOptions = {}): BundleSource {
  return new BundleSource(options)
}
