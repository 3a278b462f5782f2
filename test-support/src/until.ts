import { hangLimit } from './hang-limit.js'

/**
 * Resolves once `condition()` (sync, or async: awaited) holds, polling every 10 ms; rejects naming `what` when it has not held after
 * `limitMs` (a hang limit, scaled by MTLS_TEST_TIME_FACTOR; generous by default: the wait is the assertion).
 */
export async function until (condition: () => boolean | Promise<boolean>, what: string, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + hangLimit(limitMs)
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}
