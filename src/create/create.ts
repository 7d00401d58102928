import {rm, stat} from 'node:fs/promises'
import path from 'node:path'

import pLimit from 'p-limit'
import type * as openpgp from 'openpgp'

import {AirlockError, InputError} from '../core/errors.js'
import {BlobCache, defaultCacheDir} from '../copy/cache.js'
import {Progress, silentProgress, formatBytes} from '../cli/progress.js'
import {imageBlobs, ResolvedImage, resolveImages} from '../resolve/resolve.js'
import {buildLock, checkLocked, lockPathFor, readLock, writeLock} from '../resolve/lock.js'
import {Sources} from '../resolve/sources.js'
import {findSigningKey} from '../sign/find.js'
import {loadBundleSpec, resolveExpiry} from '../spec/load.js'
import {AirlockMetadata, FORMAT_VERSION, ImageRecord} from '../transports/archive/metadata.js'
import {writeArchive} from '../transports/archive/writer.js'
import {readArchive} from '../transports/archive/reader.js'
import {resolveArchiveParts} from '../transports/archive/parts.js'
import {TOOL_VERSION} from '../version.js'

export interface CreateOptions {
  specFile: string
  output?: string
  signKey?: string
  unsigned?: boolean
  jobs?: number
  cacheDir?: string
  locked?: boolean
  dockerPlatform?: string
  registryConfig?: string
  /** Seconds since the epoch for every timestamp in the archive (SOURCE_DATE_EPOCH). */
  epoch?: number
  progress?: Progress
  retries?: number
  retryBaseDelayMs?: number
  /**
   * Build an archive of the images that could be fetched instead of failing on the first image
   * that cannot be resolved or pulled; the others are reported in `failed` (and the lock file is
   * not rewritten, since it would describe only part of bundle.yaml).
   */
  keepGoing?: boolean
  /** Write the archive as parts of at most this many bytes (OUT.000, OUT.001, …). */
  splitSize?: number
  /** A previous bundle (archive or first part): write a differential bundle without the layers it shipped. */
  since?: string
}

/** The layers a previous bundle shipped or expected (its metadata only; it is our own earlier output). */
async function previousLayers(archive: string): Promise<{name: string; version: string; layers: Set<string>}> {
  const {head} = await readArchive(await resolveArchiveParts(archive), {trustedKeys: [], allowUnsigned: true, headOnly: true, checkExpiry: false})
  const layers = new Set(head.metadata.images.flatMap((i) => i.manifests.flatMap((m) => m.layers)))
  return {name: head.metadata.bundle.name, version: head.metadata.bundle.version, layers}
}

const SIZE_UNITS: Record<string, number> = {'': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4}

/** `700M`, `4480M`, `4G`, `1.5G`, `123456` (bytes); K/M/G/T are powers of 1024. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(s.trim())
  if (!m) throw new InputError('create.bad_size', `invalid size ${JSON.stringify(s)}: use e.g. 700M, 4480M or 4G`)
  const n = Math.floor(Number(m[1]) * SIZE_UNITS[m[2].toUpperCase()])
  if (n < 64 * 1024) throw new InputError('create.bad_size', `--split ${s} is too small (at least 64K)`)
  return n
}

/** An image left out of a --keep-going archive, and why. */
export interface FailedImage {
  ref: string
  name: string
  stage: 'resolve' | 'pull'
  error: string
}

export interface CreateResult {
  /** The archive, or the first part of a split archive. */
  archive: string
  /** Every file written (the parts of a split archive, in order). */
  files: string[]
  /** --since: the previous bundle and what this one leaves out. */
  base?: {name: string; version: string; blobsLeftOut: number; bytesLeftOut: number}
  bundle: {name: string; version: string}
  images: {ref: string; name: string; digest: string; sourceDigest: string; platforms: string[]}[]
  blobs: number
  bytesPulled: number
  bytesCached: number
  bytesWritten: number
  bytesReferenced: number
  dedupeSaved: number
  sha256: string
  signed: boolean
  signer?: {fingerprint: string; userId?: string}
  lockFile: string
  /** Only with --keep-going: images NOT in the archive. */
  failed?: FailedImage[]
}

export function epochFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.SOURCE_DATE_EPOCH
  if (v === undefined || v === '') return 0
  if (!/^\d+$/.test(v)) throw new InputError('env.source_date_epoch', `SOURCE_DATE_EPOCH must be a whole number of seconds, got ${JSON.stringify(v)}`)
  return Number(v)
}

function imageRecord(img: ResolvedImage): ImageRecord {
  const blobs = imageBlobs(img).map((b) => ({digest: b.digest, size: b.size}))
  return {
    ref: img.spec.refString,
    name: img.spec.name,
    mediaType: img.top.mediaType,
    digest: img.top.digest,
    size: img.top.size,
    sourceDigest: img.sourceDigest,
    platforms: img.platforms,
    manifests: img.manifests.map((m) => ({
      digest: m.digest, mediaType: m.mediaType, size: m.size, platform: m.platform, config: m.config.digest, layers: m.layers.map((l) => l.digest),
    })),
    dockerManifest: img.dockerManifest,
    blobs,
  }
}

/** `airlock create`: registry → archive. */
export async function createBundle(opts: CreateOptions): Promise<CreateResult> {
  const progress = opts.progress ?? silentProgress
  const spec = await loadBundleSpec(opts.specFile)
  const epoch = opts.epoch ?? epochFromEnv()

  let signingKey: openpgp.PrivateKey | undefined
  if (!opts.unsigned) {
    signingKey = await findSigningKey({path: opts.signKey ?? spec.signing?.key, fingerprint: opts.signKey ? undefined : spec.signing?.fingerprint})
    if (!signingKey) {
      throw new InputError('sign.no_key', 'no signing key: pass --sign-key FILE (or set signing.key in bundle.yaml), or --unsigned to create an UNSIGNED bundle')
    }
  }

  const output = path.resolve(opts.output ?? `${spec.metadata.name}-${spec.metadata.version}.tar`)
  try {
    if ((await stat(path.dirname(output))).isDirectory() === false) throw new Error('not a dir')
  } catch {
    throw new InputError('create.output_dir', `output directory does not exist: ${path.dirname(output)}`)
  }

  const cache = new BlobCache(opts.cacheDir ?? defaultCacheDir())
  // Leftovers of a killed run: cache temp files of dead processes, and our own stale .partial.
  await cache.cleanStale()
  await rm(`${output}.partial`, {force: true}).catch(() => {})
  const sources = new Sources({
    registries: spec.registries, cache, registryConfig: opts.registryConfig,
    retries: opts.retries, retryBaseDelayMs: opts.retryBaseDelayMs,
    onRetry: (i) => progress.note(`retrying ${i.host} (attempt ${i.attempt}): ${i.reason}`),
  })

  // 1. resolve every image to digests before any layer moves
  const failedImages: FailedImage[] = []
  let resolved: ResolvedImage[]
  if (opts.keepGoing) {
    // One resolution per image, so that one unreachable image does not sink the others.
    const per = await Promise.all(spec.images.map(async (img) => {
      try {
        return (await resolveImages({...spec, images: [img]}, sources, {dockerPlatform: opts.dockerPlatform}))[0]
      } catch (error) {
        if (!(error instanceof AirlockError)) throw error
        failedImages.push({ref: img.refString, name: img.name, stage: 'resolve', error: error.details[0] ?? error.message})
        return undefined
      }
    }))
    resolved = per.filter((r): r is ResolvedImage => r !== undefined)
  } else {
    resolved = await resolveImages(spec, sources, {dockerPlatform: opts.dockerPlatform})
  }
  const lockFile = lockPathFor(spec.file)
  const lock = buildLock(resolved)
  if (opts.locked) {
    const was = await readLock(lockFile)
    const have = new Set(resolved.map((r) => `${r.spec.refString} ${r.spec.name}`))
    checkLocked(lockFile, failedImages.length > 0 ? {...was, images: was.images.filter((i) => have.has(`${i.ref} ${i.name}`))} : was, lock)
  }

  // 2. pull every unique blob once, through one pool
  const unique = new Map<string, {digest: string; size: number; ref: ResolvedImage}>()
  let referenced = 0
  for (const img of resolved) {
    for (const b of imageBlobs(img)) {
      referenced += b.size
      if (!unique.has(b.digest)) unique.set(b.digest, {digest: b.digest, size: b.size, ref: img})
    }
  }
  // --since: layers the previous bundle shipped stay out (and are not even pulled).
  const previous = opts.since ? await previousLayers(opts.since) : undefined
  const isExternal = (digest: string) => previous?.layers.has(digest) ?? false
  // manifests and indexes are already in memory
  for (const img of resolved) {
    await cache.putBytes(img.top.digest, img.top.bytes)
    for (const m of img.manifests) await cache.putBytes(m.digest, m.bytes)
  }
  const missing: {digest: string; size: number; ref: ResolvedImage}[] = []
  let bytesCached = 0
  for (const b of unique.values()) {
    if (isExternal(b.digest)) continue
    // eslint-disable-next-line no-await-in-loop
    if (await cache.has(b.digest, b.size)) bytesCached += b.size
    else missing.push(b)
  }
  const toPull = missing.reduce((a, b) => a + b.size, 0)
  progress.note(`resolved ${resolved.length} images: ${unique.size} unique blobs (${formatBytes([...unique.values()].reduce((a, b) => a + b.size, 0))}), ${missing.length} to pull (${formatBytes(toPull)})`)
  progress.begin(toPull, 'pulling')
  const limit = pLimit(Math.max(1, opts.jobs ?? 8))
  let bytesPulled = 0
  /** Blobs pulled (and digest-checked while streaming) by this run: the writer need not hash them again. */
  const fresh = new Set<string>()
  const failedBlobs = new Map<string, string>()
  // Pull in the order the archive is written (sorted by digest), so that without --keep-going the
  // writer can follow right behind the downloads instead of waiting for all of them.
  missing.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
  const pulls = new Map<string, Promise<void>>()
  const pulling = Promise.all(missing.map((b) => {
    const p = limit(async () => {
      try {
        const stream = await sources.openBlob(b.ref.spec.ref, b.digest, b.size)
        await cache.putStream(b.digest, stream, (n) => progress.advance(n))
        bytesPulled += b.size
        fresh.add(b.digest)
      } catch (error) {
        if (!(error instanceof AirlockError)) throw error
        failedBlobs.set(b.digest, error.message)
        if (!opts.keepGoing) limit.clearQueue()
      }
    })
    pulls.set(b.digest, p)
    return p
  }))
  /** Resolves once `digest` is in the cache; rejects if its pull failed. */
  const ready = (digest: string): Promise<void> | undefined => {
    const p = pulls.get(digest)?.then(() => {
      if (!fresh.has(digest)) throw new AirlockError('create.pull_failed', `blob ${digest} could not be pulled`)
    })
    p?.catch(() => {}) // the writer may stop before it reaches this blob: the failure is reported per image
    return p
  }
  /** Per image: every image that needs a blob that could not be pulled. */
  const pullFailures = (): FailedImage[] => {
    const perImage: FailedImage[] = []
    for (const img of resolved) {
      const bad = imageBlobs(img).find((b) => failedBlobs.has(b.digest))
      if (bad) perImage.push({ref: img.spec.refString, name: img.spec.name, stage: 'pull', error: `blob ${bad.digest}: ${failedBlobs.get(bad.digest)}`})
    }
    return perImage
  }
  const pullFailedError = (perImage: FailedImage[]) =>
    new AirlockError('create.pull_failed', `could not pull ${perImage.length} of ${resolved.length} images`, {details: perImage.map((f) => `${f.ref}: ${f.error}`)})
  if (opts.keepGoing) {
    // --keep-going decides what the archive holds only once every pull has settled.
    await pulling
    progress.end()
    const perImage = pullFailures()
    failedImages.push(...perImage)
    const drop = new Set(perImage.map((f) => f.ref + ' ' + f.name))
    resolved = resolved.filter((img) => !drop.has(img.spec.refString + ' ' + img.spec.name))
    // Blobs only the dropped images needed stay out of the archive.
    unique.clear()
    referenced = 0
    for (const img of resolved) {
      for (const b of imageBlobs(img)) {
        referenced += b.size
        if (!unique.has(b.digest)) unique.set(b.digest, {digest: b.digest, size: b.size, ref: img})
      }
    }
  }
  if (opts.keepGoing && failedImages.length > 0) {
    for (const f of failedImages) progress.note(`WARNING: ${f.ref}: NOT in the archive (${f.stage} failed): ${f.error}`)
    if (resolved.length === 0) {
      throw new AirlockError('create.nothing_fetched', `none of the ${spec.images.length} images could be fetched`, {details: failedImages.map((f) => `${f.ref}: ${f.error}`)})
    }
  }
  for (const img of resolved) progress.note(`  ${img.spec.name}  ${img.top.digest}  [${img.platforms.join(', ')}]`)

  // 3. write the signed archive
  const external = [...unique.values()].filter((b) => isExternal(b.digest)).map((b) => ({digest: b.digest, size: b.size}))
  for (const b of external) unique.delete(b.digest)
  const records = resolved.map((img) => imageRecord(img))
  const uniqueBytes = [...unique.values()].reduce((a, b) => a + b.size, 0)
  const created = new Date(epoch * 1000)
  const nowForExpiry = process.env.SOURCE_DATE_EPOCH ? created : new Date()
  const expires = resolveExpiry(spec.metadata.expires, nowForExpiry)
  const metadata: AirlockMetadata = {
    formatVersion: FORMAT_VERSION,
    tool: {name: 'airlock', version: TOOL_VERSION},
    bundle: {
      name: spec.metadata.name,
      version: spec.metadata.version,
      ...(spec.metadata.description ? {description: spec.metadata.description} : {}),
      created: created.toISOString(),
      ...(expires ? {expires: expires.toISOString()} : {}),
    },
    images: records,
    blobs: {count: unique.size, bytes: uniqueBytes, referencedBytes: referenced},
    ...(opts.splitSize ? {split: {partSize: opts.splitSize}} : {}),
    ...(previous ? {base: {name: previous.name, version: previous.version, blobs: external.sort((x, y) => (x.digest < y.digest ? -1 : 1))}} : {}),
  }
  let written
  try {
    written = await writeArchive(output, {
      metadata,
      blobs: [...unique.values()].map((b) => {
        const r = ready(b.digest)
        return {digest: b.digest, size: b.size, path: cache.path(b.digest), ...(r ? {ready: r, verified: true} : {})}
      }),
      signingKey,
      epoch,
      ...(opts.splitSize ? {partSize: opts.splitSize} : {}),
    })
  } catch (error) {
    limit.clearQueue()
    await pulling
    progress.end()
    const perImage = pullFailures()
    if (perImage.length > 0) throw pullFailedError(perImage)
    throw error
  }
  await pulling
  progress.end()
  // A --keep-going archive with missing images must not rewrite the lock file with a partial list.
  if (failedImages.length === 0) await writeLock(lockFile, lock)
  if (!signingKey) progress.note('WARNING: this bundle is UNSIGNED: nobody can prove where it came from')
  return {
    archive: written.path,
    files: written.files,
    ...(previous ? {base: {name: previous.name, version: previous.version, blobsLeftOut: external.length, bytesLeftOut: external.reduce((x, b) => x + b.size, 0)}} : {}),
    bundle: {name: spec.metadata.name, version: spec.metadata.version},
    images: records.map((r) => ({ref: r.ref, name: r.name, digest: r.digest, sourceDigest: r.sourceDigest, platforms: r.platforms})),
    blobs: written.blobs,
    bytesPulled,
    bytesCached,
    bytesWritten: written.bytes,
    bytesReferenced: referenced,
    dedupeSaved: referenced - uniqueBytes,
    sha256: written.sha256,
    signed: Boolean(signingKey),
    ...(written.signer ? {signer: written.signer} : {}),
    lockFile,
    ...(opts.keepGoing ? {failed: failedImages} : {}),
  }
}
