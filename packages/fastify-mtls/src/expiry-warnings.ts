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
