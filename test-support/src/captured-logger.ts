export interface CapturedLogger {
  /** Fastify's `logger` option. */
  logger: { level: string, stream: { write: (line: string) => void } }
  /** Every line logged so far, parsed. */
  lines: Array<Record<string, unknown>>
}

/** A Fastify logger at `level` that keeps its lines for the test to read. */
export function capturedLogger (level = 'info'): CapturedLogger {
  const lines: Array<Record<string, unknown>> = []
  return { lines, logger: { level, stream: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } } } }
}
