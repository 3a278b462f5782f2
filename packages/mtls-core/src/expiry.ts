/** A day, in milliseconds. */
export const DAY_MS = 24 * 60 * 60 * 1000

/** Seconds until a certificate expires (negative once it has). */
export function secondsToExpiry (cert: { readonly notAfter: Date }, now = Date.now()): number {
  return Math.floor((cert.notAfter.getTime() - now) / 1000)
}

/** Whole days until a certificate expires (negative once it has). */
export function daysToExpiry (cert: { readonly notAfter: Date }, now = Date.now()): number {
  return Math.floor((cert.notAfter.getTime() - now) / DAY_MS)
}
