/** Reconnection delays: doubling from `initialMs` up to `maxMs`, each drawn in [half, whole] so clients spread out. */
export interface BackoffOptions {
  /** Default: 100. */
  initialMs?: number
  /** Default: 30000. */
  maxMs?: number
}

/** The delays when none are given: from 100 ms, doubling, up to 30 s. */
export const DEFAULT_BACKOFF = Object.freeze({ initialMs: 100, maxMs: 30_000 })

export class Backoff {
  readonly #initialMs: number
  readonly #maxMs: number
  readonly #random: () => number
  #attempt = 0

  constructor (options: BackoffOptions = {}, random: () => number = Math.random) {
    this.#initialMs = options.initialMs ?? DEFAULT_BACKOFF.initialMs
    this.#maxMs = options.maxMs ?? DEFAULT_BACKOFF.maxMs
    this.#random = random
  }

  next (): number {
    const ceiling = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(this.#attempt, 30))
    this.#attempt += 1
    return Math.round(ceiling / 2 + this.#random() * ceiling / 2)
  }

  reset (): void {
    this.#attempt = 0
  }
}
