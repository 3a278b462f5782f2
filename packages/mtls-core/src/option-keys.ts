/**
 * Why an options object is refused for an unknown key, naming the key, where it was given and the
 * closest known key; `null` when every key is known. TypeScript users are stopped by the types; this is
 * for JavaScript users, for whom `{ sever: ... }` would otherwise silently turn a check off. The keys are
 * those `snapshotOptions` reads: a misspelt class getter is caught like a misspelt property.
 * Each package wraps the message in its own coded error.
 */
export function unknownOption (options: object, known: readonly string[], where: string): string | null {
  for (const key of optionKeys(options)) {
    if (known.includes(key)) continue
    const closest = closestKey(key, known)
    return `${where}: unknown option ${JSON.stringify(key)}${closest === null ? '' : ` (did you mean ${JSON.stringify(closest)}?)`}; known options: ${known.join(', ')}`
  }
  return null
}

/**
 * The options an object gives, read once into a plain object without a prototype: its own enumerable
 * keys, and for an object built on another (a class instance, defaults layered with `Object.create`) the
 * keys its prototypes define, up to but never including `Object.prototype`. So a class getter or a layered
 * default is honoured, and a polluted `Object.prototype` (`defaultPolicy`, `mtls`) adds nothing.
 */
export function snapshotOptions<T extends object> (options: T): T {
  const snapshot = Object.create(null) as Record<string, unknown>
  for (const key of optionKeys(options)) snapshot[key] = (options as Record<string, unknown>)[key]
  return snapshot as T
}

function optionKeys (options: object): string[] {
  const keys = Object.keys(options)
  for (let proto = Object.getPrototypeOf(options) as object | null; proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      // Methods count too: a `server()` authorizer written as a method must be read, or refused, never dropped.
      if (key !== 'constructor' && !keys.includes(key)) keys.push(key)
    }
  }
  return keys
}

// The known key within a few edits of the typo (transpositions count as one), else none.
function closestKey (key: string, known: readonly string[]): string | null {
  let best: string | null = null
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1
  const lower = key.toLowerCase()
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions. */
function editDistance (a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 8) return Infinity
  const rows: number[][] = []
  for (let i = 0; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j)
        continue
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let value = Math.min((rows[i - 1] as number[])[j] as number + 1, row[j - 1] as number + 1, (rows[i - 1] as number[])[j - 1] as number + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, (rows[i - 2] as number[])[j - 2] as number + 1)
      row.push(value)
    }
    rows.push(row)
  }
  return (rows[a.length] as number[])[b.length] as number
}
