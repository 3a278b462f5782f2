import type { FastifyBaseLogger } from 'fastify'
import type { HandshakeFailureReason } from './handshake-stats.js'

/** The longest interval a Node timer takes; a longer one fires at once. */
export const MAX_REFUSAL_LOG_INTERVAL_MS = 2 ** 31 - 1

/**
 * What to do about a verification verdict, for the verdicts that alone say enough. UNABLE_TO_VERIFY_LEAF_SIGNATURE
 * is OpenSSL's verdict when the chain it could build is the client's certificate alone: no certificate the
 * client sent and no trusted CA issued it, and it is not self-signed. Most often the client presents its leaf
 * without the intermediate (a chain the client sent from another CA is UNABLE_TO_GET_ISSUER_CERT_LOCALLY).
 */
const VERDICT_HINTS: Readonly<Partial<Record<string, string>>> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the client sent its certificate without the CA certificate that issued it, and no trusted CA issued it: most likely the client presents its leaf alone; ' +
    'configure it with its chain file, the leaf followed by the intermediate (mtls-pki writes it as NAME-chain.pem; with cert-manager, tls.crt holds the chain), ' +
    'or else its CA is not one this server trusts'
}

interface Line { readonly reason: HandshakeFailureReason, readonly verdict: string | undefined }

/**
 * Logs refused handshakes at `warn`, at most one line per reason per interval, so a flood of bad clients
 * cannot flood the log: the first refusal of a reason is logged at once, later ones within the interval are
 * counted and reported by the line that ends it (a timer). A reason with nothing pending falls quiet until it
 * happens again. Lines carry the reason and a count, never anything from a certificate; a verdict with a hint
 * (VERDICT_HINTS) has lines of its own, which carry the verdict and the hint too.
 */
export class RefusalLog {
  readonly #log: FastifyBaseLogger
  readonly #intervalMs: number
  /** Refusals not reported yet, by line. */
  readonly #pending = new Map<string, number>()
  /** For each line logged within the interval, the timer that ends its interval. */
  readonly #intervals = new Map<string, NodeJS.Timeout>()
  /** The lines seen, by key: a reason, or a reason and a verdict with a hint (a few dozen at most). */
  readonly #lines = new Map<string, Line>()
  #closed = false

  constructor (log: FastifyBaseLogger, intervalMs: number) {
    this.#log = log
    this.#intervalMs = intervalMs
  }

  /** `verdict` is OpenSSL's verification result when there is one (`socket.authorizationError`). */
  refused (reason: HandshakeFailureReason, verdict?: string): void {
    if (this.#closed) return
    const hinted = verdict !== undefined && VERDICT_HINTS[verdict] !== undefined
    const key = hinted ? `${reason} ${verdict}` : reason
    if (!this.#lines.has(key)) this.#lines.set(key, { reason, verdict: hinted ? verdict : undefined })
    if (this.#intervals.has(key)) this.#pending.set(key, (this.#pending.get(key) ?? 0) + 1)
    else this.#report(key, 1)
  }

  /** Stops the timers and reports what is still pending (called from onClose). */
  close (): void {
    this.#closed = true
    for (const timer of this.#intervals.values()) clearTimeout(timer)
    this.#intervals.clear()
    for (const [key, count] of this.#pending) this.#write(key, count)
    this.#pending.clear()
  }

  // A line starts an interval: lines of one reason stay at least an interval apart.
  #report (key: string, count: number): void {
    this.#write(key, count)
    const timer = setTimeout(() => { this.#endInterval(key) }, this.#intervalMs)
    timer.unref()
    this.#intervals.set(key, timer)
  }

  #endInterval (key: string): void {
    this.#intervals.delete(key)
    const count = this.#pending.get(key)
    if (count === undefined) return
    this.#pending.delete(key)
    this.#report(key, count)
  }

  #write (key: string, count: number): void {
    const { reason, verdict } = this.#lines.get(key) as Line
    const refused = `${count} TLS handshake${count === 1 ? '' : 's'} refused: ${reason}`
    const every = `(at most one line per reason every ${this.#intervalMs} ms)`
    if (verdict === undefined) this.#log.warn({ reason, count }, `${refused} ${every}`)
    else this.#log.warn({ reason, verdict, count }, `${refused} (${verdict}): ${VERDICT_HINTS[verdict] as string} ${every}`)
  }
}
