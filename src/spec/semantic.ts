/**
 * The checks a JSON Schema cannot make on a bundle.yaml (real dates, expiry in the past,
 * platforms and references that parse, duplicates, registry hosts, files that exist), and the
 * normalised spec built on the way. Runs on whatever the schema left, so all problems show at once.
 */
import {existsSync} from 'node:fs'
import path from 'node:path'

import type {Document, LineCounter} from 'yaml'

import {checkCharts, checkFiles} from './content.js'
import {EXPIRES_DURATION_RE, RFC3339_RE, parseRfc3339} from './expiry.js'
import {type Issue, type Seg, label, offsetOf, withLabel} from './paths.js'
import {formatPlatform, parsePlatform} from './platform.js'
import {formatReference, isValidRegistryHost, normalizeRegistry, parseReference, withoutDigest, type Reference} from './reference.js'
import {DEFAULT_PLATFORMS, type BundleSpec, type ImageSpec, type ReferrerChoice, type RegistryOptions, type UpstreamPolicy} from './types.js'
import {referrerChoice, upstreamPolicy, withPolicy} from './upstream.js'

export interface SemanticResult {
  issues: Issue[]
  spec?: Omit<BundleSpec, 'file' | 'dir'>
}

type Platforms = string[] | 'all' | undefined

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** Check the bundle's data (already parsed) and build the spec; `dir` resolves relative files. */
export function semanticChecks(data: unknown, dir: string, doc: Document, lc: LineCounter, now: Date): SemanticResult {
  const issues: Issue[] = []
  if (!isObj(data)) return {issues}
  const md = isObj(data.metadata) ? data.metadata : undefined
  checkExpires(md, now, issues)
  const topPlatforms = data.platforms === undefined ? [...DEFAULT_PLATFORMS] : checkPlatforms(data.platforms, ['platforms'], issues)
  const upstream = {referrers: referrerChoice(data.referrers), verify: upstreamPolicy(data.verify, ['verify'], dir, issues), dir}
  const images = new ImageChecks(doc, lc, issues, data.platforms !== undefined, upstream).run(data.images, topPlatforms)
  const registries = registryOptions(data.registries, dir, issues)
  const signing = signingSpec(data.signing, dir, issues)
  const cctx = {doc, lc, issues, dir, version: typeof md?.version === 'string' ? md.version : '0'}
  const files = checkFiles(data.files, cctx)
  const charts = checkCharts(data.charts, cctx)

  if (!md || typeof md.name !== 'string' || typeof md.version !== 'string') return {issues}
  const metadata: BundleSpec['metadata'] = {name: md.name, version: md.version}
  if (typeof md.description === 'string') metadata.description = md.description
  if (typeof md.expires === 'string') metadata.expires = md.expires
  const spec: Omit<BundleSpec, 'file' | 'dir'> = {
    metadata,
    platforms: topPlatforms ?? [...DEFAULT_PLATFORMS],
    images: [...images, ...charts.images],
    registries,
  }
  if (files.length > 0) spec.files = files
  if (charts.repos.length > 0) spec.charts = charts.repos
  if (signing) spec.signing = signing
  return {issues, spec}
}

/** metadata.expires as a date: a real one, not in the past (durations count from creation). */
function checkExpires(md: Record<string, unknown> | undefined, now: Date, issues: Issue[]): void {
  if (!md || typeof md.expires !== 'string' || EXPIRES_DURATION_RE.test(md.expires) || !RFC3339_RE.test(md.expires)) return
  const d = parseRfc3339(md.expires)
  if (!d) {
    issues.push({path: ['metadata', 'expires'], code: 'expires.invalid', message: `metadata.expires: "${md.expires}" is not a real date/time`})
  } else if (d.getTime() <= now.getTime()) {
    issues.push({path: ['metadata', 'expires'], code: 'expires.past', message: `metadata.expires: ${md.expires} is in the past`})
  }
}

function checkPlatforms(v: unknown, segs: Seg[], issues: Issue[]): Platforms {
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

/** `images`: each reference and target name parsed, duplicates pointed at their first line. */
class ImageChecks {
  private readonly images: ImageSpec[] = []
  private readonly byRef = new Map<string, number>()
  private readonly byName = new Map<string, number>()

  constructor(
    private readonly doc: Document,
    private readonly lc: LineCounter,
    private readonly issues: Issue[],
    private readonly topPlatformsChosen: boolean,
    private readonly upstream: {referrers: ReferrerChoice; verify?: UpstreamPolicy; dir: string},
  ) {}

  run(list: unknown, topPlatforms: Platforms): ImageSpec[] {
    if (Array.isArray(list)) list.forEach((item, i) => this.check(item, i, topPlatforms))
    return this.images
  }

  private lineOf(segs: Seg[]): number {
    return this.lc.linePos(offsetOf(this.doc, segs, false)).line
  }

  private check(item: unknown, i: number, topPlatforms: Platforms): void {
    const itemSegs: Seg[] = ['images', i]
    let refStr: unknown
    let refSegs: Seg[] = itemSegs
    let nameStr: unknown
    let platforms = topPlatforms
    let platformsChosen = this.topPlatformsChosen
    let subset = false
    let {referrers, verify} = this.upstream
    if (typeof item === 'string') {
      refStr = item
    } else if (isObj(item)) {
      refStr = item.ref
      refSegs = [...itemSegs, 'ref']
      nameStr = item.name
      if (item.platforms !== undefined) {
        platforms = checkPlatforms(item.platforms, [...itemSegs, 'platforms'], this.issues)
        platformsChosen = true
      }
      subset = item.subset === true
      referrers = referrerChoice(item.referrers, referrers)
      if (item.verify !== undefined) verify = upstreamPolicy(item.verify, [...itemSegs, 'verify'], this.upstream.dir, this.issues)
    } else {
      return
    }
    if (typeof refStr !== 'string' || refStr === '') return
    let ref: Reference
    try {
      ref = parseReference(refStr)
    } catch (error) {
      this.issues.push({path: refSegs, code: 'reference.invalid', message: withLabel(refSegs, (error as Error).message)})
      return
    }
    const name = this.targetName(ref, nameStr, itemSegs)
    if (name === undefined) return
    const refString = formatReference(ref)
    if (!this.unique(refString, name, {index: i, itemSegs, refSegs, named: typeof nameStr === 'string'})) return
    const pos = this.lc.linePos(offsetOf(this.doc, itemSegs, false))
    this.images.push({
      ref, refString, name, platforms: platforms ?? [...DEFAULT_PLATFORMS], platformsChosen, subset,
      referrers: withPolicy(referrers, verify), ...(verify ? {verify} : {}), line: pos.line, col: pos.col,
    })
  }

  /** The name the image gets on the target: `name` when given (no digest), else the reference without digest. */
  private targetName(ref: Reference, nameStr: unknown, itemSegs: Seg[]): string | undefined {
    if (typeof nameStr !== 'string' || nameStr === '') return formatReference(withoutDigest(ref))
    const nameSegs = [...itemSegs, 'name']
    try {
      const n = parseReference(nameStr)
      if (n.digest) {
        this.issues.push({path: nameSegs, code: 'reference.name_digest', message: withLabel(nameSegs, `target name "${nameStr}" must not contain a digest (the image keeps its digest anyway)`)})
        return undefined
      }
      return formatReference(n)
    } catch (error) {
      this.issues.push({path: nameSegs, code: 'reference.invalid', message: withLabel(nameSegs, (error as Error).message)})
      return undefined
    }
  }

  /** Record the image; false (with an issue) when the same source+name or the same name was listed before. */
  private unique(refString: string, name: string, at: {index: number; itemSegs: Seg[]; refSegs: Seg[]; named: boolean}): boolean {
    // The same source under two different target names is allowed (e.g. a platform subset).
    const prevRef = this.byRef.get(`${refString}\0${name}`)
    if (prevRef !== undefined) {
      this.issues.push({path: at.refSegs, code: 'image.duplicate', message: withLabel(at.itemSegs, `duplicate image ${refString} (already listed as images[${prevRef}] at line ${this.lineOf(['images', prevRef])})`)})
      return false
    }
    const prevName = this.byName.get(name)
    if (prevName !== undefined) {
      const nameSegs = at.named ? [...at.itemSegs, 'name'] : at.refSegs
      this.issues.push({path: nameSegs, code: 'image.duplicate_name', message: withLabel(at.itemSegs, `target name ${name} is already used by images[${prevName}] (line ${this.lineOf(['images', prevName])})`)})
      return false
    }
    this.byRef.set(`${refString}\0${name}`, at.index)
    this.byName.set(name, at.index)
    return true
  }
}

/** `registries`: valid, distinct hosts; CA files that exist; auth as env var names; mirrors. */
function registryOptions(v: unknown, dir: string, issues: Issue[]): Record<string, RegistryOptions> {
  const registries: Record<string, RegistryOptions> = {}
  if (!isObj(v)) return registries
  const seenHosts = new Map<string, string>()
  for (const [host, opts] of Object.entries(v)) {
    const segs: Seg[] = ['registries', host]
    if (!isValidRegistryHost(host)) {
      issues.push({path: segs, atKey: true, code: 'registry.invalid_host', message: `registries: \`${host}\` is not a registry host[:port] (e.g. registry.example.com or 127.0.0.1:5000)`})
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
      if (!existsSync(ro.ca)) issues.push({path: [...segs, 'ca'], code: 'file.not_found', message: withLabel([...segs, 'ca'], `CA file ${opts.ca} not found (looked for ${ro.ca})`)})
    }
    if (isObj(opts.auth) && typeof opts.auth.usernameEnv === 'string' && typeof opts.auth.passwordEnv === 'string') {
      ro.auth = {usernameEnv: opts.auth.usernameEnv, passwordEnv: opts.auth.passwordEnv}
    }
    if (Array.isArray(opts.mirrors)) ro.mirrors = opts.mirrors.filter((m): m is string => typeof m === 'string').map(normalizeRegistry)
    registries[norm] = ro
  }
  return registries
}

/** `signing`: the key file (which must exist) and the fingerprint, normalised. */
function signingSpec(v: unknown, dir: string, issues: Issue[]): BundleSpec['signing'] {
  if (!isObj(v)) return undefined
  const signing: NonNullable<BundleSpec['signing']> = {}
  if (typeof v.key === 'string' && v.key !== '') {
    signing.key = path.resolve(dir, v.key)
    if (!existsSync(signing.key)) issues.push({path: ['signing', 'key'], code: 'file.not_found', message: `signing.key: key file ${v.key} not found (looked for ${signing.key})`})
  }
  if (typeof v.fingerprint === 'string') signing.fingerprint = v.fingerprint.replace(/^0x/, '').toUpperCase()
  return signing
}
