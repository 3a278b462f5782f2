// Time limits in these tests only turn a hang into a failure; they are never speed targets. Each is written for a
// quiet two-core machine with room to spare, and multiplied by MTLS_TEST_TIME_FACTOR (a number of at least 1, 1 when
// unset), as mtls-test-support's hangLimit does for the packages: `MTLS_TEST_TIME_FACTOR=3 pnpm test`.
import { setTimeout as delay } from 'node:timers/promises'

const value = process.env.MTLS_TEST_TIME_FACTOR
const factor = value === undefined || value === '' ? 1 : Number(value)
if (!Number.isFinite(factor) || factor < 1) throw new Error(`MTLS_TEST_TIME_FACTOR must be a number of at least 1, got ${JSON.stringify(value)}`)

/** `ms` scaled by MTLS_TEST_TIME_FACTOR: the limit after which a wait is a hang. */
export const hangLimit = ms => Math.round(ms * factor)

/** Resolves once `condition()` (sync or async) holds, polling every 25 ms; throws `what()` (or `what`) after `limitMs`, scaled. */
export async function until (condition, what, limitMs = 30_000) {
  const deadline = Date.now() + hangLimit(limitMs)
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`)
    await delay(25)
  }
}
