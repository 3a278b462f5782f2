import type { WorkloadApiError } from './errors.js'

/**
 * The first update a source waits for (an X.509-SVID, the JWT bundles): settled once, by the update or by why none
 * will come. Its rejection is handled here, so that a source closed before its first update by code that never
 * called `wait` does not end the process; `wait` still rejects for whoever waits.
 */
export class FirstUpdate {
  readonly #promise: Promise<void>
  #settle: ((error?: WorkloadApiError) => void) | null = null

  constructor () {
    this.#promise = new Promise((resolve, reject) => {
      this.#settle = error => (error === undefined ? resolve() : reject(error))
    })
    this.#promise.catch(() => {})
  }

  /** Resolves the wait (no error) or rejects it; only the first call counts. */
  settle (error?: WorkloadApiError): void {
    const settle = this.#settle
    this.#settle = null
    settle?.(error)
  }

  /**
   * Resolves on the first update; rejects with `late()` after `timeoutMs`. The timer is not unref'd: while a source
   * waits for its first update, its retries' timers are, and the process must not exit.
   */
  async wait (timeoutMs: number, late: () => WorkloadApiError): Promise<void> {
    const timer = setTimeout(() => { this.settle(late()) }, timeoutMs)
    try {
      await this.#promise
    } finally {
      clearTimeout(timer)
    }
  }
}

/** A source that waits for its first update. */
interface StartingSource {
  ready: (timeoutMs: number) => Promise<void>
  close: () => void
}

/** Resolves with `source` once its first update is in; closes it and rejects if that does not come within `timeoutMs`. */
export async function started<S extends StartingSource> (source: S, timeoutMs: number): Promise<S> {
  try {
    await source.ready(timeoutMs)
  } catch (err) {
    source.close()
    throw err
  }
  return source
}
