import {stat} from 'node:fs/promises'
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
}

export interface CreateResult {
  archive: string
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
  const sources = new Sources({
    registries: spec.registries, cache, registryConfig: opts.registryConfig,
    retries: opts.retries, retryBaseDelayMs: opts.retryBaseDelayMs,
    onRetry: (i) => progress.note(`retrying ${i.host} (attempt ${i.attempt}): ${i.reason}`),
  })

  // 1. resolve every image to digests before any layer moves
  const resolved = await resolveImages(spec, sources, {dockerPlatform: opts.dockerPlatform})
  const lockFile = lockPathFor(spec.file)
  const lock = buildLock(resolved)
  if (opts.locked) checkLocked(lockFile, await readLock(lockFile), lock)

  // 2. pull every unique blob once, through one pool
  const unique = new Map<string, {digest: string; size: number; ref: ResolvedImage}>()
  let referenced = 0
  for (const img of resolved) {
    for (const b of imageBlobs(img)) {
      referenced += b.size
      if (!unique.has(b.digest)) unique.set(b.digest, {digest: b.digest, size: b.size, ref: img})
    }
  }
  // manifests and indexes are already in memory
  for (const img of resolved) {
    await cache.putBytes(img.top.digest, img.top.bytes)
    for (const m of img.manifests) await cache.putBytes(m.digest, m.bytes)
  }
  const missing: {digest: string; size: number; ref: ResolvedImage}[] = []
  let bytesCached = 0
  for (const b of unique.values()) {
    // eslint-disable-next-line no-await-in-loop
    if (await cache.has(b.digest, b.size)) bytesCached += b.size
    else missing.push(b)
  }
  const toPull = missing.reduce((a, b) => a + b.size, 0)
  progress.note(`resolved ${resolved.length} images: ${unique.size} unique blobs (${formatBytes([...unique.values()].reduce((a, b) => a + b.size, 0))}), ${missing.length} to pull (${formatBytes(toPull)})`)
  progress.begin(toPull, 'pulling')
  const limit = pLimit(Math.max(1, opts.jobs ?? 8))
  let bytesPulled = 0
  const failures: string[] = []
  await Promise.all(missing.map((b) => limit(async () => {
    try {
      const stream = await sources.openBlob(b.ref.spec.ref, b.digest, b.size)
      await cache.putStream(b.digest, stream, (n) => progress.advance(n))
      bytesPulled += b.size
    } catch (error) {
      if (!(error instanceof AirlockError)) throw error
      failures.push(`${b.ref.spec.refString}: blob ${b.digest}: ${error.message}`)
      limit.clearQueue()
    }
  })))
  progress.end()
  if (failures.length > 0) throw new AirlockError('create.pull_failed', `could not pull ${failures.length} blob(s)`, {details: failures})
  for (const img of resolved) progress.note(`  ${img.spec.name}  ${img.top.digest}  [${img.platforms.join(', ')}]`)

  // 3. write the signed archive
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
  }
  const written = await writeArchive(output, {
    metadata,
    blobs: [...unique.values()].map((b) => ({digest: b.digest, size: b.size, path: cache.path(b.digest)})),
    signingKey,
    epoch,
  })
  await writeLock(lockFile, lock)
  if (!signingKey) progress.note('WARNING: this bundle is UNSIGNED: nobody can prove where it came from')
  return {
    archive: written.path,
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
  }
}
