/**
 * Time limits in tests exist only to turn a hang into a failure; they are never speed targets. Each is
 * written for a quiet two-core machine with room to spare, and multiplied by MTLS_TEST_TIME_FACTOR (a number,
 * 1 when unset) for machines slower or busier than that: `MTLS_TEST_TIME_FACTOR=3 pnpm test`.
 */
export const TIME_FACTOR = timeFactor(process.env.MTLS_TEST_TIME_FACTOR)

function timeFactor (value: string | undefined): number {
  if (value === undefined || value === '') return 1
  const factor = Number(value)
  if (!Number.isFinite(factor) || factor < 1) throw new Error(`MTLS_TEST_TIME_FACTOR must be a number of at least 1, got ${JSON.stringify(value)}`)
  return factor
}

/** `ms` scaled by MTLS_TEST_TIME_FACTOR: the limit after which a wait is a hang. */
export function hangLimit (ms: number): number {
  return Math.round(ms * TIME_FACTOR)
}
