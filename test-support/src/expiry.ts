import { hangLimit } from './hang-limit.js'
import { until } from './until.js'

/**
 * Builds something that expires (a certificate's notAfter, a CRL's nextUpdate) at `expiry`, a whole second as X.509
 * has it, and looks at it while it is valid: `setup` returns what it saw, for the test to assert. A setup that ends
 * at or past `expiry` (or fails then: a handshake refused for the expiry) cannot tell what it saw was before it: it
 * runs again with twice the lead, so that no machine is too slow for the test, and a fast one waits about two seconds.
 */
export async function beforeExpiry<T extends object> (t: { comment: (message: string) => void }, setup: (expiry: Date) => Promise<T>, leadMs = 1000): Promise<T & { expiry: Date }> {
  for (let lead = leadMs; ; lead *= 2) {
    const expiry = new Date(Math.ceil((Date.now() + lead) / 1000) * 1000)
    try {
      const seen = await setup(expiry)
      if (Date.now() < expiry.getTime()) return { ...seen, expiry }
    } catch (err) {
      if (Date.now() < expiry.getTime() || lead > hangLimit(30_000)) throw err
    }
    t.comment(`the setup outlasted its ${lead} ms before the expiry: again with ${2 * lead} ms`)
  }
}

/** Resolves once `expiry` has passed for OpenSSL too, which counts whole seconds. */
export async function pastExpiry (expiry: Date): Promise<void> {
  const end = expiry.getTime() + 1000
  await until(() => Date.now() > end, `the clock past ${expiry.toISOString()}`, Math.max(30_000, end - Date.now() + 30_000))
}
