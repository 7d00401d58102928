/**
 * `files:` and `charts:` of a bundle.yaml: the checks a schema cannot make (a dest that stays
 * inside the target, a local source that exists, no credentials in a URL, a chart reference and
 * version range that parse, duplicates) and the normalised items. Each problem names its path, so
 * it is reported as FILE:LINE:COL.
 */
import {existsSync, statSync} from 'node:fs'
import path from 'node:path'

import type {Document, LineCounter} from 'yaml'

import {parseRange} from '../core/semver.js'
import {type Issue, type Seg, label, offsetOf, withLabel} from './paths.js'
import {formatReference, parseReference} from './reference.js'
import type {FileSpec, ImageSpec, RepoChartSpec} from './types.js'

/** The registry host the names of files and classic-repository charts carry (rewritten by `install --to registry://HOST/PREFIX`). */
export const LOCAL_HOST = 'airlock.local'

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** A version as an OCI tag: Helm writes `+` as `_` (tags cannot hold `+`). */
export function versionTag(version: string): string {
  const t = version.replace(/\+/g, '_').replace(/[^\w.-]/g, '-').slice(0, 128)
  return /^\w/.test(t) ? t : `v${t}`.slice(0, 128)
}

/** A path as repository path components (lowercase, `[a-z0-9._-]`, no separator at either end). */
export function repositorySlug(p: string): string {
  return p.split('/').map((c) => c.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[._-]+|[._-]+$/g, '').replace(/[._-]{2,}/g, '-') || 'x').join('/')
}

/** `dest` normalised (`a/b`), or the reason it may not be used. */
export function checkDest(dest: string): {dest: string} | {error: string} {
  if (dest.includes('\0') || dest.includes('\\')) return {error: 'must not contain backslashes or NUL'}
  if (dest.startsWith('/')) return {error: 'must be a relative path (no leading /)'}
  if (dest.split('/').includes('..')) return {error: 'must not contain `..`'}
  const norm = path.posix.normalize(dest).replace(/\/+$/, '')
  if (norm === '.' || norm === '') return {error: 'must name a file or directory below the target'}
  return {dest: norm}
}

interface Ctx {
  doc: Document
  lc: LineCounter
  issues: Issue[]
  dir: string
  version: string
}

function pos(ctx: Ctx, segs: Seg[]): {line: number; col: number} {
  return ctx.lc.linePos(offsetOf(ctx.doc, segs, false))
}

/** `files:` checked and normalised; `version` is the bundle's (the tag of each entry). */
export function checkFiles(v: unknown, ctx: Ctx): FileSpec[] {
  const out: FileSpec[] = []
  if (!Array.isArray(v)) return out
  const seen = new Map<string, number>()
  v.forEach((item, i) => {
    const segs: Seg[] = ['files', i]
    if (!isObj(item) || typeof item.source !== 'string' || typeof item.dest !== 'string') return
    const d = checkDest(item.dest)
    if ('error' in d) return void ctx.issues.push({path: [...segs, 'dest'], code: 'file.bad_dest', message: withLabel([...segs, 'dest'], d.error)})
    const url = /^https?:\/\//i.test(item.source)
    let source = item.source
    if (url) {
      let u: URL
      try {
        u = new URL(item.source)
      } catch {
        return void ctx.issues.push({path: [...segs, 'source'], code: 'file.not_found', message: withLabel([...segs, 'source'], 'not a valid URL')})
      }
      if (u.username || u.password) {
        return void ctx.issues.push({path: [...segs, 'source'], code: 'registry.literal_secret', message: withLabel([...segs, 'source'], `credentials in a URL end up in logs and lock files: give them as registries: ${u.host}: {auth: {usernameEnv, passwordEnv}}`)})
      }
    } else {
      source = path.resolve(ctx.dir, item.source)
      if (!existsSync(source)) ctx.issues.push({path: [...segs, 'source'], code: 'file.not_found', message: withLabel([...segs, 'source'], `${item.source} not found (looked for ${source})`)})
      else if (typeof item.sha256 === 'string' && statSync(source).isDirectory()) ctx.issues.push({path: [...segs, 'sha256'], code: 'file.unreadable', message: withLabel([...segs, 'sha256'], `${item.source} is a directory: sha256 applies to one file`)})
    }
    const prev = seen.get(d.dest)
    if (prev !== undefined) {
      return void ctx.issues.push({path: [...segs, 'dest'], code: 'file.duplicate_dest', message: withLabel([...segs, 'dest'], `${d.dest} is already the dest of ${label(['files', prev])}`)})
    }
    seen.set(d.dest, i)
    const mode = typeof item.mode === 'string' && /^0?[0-7]{3}$/.test(item.mode) ? item.mode.padStart(4, '0') : '0644'
    out.push({
      source, url, dest: d.dest, mode, ...(typeof item.sha256 === 'string' ? {sha256: item.sha256} : {}),
      name: `${LOCAL_HOST}/files/${repositorySlug(d.dest)}:${versionTag(ctx.version)}`, ...pos(ctx, segs),
    })
  })
  return out
}

/** `charts:`: OCI charts as image entries (`chart: true`), classic-repository charts as RepoChartSpec. */
export function checkCharts(v: unknown, ctx: Ctx): {images: ImageSpec[]; repos: RepoChartSpec[]} {
  const images: ImageSpec[] = []
  const repos: RepoChartSpec[] = []
  if (!Array.isArray(v)) return {images, repos}
  const seen = new Map<string, number>()
  v.forEach((item, i) => {
    const segs: Seg[] = ['charts', i]
    if (!isObj(item) || typeof item.version !== 'string') return
    const bad = (key: string, message: string) => ctx.issues.push({path: [...segs, key], code: 'chart.invalid', message: withLabel([...segs, key], message)})
    const key = typeof item.chart === 'string' ? item.chart : `${String(item.repo)} ${String(item.name)}`
    const prev = seen.get(key)
    if (prev !== undefined) return bad('version', `this chart is already listed as ${label(['charts', prev])}`)
    seen.set(key, i)
    if (typeof item.chart === 'string') {
      if (!item.chart.startsWith('oci://')) return // the schema says so
      if (item.repo !== undefined || item.name !== undefined) return bad('chart', 'give either `chart: oci://…` or `repo` and `name`, not both')
      const tag = versionTag(item.version)
      let ref
      try {
        ref = parseReference(`${item.chart.replace(/^oci:\/\//, '')}:${tag}`)
      } catch (error) {
        return bad('chart', (error as Error).message)
      }
      const refString = formatReference(ref)
      images.push({ref, refString, name: refString, platforms: 'all', platformsChosen: false, subset: false, chart: true, ...pos(ctx, segs)})
      return
    }
    if (typeof item.repo !== 'string' || typeof item.name !== 'string') return bad('version', 'a chart needs `chart: oci://…`, or `repo: https://…` and `name`')
    if (!parseRange(item.version)) return bad('version', `${JSON.stringify(item.version)} is neither a version nor a semver range (e.g. 1.2.3, ^1.2, ~1.2.3, >=1.0 <2)`)
    const u = new URL(item.repo)
    if (u.username || u.password) return bad('repo', `credentials in a URL end up in logs and lock files: give them as registries: ${u.host}: {auth: {usernameEnv, passwordEnv}}`)
    repos.push({repo: item.repo.replace(/\/+$/, ''), host: u.host, name: item.name, version: item.version, ...pos(ctx, segs)})
  })
  return {images, repos}
}
