/**
 * Build small, deterministic container images for tests and push them with skopeo.
 *
 * Everything is built in memory (layers are a few KB, at most a couple of MB) with fixed mtimes,
 * uid/gid 0, sorted entries and gzip from node's zlib, so the same spec always yields the same
 * digests. Images are written as OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/…`)
 * that skopeo can push with `oci:DIR:TAG`.
 *
 *   const img = buildImageBlobs({layers: [{files: {'bin/hello': {content: '#!/bin/sh\necho hi\n', mode: 0o755}}}],
 *                                config: {Cmd: ['/bin/hello']}})
 *   await writeLayout('/tmp/x', img, '1')
 *   await pushImage('/tmp/x', '127.0.0.1:5301/test/hello:1', {format: 'oci'})
 */
import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {gzipSync} from 'node:zlib'

const execFileP = promisify(execFile)

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip'
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar'

/** Default mtime of every tar entry and the image `created` time: 2024-01-01T00:00:00Z. */
export const DEFAULT_EPOCH = 1704067200

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

// ------------------------------------------------------------------ specs

/**
 * One entry of a layer:
 * - a string or Buffer: a regular file (mode 0644);
 * - `{content, mode?}`: a regular file with a mode (e.g. 0o755);
 * - `{symlink: target}`: a symbolic link;
 * - `{hardlink: path}`: a hard link to another entry of the same layer;
 * - `{dir: true, mode?}`: a directory (parents of every entry are added automatically, mode 0755);
 * - `null`: a whiteout (deletes that path from lower layers: `.wh.<name>`).
 */
export type FileSpec =
  | string
  | Buffer
  | {content: string | Buffer; mode?: number}
  | {symlink: string}
  | {hardlink: string}
  | {dir: true; mode?: number}
  | null

export interface LayerSpec {
  /** Paths relative to the root (a leading `/` is ignored). */
  files: Record<string, FileSpec>
  /** Default 'gzip' (node zlib, level 6). */
  compression?: 'gzip' | 'none'
  /** mtime of every entry, seconds since the epoch. Default DEFAULT_EPOCH. */
  mtime?: number
}

export interface PlatformSpec {
  os: string
  architecture: string
  variant?: string
}

export interface ImageConfigSpec {
  Cmd?: string[]
  Entrypoint?: string[]
  Env?: string[]
  WorkingDir?: string
  User?: string
  Labels?: Record<string, string>
}

export interface ImageSpec {
  /** A layer spec, or a ready-made layer: `{tar}` (uncompressed tar bytes, gzipped unless compression 'none'). */
  layers: Array<LayerSpec | {tar: Buffer; compression?: 'gzip' | 'none'}>
  config?: ImageConfigSpec
  /** 'linux/amd64', 'linux/arm64/v8' or an object. Default linux/amd64. */
  platform?: string | PlatformSpec
  /** ISO time for the config's `created`. Default DEFAULT_EPOCH. */
  created?: string
  /** Manifest annotations. */
  annotations?: Record<string, string>
}

export interface BuiltLayer {
  mediaType: string
  digest: string
  size: number
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: string
  data: Buffer
}

export interface BuiltImage {
  kind: 'image'
  mediaType: typeof OCI_MANIFEST
  /** Digest of the manifest. */
  digest: string
  size: number
  manifest: Buffer
  config: Buffer
  configDigest: string
  layers: BuiltLayer[]
  platform: PlatformSpec
  /** Every blob of the image (manifest, config, layers) by digest. */
  blobs: Map<string, Buffer>
}

export interface BuiltIndex {
  kind: 'index'
  mediaType: typeof OCI_INDEX
  digest: string
  size: number
  index: Buffer
  images: BuiltImage[]
  blobs: Map<string, Buffer>
}

export type Built = BuiltImage | BuiltIndex

// ------------------------------------------------------------------ tar

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0'
}

function splitName(name: string): {name: string; prefix: string} {
  if (Buffer.byteLength(name) < 100) return {name, prefix: ''}
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue
    const prefix = name.slice(0, i)
    const rest = name.slice(i + 1)
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) < 100 && rest) return {name: rest, prefix}
  }
  throw new Error(`tar path too long for ustar: ${name}`)
}

interface TarEntry {
  name: string
  type: '0' | '1' | '2' | '5'
  mode: number
  data?: Buffer
  linkname?: string
}

function tarHeader(e: TarEntry, mtime: number): Buffer {
  const h = Buffer.alloc(512, 0)
  const {name, prefix} = splitName(e.name)
  if (e.linkname && Buffer.byteLength(e.linkname) >= 100) throw new Error(`link target too long: ${e.linkname}`)
  h.write(name, 0, 100, 'utf8')
  h.write(octal(e.mode & 0o7777, 8), 100, 8, 'ascii')
  h.write(octal(0, 8), 108, 8, 'ascii')
  h.write(octal(0, 8), 116, 8, 'ascii')
  h.write(octal(e.data?.length ?? 0, 12), 124, 12, 'ascii')
  h.write(octal(mtime, 12), 136, 12, 'ascii')
  h.write('        ', 148, 8, 'ascii')
  h.write(e.type, 156, 1, 'ascii')
  if (e.linkname) h.write(e.linkname, 157, 100, 'utf8')
  h.write('ustar\0', 257, 6, 'ascii')
  h.write('00', 263, 2, 'ascii')
  h.write(octal(0, 8), 329, 8, 'ascii')
  h.write(octal(0, 8), 337, 8, 'ascii')
  if (prefix) h.write(prefix, 345, 155, 'utf8')
  let sum = 0
  for (const b of h) sum += b
  h.write(octal(sum, 7) + ' ', 148, 8, 'ascii')
  return h
}

function normalisePath(p: string): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.')
  if (parts.length === 0 || parts.includes('..')) throw new Error(`bad layer path: ${p}`)
  return parts.join('/')
}

/** A deterministic uncompressed tar for a layer spec (entries sorted, parents added, uid/gid 0). */
export function layerTar(spec: LayerSpec): Buffer {
  const mtime = spec.mtime ?? DEFAULT_EPOCH
  const entries = new Map<string, TarEntry>()
  const addParents = (p: string) => {
    const parts = p.split('/')
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/')
      if (!entries.has(d)) entries.set(d, {name: d + '/', type: '5', mode: 0o755})
    }
  }
  for (const [raw, f] of Object.entries(spec.files)) {
    const p = normalisePath(raw)
    addParents(p)
    if (f === null) {
      const dir = path.posix.dirname(p)
      const wh = (dir === '.' ? '' : dir + '/') + '.wh.' + path.posix.basename(p)
      entries.set(wh, {name: wh, type: '0', mode: 0o644, data: Buffer.alloc(0)})
    } else if (typeof f === 'string' || Buffer.isBuffer(f)) {
      entries.set(p, {name: p, type: '0', mode: 0o644, data: Buffer.from(f)})
    } else if ('content' in f) {
      entries.set(p, {name: p, type: '0', mode: f.mode ?? 0o644, data: Buffer.from(f.content)})
    } else if ('symlink' in f) {
      entries.set(p, {name: p, type: '2', mode: 0o777, linkname: f.symlink})
    } else if ('hardlink' in f) {
      entries.set(p, {name: p, type: '1', mode: 0o644, linkname: normalisePath(f.hardlink)})
    } else {
      entries.set(p, {name: p + '/', type: '5', mode: f.mode ?? 0o755})
    }
  }
  const chunks: Buffer[] = []
  // Sort by path so a directory always precedes its content (and a hard link its target when it sorts later).
  const sorted = [...entries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  for (const [, e] of sorted) {
    chunks.push(tarHeader(e, mtime))
    if (e.data && e.data.length) {
      chunks.push(e.data)
      const pad = (512 - (e.data.length % 512)) % 512
      if (pad) chunks.push(Buffer.alloc(pad))
    }
  }
  chunks.push(Buffer.alloc(1024))
  return Buffer.concat(chunks)
}

/** gzip as used for every layer: node zlib, level 6, header mtime 0. */
export function gzipLayer(tar: Buffer): Buffer {
  return gzipSync(tar, {level: 6})
}

// ------------------------------------------------------------------ images

export function parsePlatform(p: string | PlatformSpec | undefined): PlatformSpec {
  if (!p) return {os: 'linux', architecture: 'amd64'}
  if (typeof p !== 'string') return p
  const [os, architecture, variant] = p.split('/')
  if (!os || !architecture) throw new Error(`bad platform: ${p}`)
  return variant ? {os, architecture, variant} : {os, architecture}
}

export function platformString(p: PlatformSpec): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/')
}

/** Build an OCI image (manifest + config + layers) in memory. */
export function buildImageBlobs(spec: ImageSpec): BuiltImage {
  const platform = parsePlatform(spec.platform)
  const blobs = new Map<string, Buffer>()
  const layers: BuiltLayer[] = spec.layers.map((l) => {
    const tar = 'tar' in l ? l.tar : layerTar(l)
    const gz = (l.compression ?? 'gzip') === 'gzip'
    const data = gz ? gzipLayer(tar) : tar
    const digest = sha256(data)
    blobs.set(digest, data)
    return {mediaType: gz ? OCI_LAYER_GZIP : OCI_LAYER_TAR, digest, size: data.length, diffId: sha256(tar), data}
  })
  const created = spec.created ?? new Date(DEFAULT_EPOCH * 1000).toISOString()
  const cfg: Record<string, unknown> = {}
  const c = spec.config ?? {}
  if (c.User) cfg.User = c.User
  cfg.Env = c.Env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']
  if (c.Entrypoint) cfg.Entrypoint = c.Entrypoint
  if (c.Cmd) cfg.Cmd = c.Cmd
  if (c.WorkingDir) cfg.WorkingDir = c.WorkingDir
  if (c.Labels) cfg.Labels = c.Labels
  const config = Buffer.from(JSON.stringify({
    created,
    architecture: platform.architecture,
    ...(platform.variant ? {variant: platform.variant} : {}),
    os: platform.os,
    config: cfg,
    rootfs: {type: 'layers', diff_ids: layers.map((l) => l.diffId)},
    history: layers.map(() => ({created, created_by: 'airlock test image builder'})),
  }))
  const configDigest = sha256(config)
  blobs.set(configDigest, config)
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {mediaType: OCI_CONFIG, digest: configDigest, size: config.length},
    layers: layers.map((l) => ({mediaType: l.mediaType, digest: l.digest, size: l.size})),
    ...(spec.annotations ? {annotations: spec.annotations} : {}),
  }))
  const digest = sha256(manifest)
  blobs.set(digest, manifest)
  return {kind: 'image', mediaType: OCI_MANIFEST, digest, size: manifest.length, manifest, config, configDigest, layers, platform, blobs}
}

/** Build an OCI image index over several images (each must have a distinct platform). */
export function buildIndexBlobs(images: Array<ImageSpec | BuiltImage>, annotations?: Record<string, string>): BuiltIndex {
  const built = images.map((i) => ('kind' in i ? i : buildImageBlobs(i)))
  const blobs = new Map<string, Buffer>()
  for (const b of built) for (const [d, data] of b.blobs) blobs.set(d, data)
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: built.map((b) => ({mediaType: b.mediaType, digest: b.digest, size: b.size, platform: b.platform})),
    ...(annotations ? {annotations} : {}),
  }))
  const digest = sha256(index)
  blobs.set(digest, index)
  return {kind: 'index', mediaType: OCI_INDEX, digest, size: index.length, index, images: built, blobs}
}

/**
 * Write (or add to) an OCI image layout at `dir`, tagging `artifact` as `tag`
 * (`org.opencontainers.image.ref.name`). A tag already in the layout is replaced.
 */
export async function writeLayout(dir: string, artifact: Built, tag = 'latest'): Promise<string> {
  await mkdir(path.join(dir, 'blobs', 'sha256'), {recursive: true})
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}))
  for (const [d, data] of artifact.blobs) {
    const p = path.join(dir, 'blobs', 'sha256', d.slice(7))
    const st = await stat(p).catch(() => undefined)
    if (!st || st.size !== data.length) await writeFile(p, data)
  }
  type Desc = {mediaType: string; digest: string; size: number; annotations?: Record<string, string>}
  let manifests: Desc[] = []
  try {
    manifests = (JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as {manifests?: Desc[]}).manifests ?? []
  } catch {
    manifests = []
  }
  manifests = manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== tag)
  manifests.push({mediaType: artifact.mediaType, digest: artifact.digest, size: artifact.size, annotations: {'org.opencontainers.image.ref.name': tag}})
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({schemaVersion: 2, mediaType: OCI_INDEX, manifests}))
  return dir
}

/** Build one image and write it as an OCI layout at `dir` (tag default 'latest'). */
export async function buildImage(spec: ImageSpec, dir: string, tag = 'latest'): Promise<BuiltImage & {dir: string; tag: string}> {
  const img = buildImageBlobs(spec)
  await writeLayout(dir, img, tag)
  return {...img, dir, tag}
}

/** Build an index of several platform images and write it as an OCI layout at `dir`. */
export async function buildIndex(images: Array<ImageSpec | BuiltImage>, dir: string, tag = 'latest'): Promise<BuiltIndex & {dir: string; tag: string}> {
  const idx = buildIndexBlobs(images)
  await writeLayout(dir, idx, tag)
  return {...idx, dir, tag}
}

// ------------------------------------------------------------------ push

export interface PushOptions {
  /** 'oci' keeps the OCI manifest byte for byte; 'v2s2' converts to Docker schema2. Default 'oci'. */
  format?: 'oci' | 'v2s2'
  /** Registry credentials (for an htpasswd registry). */
  creds?: {username: string; password: string}
  /** Tag inside the layout. Default 'latest'. */
  tag?: string
  /** Push every platform of an index (skopeo --all). Default: true when the layout's tag is an index. */
  all?: boolean
  /** Skip TLS verification / allow plain http (default true: the testbed registries are plain http). */
  insecure?: boolean
}

/**
 * Push an OCI layout's tag to `ref` (host/repo:tag) with skopeo. Returns the pushed manifest digest.
 * An OCI manifest or a flat index keeps its bytes; skopeo 1.9 refuses an index of indexes, so
 * nested indexes and artifacts go through pushContent (registry-push.ts) instead.
 */
export async function pushImage(layoutDir: string, ref: string, opts: PushOptions = {}): Promise<string> {
  const tag = opts.tag ?? 'latest'
  let all = opts.all
  if (all === undefined) {
    const idx = JSON.parse(await readFile(path.join(layoutDir, 'index.json'), 'utf8')) as {manifests: Array<{mediaType: string; annotations?: Record<string, string>}>}
    const d = idx.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)
    all = d?.mediaType === OCI_INDEX
  }
  const tmp = await mkdtemp(path.join(tmpdir(), 'airlock-push-'))
  const digestFile = path.join(tmp, 'digest')
  const args = ['--insecure-policy', 'copy', '--retry-times', '2', '--digestfile', digestFile]
  if (opts.insecure !== false) args.push('--dest-tls-verify=false')
  // Without --format skopeo keeps the OCI manifest as is (the registry accepts it).
  if (opts.format === 'v2s2') args.push('--format', 'v2s2')
  if (all) args.push('--all')
  // Credentials go through an auth file so they never appear on a command line.
  if (opts.creds) {
    const host = ref.split('/')[0]
    const authFile = path.join(tmp, 'auth.json')
    const auth = Buffer.from(`${opts.creds.username}:${opts.creds.password}`).toString('base64')
    await writeFile(authFile, JSON.stringify({auths: {[host]: {auth}}}), {mode: 0o600})
    args.push('--dest-authfile', authFile)
  }
  args.push(`oci:${layoutDir}:${tag}`, `docker://${ref}`)
  try {
    await execFileP('skopeo', args, {maxBuffer: 16 * 1024 * 1024})
    return (await readFile(digestFile, 'utf8')).trim()
  } catch (err) {
    const e = err as {stderr?: string; message: string}
    throw new Error(`skopeo push of ${ref} failed: ${(e.stderr ?? e.message).trim()}`)
  } finally {
    await rm(tmp, {recursive: true, force: true})
  }
}
