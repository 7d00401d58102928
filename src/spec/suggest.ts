/** "Did you mean" helpers. */

/** Levenshtein edit distance (insert, delete, substitute; an adjacent swap counts as 1). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0
  const m = a.length
  const n = b.length
  if (m === 0) return n
  if (n === 0) return m
  // Optimal string alignment distance (Damerau-Levenshtein restricted).
  const d: number[][] = Array.from({length: m + 1}, (_, i) => {
    const row = new Array<number>(n + 1).fill(0)
    row[0] = i
    return row
  })
  for (let j = 0; j <= n; j++) d[0][j] = j
  for (let i = 1; i <= m; i++) {
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2][j - 2] + 1)
      d[i][j] = v
    }
  }
  return d[m][n]
}

/**
 * The closest candidate to `input`, if it is close enough to be a plausible typo
 * (distance at most max(1, min(3, floor(len/3))) , case-insensitive).
 */
export function closest(input: string, candidates: Iterable<string>, maxDistance?: number): string | undefined {
  const lower = input.toLowerCase()
  const limit = maxDistance ?? Math.max(1, Math.min(3, Math.floor(input.length / 3)))
  let best: string | undefined
  let bestD = Number.POSITIVE_INFINITY
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase())
    if (d < bestD) {
      best = c
      bestD = d
    }
  }
  return best !== undefined && bestD <= limit ? best : undefined
}
