import { watchFiles, type FileWatcher } from './file-watcher.js'
import { readMaterial, validateMaterial, type Material, type MaterialInput, type MaterialOptions, type MaterialPems } from './material.js'

export interface MaterialSourceOptions extends MaterialOptions {
  /** Watch the files' directories and reload on change. Default: `true` when any input is a file. */
  watch?: boolean
  /** Quiet time after the last file event before reloading, in ms. Default: 100. */
  debounceMs?: number
  /**
   * Poll instead of watching, every this many ms (`true`: 1000), for filesystems where watching does not
   * work (some network and FUSE mounts). Default: `false`.
   */
  poll?: boolean | number
}

type UpdateListener = (material: Material, previous: Material) => void
type ErrorListener = (error: Error) => void

/** The outcome of the last reload, for status pages: `null` until one has been applied or refused. */
export interface ReloadStatus {
  readonly at: Date
  readonly ok: boolean
  /** Why it was refused (`code` as the error's, `ERR` when it has none). */
  readonly error?: { readonly code: string, readonly message: string }
}

export interface ReloadFailure {
  readonly error: Error
  /** When this failure happened. */
  readonly at: Date
  /** When the current run of failures began (reloads have failed ever since). */
  readonly since: Date
}

/**
 * Owns the current certificate material and swaps it whole. Watches its files (their directories, so
 * Kubernetes' `..data` symlink swap and rename-on-save are seen), debounces bursts, re-reads everything
 * together, validates, and only then announces `update`. On any failure it announces `error` and keeps
 * the last good material. Servers and clients read `current`; they never watch files themselves.
 */
export class MaterialSource {
  readonly #options: MaterialSourceOptions
  #input: MaterialInput
  #current: Material
  #lastFailure: ReloadFailure | null = null
  #failedDigest: string | null = null
  #lastSuccess: Date | null = null
  readonly #listeners = { update: new Set<UpdateListener>(), error: new Set<ErrorListener>() }
  #watcher: FileWatcher | null = null
  #running: Promise<Material> | null = null
  #again = false
  #closed = false

  private constructor (input: MaterialInput, options: MaterialSourceOptions, material: Material) {
    this.#input = input
    this.#options = { ...options }
    this.#current = material
  }

  /** Loads and validates the material (throwing MaterialError if it cannot be used), then starts watching. */
  static async create (input: MaterialInput, options: MaterialSourceOptions): Promise<MaterialSource> {
    const material = validateMaterial(await readMaterial(input), options)
    const source = new MaterialSource(input, options, material)
    const files = source.#files()
    if (options.watch === true || (options.watch !== false && files.length > 0)) source.watch(options)
    return source
  }

  /** The material in use: always whole and valid. */
  get current (): Material {
    return this.#current
  }

  /** The last reload that failed, until a later one succeeds. */
  get lastFailure (): ReloadFailure | null {
    return this.#lastFailure
  }

  /** The last reload applied or refused, whichever is more recent: a refusal stays until a later reload succeeds. */
  get lastReload (): ReloadStatus | null {
    const failure = this.#lastFailure
    if (failure !== null) return { at: failure.at, ok: false, error: { code: (failure.error as { code?: string }).code ?? 'ERR', message: failure.error.message } }
    return this.#lastSuccess === null ? null : { at: this.#lastSuccess, ok: true }
  }

  on (event: 'update', listener: UpdateListener): this
  on (event: 'error', listener: ErrorListener): this
  on (event: 'update' | 'error', listener: UpdateListener | ErrorListener): this {
    (this.#listeners[event] as Set<typeof listener>).add(listener)
    return this
  }

  off (event: 'update' | 'error', listener: UpdateListener | ErrorListener): this {
    (this.#listeners[event] as Set<typeof listener>).delete(listener)
    return this
  }

  /**
   * Re-reads and validates now; with `input`, switches to new inputs (files or PEM). Resolves with the
   * material in use afterwards; rejects (and announces `error`) when the new material is refused, in
   * which case the old one stays. Concurrent calls share one reload.
   */
  async reload (input?: MaterialInput): Promise<Material> {
    if (input !== undefined) {
      const previous = this.#input
      this.#input = input
      try {
        return await this.#reload()
      } catch (err) {
        this.#input = previous
        throw err
      }
    }
    return await this.#reload()
  }

  /** Stops watching and polling. The current material stays readable. */
  close (): void {
    this.#closed = true
    this.#watcher?.close()
  }

  async #reload (): Promise<Material> {
    if (this.#running !== null) {
      // A change that arrives during a reload gets a reload of its own, after this one.
      this.#again = true
      return await this.#running
    }
    this.#running = this.#attempt()
    try {
      return await this.#running
    } finally {
      this.#running = null
      if (this.#again && !this.#closed) {
        this.#again = false
        this.#reload().catch(() => {})
      }
    }
  }

  async #attempt (): Promise<Material> {
    let pems: MaterialPems | undefined
    try {
      pems = await readMaterial(this.#input)
      if (pems.digest === this.#current.digest) {
        this.#lastFailure = null
        this.#failedDigest = null
        return this.#current
      }
      // The same refused bytes again (a poll, a second event): refuse them again without a second announcement.
      if (pems.digest === this.#failedDigest && this.#lastFailure !== null) throw this.#lastFailure.error
      const material = validateMaterial(pems, this.#options)
      const previous = this.#current
      this.#current = material
      this.#lastFailure = null
      this.#failedDigest = null
      this.#lastSuccess = new Date()
      for (const listener of this.#listeners.update) listener(material, previous)
      return material
    } catch (err) {
      if (pems !== undefined && pems.digest === this.#failedDigest && err === this.#lastFailure?.error) throw err
      const error = err instanceof Error ? err : new Error(String(err))
      this.#failedDigest = pems?.digest ?? null
      this.#announceError(error)
      throw error
    }
  }

  /**
   * Starts watching the input files (their directories), or polling with `poll`. Called by `create` unless
   * `watch: false`; a caller that created the source unwatched can start it later. Idempotent.
   */
  watch (options: Pick<MaterialSourceOptions, 'debounceMs' | 'poll'> = this.#options): void {
    if (this.#closed || this.#watcher !== null) return
    this.#watcher = watchFiles(this.#files(), () => { this.#reload().catch(() => {}) }, { // refusals go to `error` listeners
      debounceMs: options.debounceMs ?? this.#options.debounceMs,
      poll: options.poll,
      onError: error => { this.#announceError(error) }
    })
  }

  #files (): string[] {
    return [this.#input.certFile, this.#input.keyFile, this.#input.caFile, this.#input.crlFile]
      .flat()
      .filter((file): file is string => typeof file === 'string')
  }

  #announceError (error: Error): void {
    const at = new Date()
    this.#lastFailure = Object.freeze({ error, at, since: this.#lastFailure?.since ?? at })
    for (const listener of this.#listeners.error) listener(error)
  }
}

/** Loads material and keeps it current; see MaterialSource. */
export async function createMaterialSource (input: MaterialInput, options: MaterialSourceOptions): Promise<MaterialSource> {
  return await MaterialSource.create(input, options)
}
