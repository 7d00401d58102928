/**
 * `files:` and classic-repository `charts:` as OCI artifacts, made at create and deterministic
 * (same bytes in, same digests out): files in the ORAS convention (one manifest per item, one layer
 * per file titled with its dest path, its mode in an annotation), charts in Helm's OCI format
 * (config = Chart.yaml as JSON, layer = the .tgz unchanged). Each becomes an entry of the same
 * shape as an image entry (kind `artifact`, nothing runnable), so plan, archive, reader and every
 * target carry it like any other content.
 */
import {createReadStream} from 'node:fs'
import {lstat, mkdtemp, readdir, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import YAML from 'yaml'

import {sha256Digest} from '../core/digest.js'
import {AirlockError, InputError} from '../core/errors.js'
import {Descriptor, MediaType} from '../core/model.js'
import {maxSatisfying, parseRange} from '../core/semver.js'
import {LOCAL_HOST, repositorySlug, versionTag} from '../spec/content.js'
import {parseReference} from '../spec/reference.js'
import type {FileSpec, ImageSpec, RepoChartSpec} from '../spec/types.js'
import type {FileRecord} from '../transports/archive/metadata.js'
import {ChartMeta, parseChartYaml, readChartFiles} from './chart-read.js'
import {Downloader, showUrl} from './download.js'
import type {ResolvedImage} from './resolve.js'

export const FILE_ARTIFACT_TYPE = 'application/vnd.airlock.file.v1'
export const FILE_LAYER_TYPE = 'application/octet-stream'
export const TITLE = 'org.opencontainers.image.title'
export const MODE = 'io.airlock.file.mode'
const EMPTY = Buffer.from('{}')
/** Files of one directory source, and the size of one downloaded file or chart. */
const MAX_TREE_FILES = 10_000
const MAX_DOWNLOAD = 64 * 1024 * 1024 * 1024
const MAX_CHART = 64 * 1024 * 1024
const MAX_INDEX = 64 * 1024 * 1024

/** Where the bytes of the artifacts' blobs are while the archive is filled. */
export interface ArtifactBlobs {
  /** Manifests, configs and charts, in memory. */
  memory: Map<string, Buffer>
  /** Files: a local path (the source itself, or a download spooled to a temp dir). */
  files: Map<string, string>
  /** What was downloaded, for the lock file: URL → digest. */
  pinned: Map<string, string>
  /** Remove the download spool. */
  cleanup(): Promise<void>
}

function spec(name: string, line: number, col: number): ImageSpec {
  const ref = parseReference(name)
  return {ref, refString: name, name, platforms: 'all', platformsChosen: false, subset: false, line, col}
}

/** An entry whose top is one artifact manifest (made here). */
function artifactEntry(img: ImageSpec, manifest: Record<string, unknown>, config: Descriptor, layers: Descriptor[], artifactType?: string): ResolvedImage {
  const bytes = Buffer.from(JSON.stringify(manifest))
  const top = {digest: sha256Digest(bytes), mediaType: MediaType.OCI_MANIFEST, size: bytes.length, bytes}
  return {
    spec: img, top, sourceDigest: top.digest, indexes: [], platforms: [],
    manifests: [{...top, platform: 'unknown', kind: 'artifact', ...(artifactType ? {artifactType} : {}), zstd: false, config, layers}],
  }
}

const EMPTY_CONFIG: Descriptor = {mediaType: MediaType.OCI_EMPTY, digest: sha256Digest(EMPTY), size: 2}

/** Hash a local file (streamed). */
async function hashFile(file: string): Promise<{digest: string; size: number}> {
  const {createHash} = await import('node:crypto')
  const h = createHash('sha256')
  let size = 0
  for await (const c of createReadStream(file) as AsyncIterable<Buffer>) {
    h.update(c)
    size += c.length
  }
  return {digest: `sha256:${h.digest('hex')}`, size}
}

/** The regular files under `dir`, relative, sorted; links and other types are refused. */
async function tree(dir: string, what: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (rel: string): Promise<void> => {
    for (const e of (await readdir(path.join(dir, rel), {withFileTypes: true})).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel ? `${rel}/${e.name}` : e.name
      if (e.isDirectory()) await walk(r)
      else if (e.isFile()) out.push(r)
      else throw new InputError('file.unreadable', `${what}: ${r} is not a regular file or directory (links are not followed)`)
      if (out.length > MAX_TREE_FILES) throw new InputError('file.unreadable', `${what}: more than ${MAX_TREE_FILES} files`)
    }
  }
  await walk('')
  return out
}

export class ArtifactResolver {
  readonly blobs: ArtifactBlobs
  private spool?: string

  constructor(private readonly downloader: Downloader, private readonly pins: Map<string, string>, private readonly note: (m: string) => void) {
    this.blobs = {memory: new Map([[EMPTY_CONFIG.digest, EMPTY]]), files: new Map(), pinned: new Map(), cleanup: async () => {
      if (this.spool) await rm(this.spool, {recursive: true, force: true})
    }}
  }

  /** One `files:` item: its files hashed (downloaded first for a URL), its manifest made. */
  async file(f: FileSpec): Promise<ResolvedImage> {
    const records: FileRecord[] = []
    if (f.url) {
      this.spool ??= await mkdtemp(path.join(os.tmpdir(), 'airlock-files-'))
      const file = path.join(this.spool, String(this.blobs.files.size))
      const got = await this.downloader.fetchFile(f.source, file, MAX_DOWNLOAD)
      const want = f.sha256 ? `sha256:${f.sha256}` : this.pins.get(f.source)
      if (want && want !== got.digest) {
        const where = f.sha256 ? 'bundle.yaml says' : 'it was pinned in the lock file as'
        if (f.sha256) throw new InputError('download.digest_mismatch', `${showUrl(f.source)}: the content changed: ${where} ${want}, the server now sends ${got.digest}`)
        this.note(`WARNING: ${showUrl(f.source)} changed since it was pinned (${want} → ${got.digest}); the lock file is updated (\`create --locked\` refuses this)`)
      }
      this.blobs.pinned.set(f.source, got.digest)
      this.blobs.files.set(got.digest, file)
      records.push({path: f.dest, mode: f.mode, ...got})
    } else {
      const st = await lstat(f.source)
      const rels = st.isDirectory() ? await tree(f.source, f.source) : ['']
      for (const rel of rels) {
        const abs = rel ? path.join(f.source, rel) : f.source
        const got = await hashFile(abs)
        if (!rel && f.sha256 && got.digest !== `sha256:${f.sha256}`) throw new InputError('download.digest_mismatch', `${f.source}: sha256 is ${got.digest}, bundle.yaml says sha256:${f.sha256}`)
        this.blobs.files.set(got.digest, abs)
        records.push({path: rel ? `${f.dest}/${rel}` : f.dest, mode: f.mode, ...got})
      }
    }
    const layers: Descriptor[] = records.map((r) => ({mediaType: FILE_LAYER_TYPE, digest: r.digest, size: r.size, annotations: {[TITLE]: r.path, [MODE]: r.mode}}))
    const manifest = {schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, artifactType: FILE_ARTIFACT_TYPE, config: EMPTY_CONFIG, layers}
    const entry = artifactEntry(spec(f.name, f.line, f.col), manifest, EMPTY_CONFIG, layers, FILE_ARTIFACT_TYPE)
    this.blobs.memory.set(entry.top.digest, entry.top.bytes)
    return {...entry, content: {type: 'files', files: records}}
  }

  /** One classic-repository chart: the version from index.yaml, the .tgz checked against it, Helm's OCI manifest made. */
  async repoChart(c: RepoChartSpec): Promise<{entry: ResolvedImage; meta: ChartMeta; tgz: Buffer}> {
    const what = `chart ${c.name} from ${showUrl(c.repo)}`
    const index = await this.downloader.fetchBytes(`${c.repo}/index.yaml`, MAX_INDEX)
    let doc: {entries?: Record<string, {version?: unknown; urls?: unknown; digest?: unknown}[]>}
    try {
      doc = YAML.parse(index.bytes.toString('utf8'), {maxAliasCount: 100}) as typeof doc
    } catch {
      throw new AirlockError('chart.bad_index', `${what}: index.yaml is not valid YAML`)
    }
    const versions = Array.isArray(doc?.entries?.[c.name]) ? doc.entries[c.name] : []
    const chosen = maxSatisfying(versions.map((v) => String(v?.version)), parseRange(c.version)!)
    if (!chosen) throw new InputError('chart.no_match', `${what}: no version matches ${c.version} (it has: ${versions.map((v) => String(v?.version)).slice(0, 20).join(', ') || 'none'})`)
    const item = versions.find((v) => String(v.version) === chosen)!
    const url = Array.isArray(item.urls) && typeof item.urls[0] === 'string' ? new URL(item.urls[0], `${c.repo}/`).toString() : undefined
    if (!url) throw new AirlockError('chart.bad_index', `${what}: index.yaml gives no URL for ${chosen}`)
    const got = await this.downloader.fetchBytes(url, MAX_CHART)
    if (typeof item.digest === 'string' && item.digest && `sha256:${item.digest.replace(/^sha256:/, '')}` !== got.digest) {
      throw new AirlockError('download.digest_mismatch', `${what} ${chosen}: index.yaml says sha256:${item.digest}, the server sent ${got.digest}`)
    }
    const meta = parseChartYaml((await readChartFiles(got.bytes, what)).chartYaml, what)
    const configBytes = Buffer.from(JSON.stringify(meta.json))
    const config: Descriptor = {mediaType: MediaType.HELM_CONFIG, digest: sha256Digest(configBytes), size: configBytes.length}
    const layer: Descriptor = {mediaType: MediaType.HELM_CHART, digest: got.digest, size: got.size}
    const manifest = {schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config, layers: [layer], annotations: {[TITLE]: meta.name, 'org.opencontainers.image.version': meta.version}}
    const name = `${LOCAL_HOST}/${repositorySlug(meta.name)}:${versionTag(meta.version)}`
    const entry = artifactEntry(spec(name, c.line, c.col), manifest, config, [layer])
    for (const [d, b] of [[config.digest, configBytes], [layer.digest, got.bytes], [entry.top.digest, entry.top.bytes]] as const) this.blobs.memory.set(d, b)
    this.blobs.pinned.set(`${c.repo} ${c.name} ${c.version}`, `${chosen} ${got.digest}`)
    return {entry: {...entry, content: {type: 'chart', name: meta.name, version: meta.version, chart: {digest: got.digest, size: got.size}}}, meta, tgz: got.bytes}
  }
}
