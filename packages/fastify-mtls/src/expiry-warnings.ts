import type { CertificateSummary } from 'mtls-core'
import { daysToExpiry } from 'mtls-core/internal'

/**
 * Decides when to warn about a certificate's expiry: once per threshold per certificate, and when several
 * thresholds are crossed at once (a restart with 5 days left), once for the nearest.
 */
export class ExpiryWarnings {
  readonly #thresholds: number[]
  readonly #warned = new Set<string>()

  constructor (thresholds: readonly number[]) {
    this.#thresholds = [...thresholds].sort((a, b) => a - b)
  }

  /** The message to log now, if any. */
  check (cert: CertificateSummary, now = Date.now()): { daysLeft: number, threshold: number } | null {
    const daysLeft = daysToExpiry(cert, now)
    const crossed = this.#thresholds.filter(threshold => daysLeft < threshold)
    const nearest = crossed[0]
    if (nearest === undefined || this.#warned.has(`${cert.fingerprint256}/${nearest}`)) return null
    for (const threshold of crossed) this.#warned.add(`${cert.fingerprint256}/${threshold}`)
    return { daysLeft, threshold: nearest }
  }
}

/** Past this fraction of its lifetime, a pushed certificate's rotation is late: SPIRE's agent rotates at half. */
export const LATE_ROTATION_FRACTION = 2 / 3

/**
 * Timers take at most 2^31 - 1 ms (about 24.8 days): Node runs a longer one after 1 ms instead, with a warning. A later
 * moment is reached through a check that finds nothing to say and sets the next timer.
 */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Decides when to warn about a certificate a feed pushed (an X.509-SVID: one hour by SPIRE's default), by its
 * lifetime rather than days left (a calendar threshold would warn at every rotation): once when it passes 2/3 of its
 * lifetime still in force (no newer one came), and once, as an error, when it expires in force.
 */
export class LifetimeWarnings {
  readonly #warned = new Set<string>()

  /** What to log now, if anything. */
  check (cert: CertificateSummary, now = Date.now()): { level: 'warn' | 'error', message: string } | null {
    const { late, end } = moments(cert)
    if (now < late) return null
    const stage = now >= end ? 'expired' : 'late'
    const key = `${cert.fingerprint256}/${stage}`
    if (this.#warned.has(key)) return null
    this.#warned.add(key)
    return stage === 'expired'
      ? { level: 'error', message: `the server certificate expired at ${cert.notAfter.toISOString()} and the feed sent no newer one: clients refuse it until one comes` }
      : { level: 'warn', message: `the server certificate has passed 2/3 of its lifetime (it expires at ${cert.notAfter.toISOString()}) and the feed sent no newer one: its rotation is late` }
  }

  /**
   * The delay of a timer that runs check() once it may have something new to say about `cert` (a millisecond past the
   * moment, never more than a timer takes), or `null` once it expired.
   */
  nextCheck (cert: CertificateSummary, now = Date.now()): number | null {
    const { late, end } = moments(cert)
    const next = now < late ? late : now < end ? end : null
    return next === null ? null : Math.min(next - now + 1, MAX_TIMER_MS)
  }
}

function moments (cert: CertificateSummary): { late: number, end: number } {
  const start = cert.notBefore.getTime()
  const end = cert.notAfter.getTime()
  return { late: start + (end - start) * LATE_ROTATION_FRACTION, end }
}
