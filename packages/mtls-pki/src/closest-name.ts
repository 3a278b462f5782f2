/**
 * The candidate within a few edits of `word` (a swap of two neighbours counts as one), if any: the `did you mean`
 * of the CLI's commands and options and of the API's option keys. Same rule as mtls-core's `unknownOption`.
 */
export function closestName (word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions. */
function editDistance (a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 8) return Infinity // too far to suggest, and not worth a long word's table
  let before: number[] = []
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      let value = Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, (before[j - 2] as number) + 1)
      row.push(value)
    }
    before = previous
    previous = row
  }
  return previous[b.length] as number
}
