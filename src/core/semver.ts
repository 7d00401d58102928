/**
 * The semver versions and ranges a Helm repository's index.yaml is searched with (the subset Helm
 * users write): `1.2.3`, `=1.2.3`, `v1.2.3`, comparators `>`, `>=`, `<`, `<=`, wildcards `1.x`,
 * `1.2.*`, `*`, caret `^1.2`, tilde `~1.2.3`, hyphen ranges `1.2 - 1.4`, space-separated AND and
 * `||`. Pre-releases match only a range that names one on the same major.minor.patch (node-semver's rule).
 */

export interface SemVer {
  major: number
  minor: number
  patch: number
  pre: string[]
}

const VERSION_RE = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/

export function parseVersion(s: string): SemVer | undefined {
  const m = VERSION_RE.exec(s.trim())
  if (!m) return undefined
  return {major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), pre: m[4] ? m[4].split('.') : []}
}

function comparePre(a: string[], b: string[]): number {
  if (a.length === 0 || b.length === 0) return b.length - a.length // a release sorts after its pre-releases
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] === undefined) return -1
    if (b[i] === undefined) return 1
    const na = /^\d+$/.test(a[i]) ? Number(a[i]) : undefined
    const nb = /^\d+$/.test(b[i]) ? Number(b[i]) : undefined
    if (na !== undefined && nb !== undefined) {
      if (na !== nb) return na - nb
    } else if (na !== undefined || nb !== undefined) {
      return na === undefined ? 1 : -1
    } else if (a[i] !== b[i]) {
      return a[i] < b[i] ? -1 : 1
    }
  }
  return 0
}

export function compareVersions(a: SemVer, b: SemVer): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch || comparePre(a.pre, b.pre)
}

type Op = '<' | '<=' | '>' | '>=' | '='
interface Comparator {
  op: Op
  v: SemVer
}

/** A partial version `1`, `1.2`, `1.x`, `1.2.*`: the numbers given (undefined from the first wildcard on). */
interface Partial {
  parts: (number | undefined)[]
  pre: string[]
}

const PARTIAL_RE = /^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/

function parsePartial(s: string): Partial | undefined {
  const m = PARTIAL_RE.exec(s)
  if (!m) return undefined
  const parts: (number | undefined)[] = []
  for (const p of [m[1], m[2], m[3]]) {
    if (p === undefined || /[xX*]/.test(p) || parts.includes(undefined)) parts.push(undefined)
    else parts.push(Number(p))
  }
  return {parts, pre: m[4] ? m[4].split('.') : []}
}

const v = (major: number, minor: number, patch: number, pre: string[] = []): SemVer => ({major, minor, patch, pre})

/** The lowest version a partial names, and the first version above everything it names (none for `*`). */
function bounds(p: Partial): {low: SemVer; high?: SemVer} {
  const [a, b, c] = p.parts
  if (a === undefined) return {low: v(0, 0, 0)}
  if (b === undefined) return {low: v(a, 0, 0), high: v(a + 1, 0, 0, ['0'])}
  if (c === undefined) return {low: v(a, b, 0), high: v(a, b + 1, 0, ['0'])}
  return {low: v(a, b, c, p.pre), high: v(a, b, c + 1, ['0'])}
}

function comparators(token: string): Comparator[] | undefined {
  const m = /^(\^|~>?|[<>]=?|=)?\s*(.+)$/.exec(token)
  if (!m) return undefined
  const p = parsePartial(m[2])
  if (!p) return undefined
  const {low, high} = bounds(p)
  const [a, b, c] = p.parts
  const exact = c !== undefined
  switch (m[1]) {
    case undefined:
    case '=':
      return exact ? [{op: '=', v: low}] : [{op: '>=', v: low}, ...(high ? [{op: '<' as const, v: high}] : [])]
    case '>=':
      return [{op: '>=', v: low}]
    case '>':
      return high && !exact ? [{op: '>=', v: high}] : [{op: '>', v: low}]
    case '<':
      return [{op: '<', v: low}]
    case '<=':
      return exact || !high ? [{op: '<=', v: low}] : [{op: '<', v: high}]
    case '^': {
      if (a === undefined) return [{op: '>=', v: low}]
      const top = a > 0 || b === undefined ? v(a + 1, 0, 0, ['0']) : b > 0 || c === undefined ? v(0, b + 1, 0, ['0']) : v(0, 0, c + 1, ['0'])
      return [{op: '>=', v: low}, {op: '<', v: top}]
    }
    default: { // ~ and ~>
      if (a === undefined) return [{op: '>=', v: low}]
      const top = b === undefined ? v(a + 1, 0, 0, ['0']) : v(a, b + 1, 0, ['0'])
      return [{op: '>=', v: low}, {op: '<', v: top}]
    }
  }
}

function test(c: Comparator, x: SemVer): boolean {
  const d = compareVersions(x, c.v)
  switch (c.op) {
    case '<': return d < 0
    case '<=': return d <= 0
    case '>': return d > 0
    case '>=': return d >= 0
    default: return d === 0
  }
}

export type Range = Comparator[][]

/** Parse a range; undefined when it is not one. */
export function parseRange(s: string): Range | undefined {
  const out: Range = []
  for (const alt of s.split('||')) {
    const hyphen = /^\s*(\S+)\s+-\s+(\S+)\s*$/.exec(alt)
    const tokens = hyphen ? [`>=${hyphen[1]}`, `<=${hyphen[2]}`] : alt.trim().replace(/(\^|~>?|[<>]=?|=)\s+/g, '$1').split(/\s+/).filter(Boolean)
    if (tokens.length === 0) tokens.push('*')
    const set: Comparator[] = []
    for (const t of tokens) {
      const cs = comparators(t)
      if (!cs) return undefined
      set.push(...cs)
    }
    out.push(set)
  }
  return out
}

/** Pre-releases only match a comparator set that names a pre-release of the same major.minor.patch. */
function preAllowed(set: Comparator[], x: SemVer): boolean {
  if (x.pre.length === 0) return true
  return set.some((c) => c.v.pre.length > 0 && c.v.pre[0] !== '0' && c.v.major === x.major && c.v.minor === x.minor && c.v.patch === x.patch)
}

export function satisfies(version: string, range: Range): boolean {
  const x = parseVersion(version)
  if (!x) return false
  return range.some((set) => set.every((c) => test(c, x)) && preAllowed(set, x))
}

/** The highest of `versions` that satisfies `range` (strings as given), or undefined. */
export function maxSatisfying(versions: string[], range: Range): string | undefined {
  let best: {s: string; v: SemVer} | undefined
  for (const s of versions) {
    const x = parseVersion(s)
    if (!x || !satisfies(s, range)) continue
    if (!best || compareVersions(x, best.v) > 0) best = {s, v: x}
  }
  return best?.s
}
