import type { FastifyBaseLogger } from 'fastify'
import type { HandshakeFailureReason } from './handshake-stats.js'

/** The longest interval a Node timer takes; a longer one fires at once. */
export const MAX_REFUSAL_LOG_INTERVAL_MS = 2 ** 31 - 1

/**
 * Logs refused handshakes at `warn`, at most one line per reason per interval, so a flood of bad clients
 * cannot flood the log: the first refusal of a reason is logged at once, later ones within the interval are
 * counted and reported by the line that ends it (a timer). A reason with nothing pending falls quiet until it
 * happens again. Lines carry the reason and a count, never anything from a certificate.
 */
export class RefusalLog {
  readonly #log: FastifyBaseLogger
  readonly #intervalMs: number
  /** Refusals not reported yet, by reason. */
  readonly #pending = new Map<HandshakeFailureReason, number>()
  /** For each reason logged within the interval, the timer that ends its interval. */
  readonly #intervals = new Map<HandshakeFailureReason, NodeJS.Timeout>()
  #closed = false

  constructor (log: FastifyBaseLogger, intervalMs: number) {
    this.#log = log
    this.#intervalMs = intervalMs
  }

  refused (reason: HandshakeFailureReason): void {
    if (this.#closed) return
    if (this.#intervals.has(reason)) this.#pending.set(reason, (this.#pending.get(reason) ?? 0) + 1)
    else this.#report(reason, 1)
  }

  /** Stops the timers and reports what is still pending (called from onClose). */
  close (): void {
    this.#closed = true
    for (const timer of this.#intervals.values()) clearTimeout(timer)
    this.#intervals.clear()
    for (const [reason, count] of this.#pending) this.#write(reason, count)
    this.#pending.clear()
  }

  // A line starts an interval: lines of one reason stay at least an interval apart.
  #report (reason: HandshakeFailureReason, count: number): void {
    this.#write(reason, count)
    const timer = setTimeout(() => { this.#endInterval(reason) }, this.#intervalMs)
    timer.unref()
    this.#intervals.set(reason, timer)
  }

  #endInterval (reason: HandshakeFailureReason): void {
    this.#intervals.delete(reason)
    const count = this.#pending.get(reason)
    if (count === undefined) return
    this.#pending.delete(reason)
    this.#report(reason, count)
  }

  #write (reason: HandshakeFailureReason, count: number): void {
    this.#log.warn({ reason, count }, `${count} TLS handshake${count === 1 ? '' : 's'} refused: ${reason} (at most one line per reason every ${this.#intervalMs} ms)`)
  }
}
