import { FileSource, loadOnce, wantsWatching, type FileSourceOptions, type FileSourceSpec, type Loaded } from './file-source.js'
import { MaterialError, codeOf, describeThrown } from './errors.js'
import { readMaterial, validateMaterial, type Material, type MaterialInput, type MaterialOptions, type MaterialPems } from './material.js'

export interface MaterialSourceOptions extends MaterialOptions, FileSourceOptions {}

/** How a material feed is doing, for status pages. */
export interface MaterialFeedStatus {
  /** Where the material comes from (a Workload API's `unix:///…` socket, …). */
  readonly endpoint: string
  /** A stream is open and has delivered material. */
  readonly connected: boolean
  /** When material last arrived. */
  readonly lastUpdate: Date | null
  /** Connections reopened after one failed or ended. */
  readonly reconnects: number
  /** The last failure to get material (`null` until one); the material in force stays meanwhile. */
  readonly lastError: Error | null
  readonly closed: boolean
}

/** A feed's status as status pages show it: the last error as its code and message. */
export interface MaterialFeedReport extends Omit<MaterialFeedStatus, 'lastError'> {
  readonly lastError: { readonly code: string, readonly message: string } | null
}

/**
 * Certificate material pushed to us rather than read from files, such as spiffe-workload-api's `X509Source`
 * (SVIDs and trust bundles from the SPIFFE Workload API). `loadServerTls({ x509Source })` and
 * `createMtlsAgent({ x509Source })` take one: each `update` goes through the same validate → apply → commit as a
 * file change. The feed belongs to whoever created it: closing a server or an agent does not close it.
 */
export interface MaterialFeed {
  /** The material in force, as PEM (read after each `update`); throws when the feed has none, such as once closed. */
  readonly materialInput: MaterialInput
  status: () => MaterialFeedStatus
  on: ((event: 'update', listener: () => void) => unknown) & ((event: 'error', listener: (error: Error) => void) => unknown)
  off: ((event: 'update', listener: () => void) => unknown) & ((event: 'error', listener: (error: Error) => void) => unknown)
}

/**
 * Owns the current certificate material and swaps it whole, through the one reload protocol (FileSource):
 * re-read every file together, validate (including building a TLS context from it), let `apply` listeners
 * put it in service (a server's `setSecureContext`, a client's new context), and only then commit it and
 * announce `update`. On any failure it announces `error` once and keeps the material in service. Servers
 * and clients read `current`; they never watch files themselves.
 */
export class MaterialSource extends FileSource<Material> {
  readonly #inputs: { current: MaterialInput }
  /** The feed the material comes from, or `null` when it comes from files or PEM options. */
  readonly feed: MaterialFeed | null = null
  #stopFeed: (() => void) | null = null

  private constructor (inputs: { current: MaterialInput }, spec: FileSourceSpec<Material, MaterialPems>, initial: Loaded<Material>, options: MaterialSourceOptions, feed: MaterialFeed | null = null) {
    super(spec, initial, options)
    this.#inputs = inputs
    this.feed = feed
  }

  /** Loads and validates the material (throwing MaterialError if it cannot be used), then starts watching. */
  static async create (input: MaterialInput, options: MaterialSourceOptions): Promise<MaterialSource> {
    const inputs = { current: input }
    const spec: FileSourceSpec<Material, MaterialPems> = {
      files: () => filesOf(inputs.current),
      read: async () => {
        const pems = await readMaterial(inputs.current)
        return { raw: pems, digest: pems.digest }
      },
      validate: pems => validateMaterial(pems, options)
    }
    const source = new MaterialSource(inputs, spec, await loadOnce(spec), options)
    if (wantsWatching(spec, options)) source.watch()
    return source
  }

  /**
   * Material from a feed, kept current: the first material is validated now (throwing MaterialError, or the
   * feed's own error when it has none), and each `update` the feed announces is read, validated and applied
   * like a file change; a refused one is reported and the material in force stays. No files are watched.
   */
  static async fromFeed (feed: MaterialFeed, options: MaterialOptions): Promise<MaterialSource> {
    if (typeof feed !== 'object' || feed === null || typeof feed.on !== 'function' || typeof feed.off !== 'function' || typeof feed.status !== 'function' || !('materialInput' in feed)) {
      throw new MaterialError('ERR_MTLS_MATERIAL_OPTION_INVALID', 'x509Source must be a material feed, such as what spiffe-workload-api\'s createX509Source() resolves to')
    }
    const spec: FileSourceSpec<Material, MaterialPems> = {
      files: () => [],
      read: async () => {
        let input: MaterialInput
        try {
          input = feed.materialInput
        } catch (err) {
          // The feed's own error (ERR_MTLS_WORKLOAD_CLOSED, …) says it best; anything else thrown becomes one.
          if (err instanceof Error) throw err
          throw new MaterialError('ERR_MTLS_MATERIAL_OPTION_INVALID', `x509Source: materialInput threw ${describeThrown(err)}`)
        }
        if (typeof input !== 'object' || input === null) throw new MaterialError('ERR_MTLS_MATERIAL_OPTION_INVALID', 'x509Source: materialInput is not certificate material')
        const pems = await readMaterial(input)
        return { raw: pems, digest: pems.digest }
      },
      validate: pems => validateMaterial(pems, options)
    }
    // Followed from before the first read: an update announced while it runs is read once the source exists.
    let source: MaterialSource | null = null
    let missed = false
    const onUpdate = (): void => {
      if (source === null) missed = true
      else source.reload().catch(() => {}) // refusals go to `error` listeners
    }
    feed.on('update', onUpdate)
    let initial: Loaded<Material>
    try {
      initial = await loadOnce(spec)
    } catch (err) {
      feed.off('update', onUpdate)
      throw err
    }
    source = new MaterialSource({ current: {} }, spec, initial, { ...options, watch: false }, feed)
    source.#stopFeed = () => { feed.off('update', onUpdate) }
    if (missed) onUpdate()
    return source
  }

  /** How the feed is doing, for status pages; `null` when the material comes from files or PEM options. */
  feedStatus (): MaterialFeedReport | null {
    if (this.feed === null) return null
    let status: MaterialFeedStatus
    try {
      status = this.feed.status()
      if (typeof status !== 'object' || status === null) throw new TypeError('it returned no status')
    } catch (err) {
      // A status page must not fail for a feed's bug: it says what it could not read.
      return { endpoint: '', connected: false, lastUpdate: null, reconnects: 0, lastError: { code: 'ERR', message: `the feed's status() threw: ${describeThrown(err)}` }, closed: false }
    }
    const { endpoint, connected, lastUpdate, reconnects, lastError, closed } = status
    return {
      endpoint,
      connected,
      lastUpdate,
      reconnects,
      lastError: lastError === null || lastError === undefined ? null : { code: codeOf(lastError, 'ERR'), message: describeThrown(lastError) },
      closed
    }
  }

  /** Stops watching files, or listening to the feed, for good; the current material stays readable. */
  override close (): void {
    this.#stopFeed?.()
    this.#stopFeed = null
    super.close()
  }

  /**
   * Re-reads, validates and applies now; with `input`, switches to new inputs (files or PEM), and the
   * watcher follows the new files. Rejects when refused, and the old material and inputs stay.
   */
  override async reload (input?: MaterialInput): Promise<Material> {
    if (input !== undefined && this.feed !== null) throw new MaterialError('ERR_MTLS_MATERIAL_OPTION_INVALID', 'this material comes from a feed (x509Source): it cannot be switched to files or PEM')
    if (input === undefined) return await super.reload()
    return await this.reloadWith(() => {
      const previous = this.#inputs.current
      this.#inputs.current = input
      return () => { this.#inputs.current = previous }
    })
  }
}

function filesOf (input: MaterialInput): string[] {
  return [input.certFile, input.keyFile, input.caFile, input.crlFile].flat().filter((file): file is string => typeof file === 'string')
}

/** Loads material and keeps it current; see MaterialSource. */
export async function createMaterialSource (input: MaterialInput, options: MaterialSourceOptions): Promise<MaterialSource> {
  return await MaterialSource.create(input, options)
}
