/**
 * Load and validate a bundle.yaml: YAML (with positions) → JSON Schema (ajv) → semantic checks.
 * Every problem is reported with FILE:LINE:COL; all of them (up to MAX_PROBLEMS), sorted by position.
 */
import {existsSync} from 'node:fs'
import {readFile, stat} from 'node:fs/promises'
import path from 'node:path'

import type {ErrorObject} from 'ajv'
import {isAlias, isMap, isScalar, isSeq, Lexer, LineCounter, parseDocument, visit, type Document, type Node} from 'yaml'

import {InputError} from '../core/errors.js'
import {formatPlatform, parsePlatform} from './platform.js'
import {formatReference, isValidRegistryHost, normalizeRegistry, parseReference, withoutDigest, type Reference} from './reference.js'
import {bundleValidator} from './schema.js'
import {closest} from './suggest.js'
import {DEFAULT_PLATFORMS, type BundleSpec, type ImageSpec, type Problem, type RegistryOptions} from './types.js'

/** Largest bundle.yaml we read. */
export const MAX_SPEC_BYTES = 1024 * 1024
/** At most this many problems are reported (one more line says how many were left out). */
export const MAX_PROBLEMS = 50
/** Bound on alias expansion (yaml's maxAliasCount): stops billion-laughs documents. */
export const MAX_ALIAS_COUNT = 100
/** At most this many alias nodes (`*name`) in a document: counted by the lexer before the (slower) parse. */
export const MAX_ALIAS_NODES = 1000
/** Lexer tokens that mark structure but are not source text. */
const CONTROL_TOKENS = new Set(['\u{FEFF}', '\x02', '\x18', '\x1f'])

/** Count alias tokens with yaml's lexer (fast), stopping past the limit; offset of the first one. */
function countAliases(text: string, limit: number): {count: number; first: number} {
  let count = 0
  let first = -1
  let offset = 0
  if (!text.includes('*')) return {count, first}
  for (const tok of new Lexer().lex(text)) {
    if (tok[0] === '*') {
      if (first < 0) first = offset
      if (++count > limit) break
    }
    if (!(tok.length === 1 && CONTROL_TOKENS.has(tok))) offset += tok.length
  }
  return {count, first}
}

type Seg = string | number

interface Issue {
  path: Seg[]
  /** Point at the key of the last path segment instead of its value. */
  atKey?: boolean
  message: string
  code: string
}

const EXPIRES_DURATION_RE = /^([1-9][0-9]{0,5})([hdwy])$/
const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2}))?$/
const SECRET_KEYS: Record<string, 'usernameEnv' | 'passwordEnv'> = {
  username: 'usernameEnv', user: 'usernameEnv', login: 'usernameEnv',
  password: 'passwordEnv', passwd: 'passwordEnv', pass: 'passwordEnv', token: 'passwordEnv', secret: 'passwordEnv',
  identitytoken: 'passwordEnv', registrytoken: 'passwordEnv', accesstoken: 'passwordEnv', apikey: 'passwordEnv',
}

// ---------------------------------------------------------------------------------------------
// Dates

function parseRfc3339(s: string): Date | undefined {
  const m = RFC3339_RE.exec(s)
  if (!m) return undefined
  const [, y, mo, d, h = '00', mi = '00', sec = '00', frac = '', tz = 'Z'] = m
  const year = Number(y)
  const month = Number(mo)
  const day = Number(d)
  if (month < 1 || month > 12 || day < 1) return undefined
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate()
  if (day > daysInMonth) return undefined
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 60) return undefined
  if (tz !== 'Z' && tz !== 'z') {
    const [th, tm] = tz.slice(1).split(':').map(Number)
    if (th > 23 || tm > 59) return undefined
  }
  const iso = `${y}-${mo}-${d}T${h}:${mi}:${Math.min(Number(sec), 59).toString().padStart(2, '0')}${frac}${tz.toUpperCase()}`
  const t = Date.parse(iso)
  return Number.isNaN(t) ? undefined : new Date(t)
}

/**
 * The absolute expiry time of a bundle: `expires` is an RFC 3339 date/time, or a duration after
 * `created` (`48h`, `90d`, `12w`, `1y`). Undefined when there is no expiry. Throws InputError when invalid.
 */
export function resolveExpiry(expires: string | undefined, created: Date): Date | undefined {
  if (expires === undefined || expires === '') return undefined
  const m = EXPIRES_DURATION_RE.exec(expires)
  if (m) {
    const n = Number(m[1])
    const t = new Date(created.getTime())
    switch (m[2]) {
      case 'h':
        return new Date(t.getTime() + n * 3_600_000)
      case 'd':
        return new Date(t.getTime() + n * 86_400_000)
      case 'w':
        return new Date(t.getTime() + n * 7 * 86_400_000)
      default:
        t.setUTCFullYear(t.getUTCFullYear() + n)
        return t
    }
  }
  const d = parseRfc3339(expires)
  if (!d) {
    throw new InputError('spec.expires-invalid', `invalid expires "${expires}": use an RFC 3339 date/time (2027-12-31T00:00:00Z) or a duration such as 90d, 12w, 1y`)
  }
  return d
}

// ---------------------------------------------------------------------------------------------
// Positions

function keyString(k: unknown): string {
  if (isScalar(k)) return String(k.value)
  return String(k)
}

/** The YAML node at a JSON path (and the key node of its last segment, when in a map). */
function nodeAt(doc: Document, segs: Seg[]): {node?: Node; key?: Node; parent?: Node} {
  let cur: unknown = doc.contents
  let key: Node | undefined
  let parent: Node | undefined
  for (const seg of segs) {
    if (isAlias(cur)) cur = cur.resolve(doc)
    parent = cur as Node
    key = undefined
    if (isMap(cur)) {
      const pair = cur.items.find((p) => keyString(p.key) === String(seg))
      if (!pair) return {parent}
      key = isScalar(pair.key) || isMap(pair.key) || isSeq(pair.key) ? pair.key : undefined
      cur = pair.value
    } else if (isSeq(cur)) {
      cur = cur.items[Number(seg)]
    } else {
      return {parent}
    }
  }
  return {node: (cur ?? undefined) as Node | undefined, key, parent}
}

function offsetOf(doc: Document, segs: Seg[], atKey: boolean): number {
  // Walk up the path until something has a position.
  for (let n = segs.length; n >= 0; n--) {
    const {node, key, parent} = nodeAt(doc, segs.slice(0, n))
    const pick = atKey && n === segs.length ? key ?? node : node ?? key
    const r = (pick as {range?: [number, number, number]} | undefined)?.range
    if (r) return r[0]
    const k = (key as {range?: [number, number, number]} | undefined)?.range
    if (k) return k[0]
    const pr = (parent as {range?: [number, number, number]} | undefined)?.range
    if (pr && n === segs.length) return pr[0]
  }
  return 0
}

// ---------------------------------------------------------------------------------------------
// Labels & messages

function label(segs: Seg[]): string {
  let s = ''
  for (const seg of segs) {
    if (typeof seg === 'number') s += `[${seg}]`
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) s += (s ? '.' : '') + seg
    else s += `[${JSON.stringify(seg)}]`
  }
  return s
}

function withLabel(segs: Seg[], message: string): string {
  const l = label(segs)
  return l ? `${l}: ${message}` : message
}

function pointerToSegs(pointer: string, data: unknown): Seg[] {
  if (pointer === '') return []
  const out: Seg[] = []
  let cur: unknown = data
  for (const raw of pointer.slice(1).split('/')) {
    const s = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (Array.isArray(cur)) {
      out.push(Number(s))
      cur = cur[Number(s)]
    } else {
      out.push(s)
      cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[s] : undefined
    }
  }
  return out
}

function getAt(data: unknown, segs: Seg[]): unknown {
  let cur = data
  for (const s of segs) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string | number, unknown>)[s]
  }
  return cur
}

function jsonType(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number'
  return typeof v
}

function typeMatches(schemaType: unknown, t: string): boolean {
  const types = Array.isArray(schemaType) ? schemaType : schemaType === undefined ? [] : [schemaType]
  return types.some((st) => st === t || (st === 'number' && t === 'integer'))
}

function typeName(t: string): string {
  switch (t) {
    case 'object':
      return 'a mapping'
    case 'array':
      return 'a list'
    case 'string':
      return 'a string'
    case 'boolean':
      return 'true or false'
    case 'integer':
      return 'an integer'
    case 'number':
      return 'a number'
    default:
      return t
  }
}

const MESSAGE_KEYWORDS = new Set(['type', 'const', 'enum', 'pattern', 'minLength', 'maxLength', 'format', 'anyOf', 'oneOf'])

// ---------------------------------------------------------------------------------------------
// ajv errors → issues

function schemaIssues(errors: ErrorObject[], data: unknown): Issue[] {
  const drop = new Set<ErrorObject>()
  // anyOf / oneOf: keep the branch whose type matches the data, or the combinator's own message.
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && e.keyword !== 'oneOf') continue
    const branches = Array.isArray(e.schema) ? (e.schema as Array<{type?: unknown; const?: unknown}>) : []
    const t = jsonType(getAt(data, pointerToSegs(e.instancePath, data)))
    const matching = branches.map((b, i) => (typeMatches(b.type, t) ? i : -1)).filter((i) => i >= 0)
    const prefix = e.schemaPath + '/'
    const under = (o: ErrorObject): boolean => o.instancePath === e.instancePath || o.instancePath.startsWith(e.instancePath + '/')
    const inBranch = (o: ErrorObject, i: number): boolean => under(o) && o.schemaPath.startsWith(`${prefix}${i}/`)
    for (const o of errors) {
      if (o === e || !under(o) || !o.schemaPath.startsWith(prefix)) continue
      if (!matching.some((i) => inBranch(o, i))) drop.add(o)
    }
    if (matching.length > 0) {
      const mine = errors.filter((o) => o !== e && matching.some((i) => inBranch(o, i)))
      const shallow = mine.every((o) => o.instancePath === e.instancePath && ['const', 'enum', 'type', 'pattern'].includes(o.keyword))
      if (shallow && mine.length > 0 && (e.parentSchema as {errorMessage?: string} | undefined)?.errorMessage) {
        for (const o of mine) drop.add(o)
      } else {
        drop.add(e)
      }
    }
  }

  const kept = errors.filter((e) => !drop.has(e))
  const issues: Issue[] = []
  const suppressRequired = new Set<string>() // `${pointer}\0${prop}`
  for (const e of kept) {
    if (e.keyword !== 'additionalProperties') continue
    const segs = pointerToSegs(e.instancePath, data)
    const extra = String((e.params as {additionalProperty: string}).additionalProperty)
    const underRegistries = segs[0] === 'registries' && segs.length >= 2
    const secretFor = underRegistries ? SECRET_KEYS[extra.toLowerCase()] : undefined
    if (secretFor) {
      suppressRequired.add(`${e.instancePath}\0${secretFor}`)
      issues.push({
        path: [...segs, extra],
        atKey: true,
        code: 'registry.literal-secret',
        message: withLabel(segs, `literal credential \`${extra}\` is not allowed in bundle.yaml: put it in an environment variable and give that variable's NAME as \`${secretFor}\`${segs.length === 2 ? ' under `auth`' : ''}`),
      })
      continue
    }
    const props = Object.keys(((e.parentSchema as {properties?: Record<string, unknown>} | undefined)?.properties) ?? {})
    const present = getAt(data, segs)
    const absent = props.filter((p) => !(present && typeof present === 'object' && p in present))
    const suggestion = closest(extra, absent) ?? closest(extra, props)
    if (suggestion) suppressRequired.add(`${e.instancePath}\0${suggestion}`)
    const where = segs.length ? ` in ${label(segs)}` : ''
    issues.push({
      path: [...segs, extra],
      atKey: true,
      code: 'schema.unknown-key',
      message: suggestion
        ? `unknown key \`${extra}\`${where}, did you mean \`${suggestion}\`?`
        : `unknown key \`${extra}\`${where}${props.length ? ` (allowed: ${props.join(', ')})` : ''}`,
    })
  }

  for (const e of kept) {
    if (e.keyword === 'additionalProperties') continue
    const segs = pointerToSegs(e.instancePath, data)
    const ps = e.parentSchema as {errorMessage?: string} | undefined
    const custom = MESSAGE_KEYWORDS.has(e.keyword) ? ps?.errorMessage : undefined
    const params = e.params as Record<string, unknown>
    const value = getAt(data, segs)
    let message: string
    let code = `schema.${e.keyword}`
    switch (e.keyword) {
      case 'required': {
        const missing = String(params.missingProperty)
        if (suppressRequired.has(`${e.instancePath}\0${missing}`)) continue
        message = `missing required key \`${missing}\``
        code = 'schema.required'
        break
      }
      case 'type':
        if (segs[0] === 'registries' && segs[segs.length - 1] === 'auth' && segs.length === 3 && typeof value === 'string') {
          message = 'literal credentials are not allowed in bundle.yaml: use `auth: {usernameEnv: VAR, passwordEnv: VAR}` with the NAMES of environment variables'
          code = 'registry.literal-secret'
          break
        }
        message = custom ?? `must be ${typeName(String(params.type))}${value === null ? ' (the value is empty)' : ''}`
        break
      case 'const':
        message = custom ?? `must be \`${String(params.allowedValue)}\``
        break
      case 'enum':
        message = custom ?? `must be one of ${(params.allowedValues as unknown[]).map((v) => `\`${String(v)}\``).join(', ')}`
        break
      case 'minItems':
        message = Number(params.limit) === 1 ? 'must not be empty' : `must have at least ${String(params.limit)} items`
        break
      case 'maxItems':
        message = `must have at most ${String(params.limit)} items`
        break
      case 'maxProperties':
        message = `must have at most ${String(params.limit)} entries`
        break
      case 'uniqueItems':
        message = `has duplicate entries (items ${String(params.j)} and ${String(params.i)} are the same)`
        break
      case 'minLength':
        message = custom ?? (Number(params.limit) === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters`)
        break
      case 'maxLength':
        message = custom ?? `must be at most ${String(params.limit)} characters`
        break
      default:
        message = custom ?? e.message ?? `fails ${e.keyword}`
    }
    issues.push({path: segs, code, message: withLabel(segs, message)})
  }
  return issues
}

// ---------------------------------------------------------------------------------------------
// Semantic checks (and building the normalised spec)

interface SemanticResult {
  issues: Issue[]
  spec?: Omit<BundleSpec, 'file' | 'dir'>
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function checkPlatforms(v: unknown, segs: Seg[], issues: Issue[]): string[] | 'all' | undefined {
  if (v === 'all') return 'all'
  if (!Array.isArray(v)) return undefined
  const out: string[] = []
  const seen = new Map<string, number>()
  v.forEach((item, i) => {
    if (typeof item !== 'string' || item === '') return
    try {
      const p = formatPlatform(parsePlatform(item))
      const prev = seen.get(p)
      if (prev !== undefined) {
        issues.push({path: [...segs, i], code: 'platform.duplicate', message: withLabel([...segs, i], `duplicate platform ${p} (same as ${label([...segs, prev])})`)})
      } else {
        seen.set(p, i)
        out.push(p)
      }
    } catch (error) {
      issues.push({path: [...segs, i], code: 'platform.invalid', message: withLabel([...segs, i], (error as Error).message)})
    }
  })
  return out
}

function semanticChecks(data: unknown, dir: string, doc: Document, lc: LineCounter, now: Date): SemanticResult {
  const issues: Issue[] = []
  if (!isObj(data)) return {issues}

  // metadata.expires
  const md = isObj(data.metadata) ? data.metadata : undefined
  if (md && typeof md.expires === 'string' && !EXPIRES_DURATION_RE.test(md.expires) && RFC3339_RE.test(md.expires)) {
    const d = parseRfc3339(md.expires)
    if (!d) {
      issues.push({path: ['metadata', 'expires'], code: 'expires.invalid', message: `metadata.expires: "${md.expires}" is not a real date/time`})
    } else if (d.getTime() <= now.getTime()) {
      issues.push({path: ['metadata', 'expires'], code: 'expires.past', message: `metadata.expires: ${md.expires} is in the past`})
    }
  }

  // platforms
  const topPlatforms = data.platforms === undefined ? [...DEFAULT_PLATFORMS] : checkPlatforms(data.platforms, ['platforms'], issues)

  // images
  const images: ImageSpec[] = []
  const byRef = new Map<string, number>()
  const byName = new Map<string, number>()
  const lineOf = (segs: Seg[]): number => lc.linePos(offsetOf(doc, segs, false)).line
  if (Array.isArray(data.images)) {
    data.images.forEach((item, i) => {
      const itemSegs: Seg[] = ['images', i]
      let refStr: unknown
      let refSegs: Seg[] = itemSegs
      let nameStr: unknown
      let platforms: string[] | 'all' | undefined = topPlatforms
      if (typeof item === 'string') {
        refStr = item
      } else if (isObj(item)) {
        refStr = item.ref
        refSegs = [...itemSegs, 'ref']
        nameStr = item.name
        if (item.platforms !== undefined) platforms = checkPlatforms(item.platforms, [...itemSegs, 'platforms'], issues)
      } else {
        return
      }
      if (typeof refStr !== 'string' || refStr === '') return
      let ref: Reference
      try {
        ref = parseReference(refStr)
      } catch (error) {
        issues.push({path: refSegs, code: 'reference.invalid', message: withLabel(refSegs, (error as Error).message)})
        return
      }
      let name = formatReference(withoutDigest(ref))
      if (typeof nameStr === 'string' && nameStr !== '') {
        const nameSegs = [...itemSegs, 'name']
        try {
          const n = parseReference(nameStr)
          if (n.digest) {
            issues.push({path: nameSegs, code: 'reference.name-digest', message: withLabel(nameSegs, `target name "${nameStr}" must not contain a digest (the image keeps its digest anyway)`)})
            return
          }
          name = formatReference(n)
        } catch (error) {
          issues.push({path: nameSegs, code: 'reference.invalid', message: withLabel(nameSegs, (error as Error).message)})
          return
        }
      }
      const refString = formatReference(ref)
      // The same source under two different target names is allowed (e.g. a platform subset).
      const prevRef = byRef.get(`${refString}\0${name}`)
      if (prevRef !== undefined) {
        issues.push({path: refSegs, code: 'image.duplicate', message: withLabel(itemSegs, `duplicate image ${refString} (already listed as images[${prevRef}] at line ${lineOf(['images', prevRef])})`)})
        return
      }
      const prevName = byName.get(name)
      if (prevName !== undefined) {
        const nameSegs = typeof nameStr === 'string' ? [...itemSegs, 'name'] : refSegs
        issues.push({path: nameSegs, code: 'image.duplicate-name', message: withLabel(itemSegs, `target name ${name} is already used by images[${prevName}] (line ${lineOf(['images', prevName])})`)})
        return
      }
      byRef.set(`${refString}\0${name}`, i)
      byName.set(name, i)
      const pos = lc.linePos(offsetOf(doc, itemSegs, false))
      images.push({ref, refString, name, platforms: platforms ?? [...DEFAULT_PLATFORMS], line: pos.line, col: pos.col})
    })
  }

  // registries
  const registries: Record<string, RegistryOptions> = {}
  if (isObj(data.registries)) {
    const seenHosts = new Map<string, string>()
    for (const [host, opts] of Object.entries(data.registries)) {
      const segs: Seg[] = ['registries', host]
      if (!isValidRegistryHost(host)) {
        issues.push({path: segs, atKey: true, code: 'registry.invalid-host', message: `registries: \`${host}\` is not a registry host[:port] (e.g. registry.example.com or 127.0.0.1:5000)`})
        continue
      }
      const norm = normalizeRegistry(host)
      const prev = seenHosts.get(norm)
      if (prev !== undefined) {
        issues.push({path: segs, atKey: true, code: 'registry.duplicate', message: `registries: \`${host}\` is the same registry as \`${prev}\``})
        continue
      }
      seenHosts.set(norm, host)
      if (!isObj(opts)) continue
      const ro: RegistryOptions = {}
      if (typeof opts.insecure === 'boolean') ro.insecure = opts.insecure
      if (typeof opts.ca === 'string' && opts.ca !== '') {
        ro.ca = path.resolve(dir, opts.ca)
        if (!existsSync(ro.ca)) issues.push({path: [...segs, 'ca'], code: 'file.not-found', message: withLabel([...segs, 'ca'], `CA file ${opts.ca} not found (looked for ${ro.ca})`)})
      }
      if (isObj(opts.auth) && typeof opts.auth.usernameEnv === 'string' && typeof opts.auth.passwordEnv === 'string') {
        ro.auth = {usernameEnv: opts.auth.usernameEnv, passwordEnv: opts.auth.passwordEnv}
      }
      if (Array.isArray(opts.mirrors)) ro.mirrors = opts.mirrors.filter((m): m is string => typeof m === 'string').map(normalizeRegistry)
      registries[norm] = ro
    }
  }

  // signing
  let signing: BundleSpec['signing']
  if (isObj(data.signing)) {
    signing = {}
    if (typeof data.signing.key === 'string' && data.signing.key !== '') {
      signing.key = path.resolve(dir, data.signing.key)
      if (!existsSync(signing.key)) issues.push({path: ['signing', 'key'], code: 'file.not-found', message: `signing.key: key file ${data.signing.key} not found (looked for ${signing.key})`})
    }
    if (typeof data.signing.fingerprint === 'string') signing.fingerprint = data.signing.fingerprint.replace(/^0x/, '').toUpperCase()
  }

  if (!md || typeof md.name !== 'string' || typeof md.version !== 'string') return {issues}
  const metadata: BundleSpec['metadata'] = {name: md.name, version: md.version}
  if (typeof md.description === 'string') metadata.description = md.description
  if (typeof md.expires === 'string') metadata.expires = md.expires
  const spec: Omit<BundleSpec, 'file' | 'dir'> = {
    metadata,
    platforms: topPlatforms ?? [...DEFAULT_PLATFORMS],
    images,
    registries,
  }
  if (signing) spec.signing = signing
  return {issues, spec}
}

// ---------------------------------------------------------------------------------------------
// Entry points

function finish(problems: Problem[]): Problem[] {
  problems.sort((a, b) => a.line - b.line || a.col - b.col || a.message.localeCompare(b.message))
  if (problems.length <= MAX_PROBLEMS) return problems
  const shown = problems.slice(0, MAX_PROBLEMS)
  const last = shown[shown.length - 1]
  shown.push({file: last.file, line: last.line, col: last.col, code: 'problems.truncated', message: `…and ${problems.length - MAX_PROBLEMS} more problems not shown`})
  return shown
}

export interface ValidateOptions {
  /** "Now" for the expires-in-the-past check (default: the current time). */
  now?: Date
}

/**
 * Validate bundle.yaml text. `file` is used in problems as given and (resolved) as the base for
 * relative paths. Returns the normalised spec only when there are no problems.
 */
export function validateBundleText(text: string, file: string, opts: ValidateOptions = {}): {spec?: BundleSpec; problems: Problem[]} {
  const problems: Problem[] = []
  const at = (line: number, col: number, code: string, message: string): void => {
    problems.push({file, line, col, code, message})
  }
  if (Buffer.byteLength(text, 'utf8') > MAX_SPEC_BYTES) {
    at(1, 1, 'file.too-large', `bundle file is larger than ${MAX_SPEC_BYTES / 1024 / 1024} MiB; refusing to parse it`)
    return {problems}
  }
  const abs = path.resolve(file)
  const dir = path.dirname(abs)
  const aliases = countAliases(text, MAX_ALIAS_NODES)
  if (aliases.count > MAX_ALIAS_NODES) {
    const before = text.slice(0, Math.max(0, aliases.first))
    const line = before.split('\n').length
    const col = before.length - before.lastIndexOf('\n')
    at(line, col, 'yaml.alias-limit', `too many YAML aliases (more than ${MAX_ALIAS_NODES}): refusing a possible "billion laughs" document`)
    return {problems}
  }
  const lc = new LineCounter()
  const doc = parseDocument(text, {lineCounter: lc, uniqueKeys: true, prettyErrors: false, strict: true, merge: false, keepSourceTokens: false})

  let fatal = false
  for (const err of doc.errors) {
    const pos = lc.linePos(err.pos[0])
    if (err.code === 'DUPLICATE_KEY') {
      const keyText = (/^\s*("[^"\n]*"|'[^'\n]*'|[^:\n,{}[\]]*?)\s*:/.exec(text.slice(err.pos[0], err.pos[0] + 300))?.[1] ?? '').trim()
      at(pos.line, pos.col, 'yaml.duplicate-key', keyText ? `duplicate key \`${keyText}\` (keys must be unique)` : 'duplicate key (keys must be unique)')
    } else {
      fatal = true
      // One syntax error per line: the parser's follow-on errors add nothing.
      if (problems.some((p) => p.code === 'yaml.syntax' && p.line === pos.line)) continue
      at(pos.line, pos.col, 'yaml.syntax', `YAML syntax error: ${err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`)
    }
  }
  for (const w of doc.warnings) {
    const pos = lc.linePos(w.pos[0])
    at(pos.line, pos.col, 'yaml.warning', `YAML: ${w.message.split('\n')[0]}`)
  }
  if (fatal) return {problems: finish(problems)}

  let data: unknown
  try {
    data = doc.toJS({maxAliasCount: MAX_ALIAS_COUNT})
  } catch (error) {
    let offset = 0
    visit(doc, {
      Alias(_k, node) {
        offset = node.range?.[0] ?? 0
        return visit.BREAK
      },
    })
    const pos = lc.linePos(offset)
    const msg = /alias/i.test((error as Error).message)
      ? `too many YAML alias expansions (limit ${MAX_ALIAS_COUNT}): refusing a possible "billion laughs" document`
      : `cannot read the YAML document: ${(error as Error).message}`
    at(pos.line, pos.col, 'yaml.alias-limit', msg)
    return {problems: finish(problems)}
  }
  if (data === null || data === undefined) {
    at(1, 1, 'spec.empty', 'bundle file is empty (start with `airlock init`)')
    return {problems: finish(problems)}
  }

  const validate = bundleValidator()
  const issues: Issue[] = []
  if (!validate(data)) issues.push(...schemaIssues(validate.errors ?? [], data))
  const sem = semanticChecks(data, dir, doc, lc, opts.now ?? new Date())
  issues.push(...sem.issues)
  // One problem per position+message.
  const seen = new Set<string>()
  for (const is of issues) {
    const pos = lc.linePos(offsetOf(doc, is.path, Boolean(is.atKey)))
    const k = `${pos.line}:${pos.col}:${is.message}`
    if (seen.has(k)) continue
    seen.add(k)
    at(pos.line, pos.col, is.code, is.message)
  }
  if (problems.length > 0 || !sem.spec) {
    if (problems.length === 0) at(1, 1, 'spec.invalid', 'bundle file is not a valid airlock/v1 Bundle')
    return {problems: finish(problems)}
  }
  return {spec: {file: abs, dir, ...sem.spec}, problems: []}
}

/** Format a problem as `FILE:LINE:COL: message`. */
export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.message}`
}

/** Read a bundle.yaml (at most 1 MiB), with the file's problems, or an InputError when unreadable. */
export async function readBundleText(file: string): Promise<string> {
  let size: number
  try {
    const st = await stat(file)
    if (st.isDirectory()) throw new InputError('spec.not-a-file', `${file} is a directory, not a bundle.yaml`)
    size = st.size
  } catch (error) {
    if (error instanceof InputError) throw error
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new InputError('spec.not-found', `${file} not found (create one with \`airlock init\`)`)
    throw new InputError('spec.unreadable', `cannot read ${file}: ${(error as Error).message}`, {cause: error})
  }
  if (size > MAX_SPEC_BYTES) throw new InputError('spec.too-large', `${file} is larger than ${MAX_SPEC_BYTES / 1024 / 1024} MiB; refusing to parse it`)
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    throw new InputError('spec.unreadable', `cannot read ${file}: ${(error as Error).message}`, {cause: error})
  }
}

/**
 * Load, validate and normalise a bundle.yaml. Throws InputError('spec.invalid') whose details are
 * `FILE:LINE:COL: message` lines when the file has problems.
 */
export async function loadBundleSpec(file: string, opts: ValidateOptions = {}): Promise<BundleSpec> {
  const text = await readBundleText(file)
  const {spec, problems} = validateBundleText(text, file, opts)
  if (!spec || problems.length > 0) {
    throw new InputError('spec.invalid', `${file} is not a valid bundle (${problems.length} problem${problems.length === 1 ? '' : 's'})`, {
      details: problems.map(formatProblem),
    })
  }
  return spec
}
