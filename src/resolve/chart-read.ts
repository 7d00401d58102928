/**
 * Read a Helm chart archive (.tgz) without extracting it: a bounded gunzip and tar walk that keeps
 * only the chart's own `Chart.yaml` and `values.yaml` (`NAME/Chart.yaml`, one directory deep),
 * capped in size. Entry names are compared, never used as paths; links, devices and everything
 * else are skipped unread. A hostile archive (gzip bomb, huge entry) fails with a clear error.
 */
import {Readable, Transform} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGunzip} from 'node:zlib'

import tarStream from 'tar-stream'
import YAML from 'yaml'

import {AirlockError} from '../core/errors.js'

/** Most a chart may inflate to (every entry, read or skipped). */
export const MAX_CHART_INFLATED = 256 * 1024 * 1024
/** Most Chart.yaml or values.yaml may be. */
export const MAX_CHART_FILE = 4 * 1024 * 1024

export interface ChartFiles {
  chartYaml?: Buffer
  valuesYaml?: Buffer
}

const WANTED = /^[^/]+\/(Chart|values)\.yaml$/

export async function readChartFiles(untrustedTgz: Buffer, what: string): Promise<ChartFiles> {
  const out: ChartFiles = {}
  const extract = tarStream.extract()
  let inflated = 0
  const bad = (why: string) => new AirlockError('chart.bad_archive', `${what}: ${why}`)
  extract.on('entry', (header, stream, next) => {
    const keep = header.type === 'file' && WANTED.test(header.name) && (header.size ?? 0) <= MAX_CHART_FILE
    const chunks: Buffer[] = []
    stream.on('error', () => {}) // the pipeline below reports why the archive stopped
    stream.on('data', (c: unknown) => {
      if (keep) chunks.push(c as Buffer)
    })
    stream.on('end', () => {
      if (keep) {
        if (header.name.endsWith('/Chart.yaml')) out.chartYaml ??= Buffer.concat(chunks)
        else out.valuesYaml ??= Buffer.concat(chunks)
      }
      next()
    })
    stream.resume()
  })
  const cap = new Transform({
    transform(c: Buffer, _enc, done) {
      inflated += c.length
      if (inflated > MAX_CHART_INFLATED) done(bad(`inflates to more than ${MAX_CHART_INFLATED} bytes`))
      else done(null, c)
    },
  })
  try {
    await pipeline(Readable.from([untrustedTgz]), createGunzip(), cap, extract)
  } catch (error) {
    if (error instanceof AirlockError) throw error
    throw bad(`not a readable chart archive (${(error as Error).message})`)
  }
  return out
}

export interface ChartMeta {
  name: string
  version: string
  /** Chart.yaml as JSON, the way `helm push` writes the config blob. */
  json: Record<string, unknown>
}

export function parseChartYaml(bytes: Buffer | undefined, what: string): ChartMeta {
  if (!bytes) throw new AirlockError('chart.bad_archive', `${what}: no Chart.yaml in the chart archive`)
  let doc: unknown
  try {
    doc = YAML.parse(bytes.toString('utf8'), {maxAliasCount: 10})
  } catch {
    throw new AirlockError('chart.bad_archive', `${what}: Chart.yaml is not valid YAML`)
  }
  const d = doc as Record<string, unknown> | null
  if (!d || typeof d.name !== 'string' || typeof d.version !== 'string') throw new AirlockError('chart.bad_archive', `${what}: Chart.yaml has no name or version`)
  return {name: d.name, version: d.version, json: d}
}

/**
 * Image references a values.yaml names: `image: "repo:tag"`, `image: {repository, tag}` (with
 * `registry`, `digest` variants), at any depth, and any key ending in `image`/`Image`.
 */
export function imagesInValues(bytes: Buffer | undefined): string[] {
  if (!bytes) return []
  let doc: unknown
  try {
    doc = YAML.parse(bytes.toString('utf8'), {maxAliasCount: 100})
  } catch {
    return []
  }
  const found = new Set<string>()
  const walk = (v: unknown, key: string, depth: number): void => {
    if (depth > 32 || v === null || typeof v !== 'object') return
    if (Array.isArray(v)) return v.forEach((x) => walk(x, key, depth + 1))
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (/image$/i.test(k)) {
        if (typeof x === 'string' && /^[\w.-]+(?::\d+)?(?:\/[\w.-]+)*(?::[\w.-]+|@sha256:[a-f0-9]{64})$/.test(x)) found.add(x)
        else if (x && typeof x === 'object' && !Array.isArray(x)) {
          const o = x as Record<string, unknown>
          const repo = typeof o.repository === 'string' ? o.repository : typeof o.name === 'string' ? o.name : undefined
          const tag = typeof o.tag === 'string' || typeof o.tag === 'number' ? String(o.tag) : undefined
          const digest = typeof o.digest === 'string' && o.digest ? o.digest : undefined
          if (repo && (tag || digest)) {
            const reg = typeof o.registry === 'string' && o.registry ? `${o.registry}/` : ''
            found.add(`${reg}${repo}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`)
          }
        }
      }
      walk(x, k, depth + 1)
    }
  }
  walk(doc, '', 0)
  return [...found]
}
