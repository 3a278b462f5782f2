import { describeThrown } from './errors.js'
import { watchFiles, type FileWatcher } from './file-watcher.js'

/** What a source's `load` returns: the value, and a digest of every byte read (equal digests: nothing changed). */
export interface Loaded<T> {
  readonly value: T
  readonly digest: string
}

/** What a FileSource reads, and how. Neither step has side effects. */
export interface FileSourceSpec<T, R = unknown> {
  /** The files it reads; their directories are watched. */
  files: () => readonly string[]
  /** Reads every file together: what was read, and a digest of every byte (equal digests: nothing changed). */
  read: () => Promise<{ readonly raw: R, readonly digest: string }>
  /** Parses and validates what was read; throws a coded error naming the file and the reason. */
  validate: (raw: R) => T
}

export interface FileSourceOptions {
  /** Watch the files' directories and reload on change. Default: `true` when there are files. */
  watch?: boolean
  /** Quiet time after the last file event before reloading, in ms. Default: 100. */
  debounceMs?: number
  /** Poll instead of watching, every this many ms (`true`: 1000), where file events do not work. Default: `false`. */
  poll?: boolean | number
}

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

/** Puts a validated value in service; throwing refuses it, and nothing is committed. */
export type ApplyListener<T> = (value: T, previous: T) => void
/** Told after a value was applied and committed; `failedAttempts` counts the failures it ends. */
export type UpdateListener<T> = (value: T, previous: T, info: { readonly failedAttempts: number }) => void
/** Told once per distinct failure (the same refused bytes failing the same way again are not told twice). */
export type ErrorListener = (error: Error) => void

/**
 * One reload protocol for everything that reloads from files (certificate material, ticket keys, an
 * authorization policy): read, validate, apply, commit. `load` reads and validates; `apply` listeners put
 * the value in service and may refuse it by throwing, in which case those already applied are given the
 * previous value back, nothing is committed, the failure is reported and the old value keeps serving.
 * Only then is the value `current`, and `update` listeners hear of it. One watcher (directories, so
 * Kubernetes' `..data` swap and rename-on-save are seen), one debounce, one report per distinct failure.
 */
export class FileSource<T> {
  readonly #spec: FileSourceSpec<T>
  readonly #options: FileSourceOptions
  #current: Loaded<T>
  #lastFailure: ReloadFailure | null = null
  #failedDigest: string | null = null
  #failedAttempts = 0
  #lastSuccess: Date | null = null
  readonly #listeners = { apply: new Set<ApplyListener<T>>(), update: new Set<UpdateListener<T>>(), error: new Set<ErrorListener>() }
  #watcher: FileWatcher | null = null
  #watchUsers = 0
  #watchOptions: Pick<FileSourceOptions, 'debounceMs' | 'poll'> | null = null
  #watchedFiles = ''
  #running: Promise<T> | null = null
  #again = false
  #closed = false

  constructor (spec: FileSourceSpec<T, any>, initial: Loaded<T>, options: FileSourceOptions = {}) {
    this.#spec = spec
    this.#options = { ...options }
    this.#current = initial
  }

  /** The value in service: always whole, valid and applied. */
  get current (): T {
    return this.#current.value
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

  on (event: 'apply', listener: ApplyListener<T>): this
  on (event: 'update', listener: UpdateListener<T>): this
  on (event: 'error', listener: ErrorListener): this
  on (event: 'apply' | 'update' | 'error', listener: ApplyListener<T> | UpdateListener<T> | ErrorListener): this {
    (this.#listeners[event] as Set<typeof listener>).add(listener)
    return this
  }

  off (event: 'apply' | 'update' | 'error', listener: ApplyListener<T> | UpdateListener<T> | ErrorListener): this {
    (this.#listeners[event] as Set<typeof listener>).delete(listener)
    return this
  }

  /**
   * Reads, validates and applies now, even bytes refused before (a failure to apply may have passed).
   * Resolves with the value in service afterwards; rejects when refused, and the old value stays.
   * Concurrent calls share one reload.
   */
  async reload (): Promise<T> {
    return await this.#reload(true)
  }

  /**
   * Reloads after switching what `read` reads: `change` runs when no other reload is running, switches
   * and returns how to undo it, which runs when the reload is refused, before any other reload reads.
   * MaterialSource switches its inputs this way.
   */
  protected async reloadWith (change: () => () => void): Promise<T> {
    return await this.#reload(true, change)
  }

  /**
   * Starts watching (or polling) for a user, with the options given at creation unless others are given; the
   * files are watched once however many users ask. Returns how that user stops: watching ends when the last
   * user has stopped (two apps on one source: the one closing first leaves the other watching).
   */
  watch (options: Pick<FileSourceOptions, 'debounceMs' | 'poll'> = this.#options): () => void {
    if (this.#closed) return () => {}
    if (this.#watcher === null) this.#startWatcher(options) // counted once it has started: a throw leaves no user behind
    this.#watchUsers++
    let stopped = false
    return () => {
      if (stopped) return
      stopped = true
      if (--this.#watchUsers === 0) this.#stopWatcher()
    }
  }

  /** Stops watching and polling for good, for every user. The current value stays readable. */
  close (): void {
    this.#closed = true
    this.#watchUsers = 0
    this.#stopWatcher()
  }

  #startWatcher (options: Pick<FileSourceOptions, 'debounceMs' | 'poll'>): void {
    this.#watchOptions = options
    const files = this.#spec.files()
    this.#watchedFiles = files.join('\0')
    this.#watcher = watchFiles(files, () => { this.#reload(false).catch(() => {}) }, { // refusals go to `error` listeners
      debounceMs: options.debounceMs ?? this.#options.debounceMs,
      poll: options.poll ?? this.#options.poll,
      onError: error => { this.#fail(error, null) }
    })
  }

  #stopWatcher (): void {
    this.#watcher?.close()
    this.#watcher = null
  }

  async #reload (force: boolean, change?: () => () => void): Promise<T> {
    if (this.#running !== null && change === undefined) {
      // A change that arrives during a reload gets a reload of its own, after this one.
      this.#again = true
      return await this.#running
    }
    // A switch of what is read waits its turn: it must neither read under another reload nor be joined by one.
    while (this.#running !== null) await this.#running.catch(() => {})
    const undo = change?.()
    this.#running = this.#attempt(force)
    try {
      return await this.#running
    } catch (err) {
      undo?.()
      throw err
    } finally {
      this.#running = null
      if (this.#again && !this.#closed) {
        this.#again = false
        this.#reload(false).catch(() => {})
      }
    }
  }

  async #attempt (force: boolean): Promise<T> {
    let digest: string | null = null
    try {
      const read = await this.#spec.read()
      digest = read.digest
      if (digest === this.#current.digest) {
        if (this.#lastFailure !== null) this.#succeeded() // the files are back to what serves
        return this.#current.value
      }
      // The same refused bytes again, from a watcher: refuse them without trying or telling again.
      if (!force && digest === this.#failedDigest && this.#lastFailure !== null) throw this.#lastFailure.error
      const loaded = { value: this.#spec.validate(read.raw), digest }
      const previous = this.#current.value
      this.#apply(loaded.value, previous)
      this.#current = loaded
      const failedAttempts = this.#succeeded()
      this.#tell(loaded.value, previous, failedAttempts)
      this.#rewatchIfMoved()
      return loaded.value
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err))
      this.#failedAttempts++
      this.#fail(error, digest)
      throw error
    }
  }

  // Committed is committed: a listener that throws is a bug of its own, shown as a warning, and does not turn
  // the reload into a failure while the new value serves.
  #tell (value: T, previous: T, failedAttempts: number): void {
    for (const listener of this.#listeners.update) {
      try {
        listener(value, previous, { failedAttempts })
      } catch (err) {
        process.emitWarning(`an update listener of a FileSource threw: ${describeThrown(err)}`, { code: 'MTLS_UPDATE_LISTENER_THREW' })
      }
    }
  }

  // Every apply listener, or none: when one refuses, those before it get the previous value back.
  #apply (value: T, previous: T): void {
    const applied: Array<ApplyListener<T>> = []
    try {
      for (const listener of this.#listeners.apply) {
        listener(value, previous)
        applied.push(listener)
      }
    } catch (err) {
      for (const listener of applied.reverse()) {
        try {
          listener(previous, value)
        } catch {} // the refusal is what gets reported; the previous value was in service a moment ago
      }
      throw err
    }
  }

  #succeeded (): number {
    const failedAttempts = this.#failedAttempts
    this.#lastFailure = null
    this.#failedDigest = null
    this.#failedAttempts = 0
    this.#lastSuccess = new Date()
    return failedAttempts
  }

  // Told once: the same bytes failing with the same message again are only counted in failedAttempts.
  #fail (error: Error, digest: string | null): void {
    const last = this.#lastFailure
    const repeated = last !== null && digest !== null && digest === this.#failedDigest && (last.error === error || last.error.message === error.message)
    this.#failedDigest = digest
    if (repeated) return
    const at = new Date()
    this.#lastFailure = Object.freeze({ error, at, since: last?.since ?? at })
    for (const listener of this.#listeners.error) listener(error)
  }

  // New inputs (MaterialSource.reload(input)) may live elsewhere: the watcher follows them.
  #rewatchIfMoved (): void {
    if (this.#watcher === null || this.#spec.files().join('\0') === this.#watchedFiles) return
    this.#stopWatcher()
    this.#startWatcher(this.#watchOptions ?? this.#options)
  }
}

/** Reads and validates through `spec` (throwing when the files cannot be used), then watches unless `watch: false`. */
export async function createFileSource<T, R> (spec: FileSourceSpec<T, R>, options: FileSourceOptions = {}): Promise<FileSource<T>> {
  const source = new FileSource(spec, await loadOnce(spec), options)
  if (wantsWatching(spec, options)) source.watch()
  return source
}

/** The `watch` default: when `watch` is true, or not false and there are files. */
export function wantsWatching (spec: Pick<FileSourceSpec<unknown>, 'files'>, options: FileSourceOptions): boolean {
  return options.watch === true || (options.watch !== false && spec.files().length > 0)
}

/** The first read and validation, before anything serves: a failure is thrown to the caller. */
export async function loadOnce<T, R> (spec: FileSourceSpec<T, R>): Promise<Loaded<T>> {
  const { raw, digest } = await spec.read()
  return { value: spec.validate(raw), digest }
}
