/**
 * Verdicts on forwarded headers, by header value and the verifier that judged them, for a bounded time
 * and number: a keep-alive proxy connection carrying one client's requests verifies its certificate once,
 * a change of trust (a new verifier) judges every header afresh, and a flood of distinct headers evicts the
 * oldest entries instead of growing without end.
 */
export class VerdictCache<Verdict> {
  readonly #entries = new Map<string, { verdict: Verdict, judge: object | null, until: number }>()
  readonly #maxEntries: number

  constructor (maxEntries: number) {
    this.#maxEntries = maxEntries
  }

  get (key: string, judge: object | null, now: number): Verdict | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.judge === judge && entry.until > now) return entry.verdict
    this.#entries.delete(key)
    return undefined
  }

  set (key: string, judge: object | null, verdict: Verdict, until: number): void {
    this.#entries.delete(key)
    if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value as string)
    this.#entries.set(key, { verdict, judge, until })
  }
}
