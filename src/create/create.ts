import {createHash} from 'node:crypto'
import {readdir, rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'
import type {Readable} from 'node:stream'

import pLimit from 'p-limit'
import type * as openpgp from 'openpgp'

import {AirlockError, InputError} from '../core/errors.js'
import {BlobCache} from '../copy/cache.js'
import {fsError} from '../core/fs-errors.js'
import {Progress, silentProgress, formatBytes} from '../core/progress.js'
import {imageBlobs, ResolvedImage, resolveImages} from '../resolve/resolve.js'
import {buildLock, checkLocked, lockPathFor, readLock, writeLock} from '../resolve/lock.js'
import {Sources} from '../resolve/sources.js'
import {findSigningKey} from '../sign/find.js'
import {loadBundleSpec, resolveExpiry} from '../spec/load.js'
import {AirlockMetadata, FORMAT_VERSION, ImageRecord} from '../transports/archive/metadata.js'
import {ArchiveFile, archiveFiles, ArchivePlan, copyBlobFile, planArchive, PlannedBlob, writeLayout} from '../transports/archive/writer.js'
import {BLOCK} from '../transports/archive/tar.js'
import {checkNotRunning, Journal, journalPath, JournalState, readJournal} from './journal.js'
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
  /** Bytes taken from the blob cache (--cache-dir). */
  bytesCached: number
  /** Bytes an interrupted run had already written to OUT.partial, re-hashed and kept. */
  bytesResumed: number
  bytesWritten: number
  bytesReferenced: number
  dedupeSaved: number
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

  // The blob cache is opt-in: without it every pulled blob is written once, straight into the archive.
  const cache = opts.cacheDir ? new BlobCache(opts.cacheDir) : undefined
  // Leftovers of a killed run: cache temp files of dead processes.
  await cache?.cleanStale()
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

  // --since: layers the previous bundle shipped stay out (and are not even pulled).
  const previous = opts.since ? await previousLayers(opts.since) : undefined
  const isExternal = (digest: string) => previous?.layers.has(digest) ?? false
  const created = new Date(epoch * 1000)
  const nowForExpiry = process.env.SOURCE_DATE_EPOCH ? created : new Date()
  const expires = resolveExpiry(spec.metadata.expires, nowForExpiry)

  /** Everything the archive of `images` holds, and its signed layout. */
  const layout = async (images: ResolvedImage[]) => {
    const unique = new Map<string, {digest: string; size: number; ref: ResolvedImage}>()
    let referenced = 0
    for (const img of images) {
      for (const b of imageBlobs(img)) {
        referenced += b.size
        if (!unique.has(b.digest)) unique.set(b.digest, {digest: b.digest, size: b.size, ref: img})
      }
    }
    const external = [...unique.values()].filter((b) => isExternal(b.digest)).map((b) => ({digest: b.digest, size: b.size}))
    for (const b of external) unique.delete(b.digest)
    const records = images.map((img) => imageRecord(img))
    const uniqueBytes = [...unique.values()].reduce((a, b) => a + b.size, 0)
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
    const plan = await planArchive({metadata, blobs: [...unique.values()], signingKey, epoch, ...(opts.splitSize ? {partSize: opts.splitSize} : {})})
    return {unique, referenced, external, records, uniqueBytes, plan}
  }

  if (resolved.length === 0) {
    throw new AirlockError('create.nothing_fetched', `none of the ${spec.images.length} images could be fetched`, {details: failedImages.map((f) => `${f.ref}: ${f.error}`)})
  }

  // 2. lay the archive out (it is signed before any blob moves), resuming an interrupted run
  let arch = await layout(resolved)
  const prior = await readJournal(output)
  checkNotRunning(output, prior)
  let opened: Awaited<ReturnType<typeof openArchive>>
  try {
    opened = await openArchive(output, arch.plan, prior)
  } catch (error) {
    throw fsError(error, `archive ${output}`)
  }
  let file = opened.file
  let journal: Journal | undefined
  let committed = false
  const failedBlobs = new Map<string, string>()
  try {
    journal = await Journal.start(output, arch.plan.total, arch.plan.partSize)
    const done = new Map<string, PlannedBlob>()
    for (const b of opened.reused) {
      done.set(b.digest, b)
      await journal.done(b.digest, b.size, b.dataOffset)
    }
    const bytesResumed = opened.reused.reduce((a, b) => a + b.size, 0)

    // manifests, indexes and configs are already in memory (verified)
    const inMemory = new Map<string, Buffer>(sources.small)
    for (const img of resolved) {
      inMemory.set(img.top.digest, img.top.bytes)
      for (const m of img.manifests) inMemory.set(m.digest, m.bytes)
    }
    for (const b of arch.plan.blobs) {
      const bytes = inMemory.get(b.digest)
      if (done.has(b.digest) || !bytes) continue
      await file.write([bytes], b.dataOffset)
      done.set(b.digest, b)
      if (cache) await cache.putBytes(b.digest, bytes)
    }

    // 3. blobs from the cache (re-hashed while copied), then pull the rest, each once, through one pool
    let bytesCached = 0
    const missing: PlannedBlob[] = []
    for (const b of arch.plan.blobs) {
      if (done.has(b.digest)) continue
      if (cache && (await cache.has(b.digest, b.size))) {
        try {
          await copyBlobFile(file, b, cache.path(b.digest))
          await journal.done(b.digest, b.size, b.dataOffset)
          done.set(b.digest, b)
          bytesCached += b.size
          continue
        } catch (error) {
          // A bad cache entry was removed: pull the blob instead.
          if (!(error instanceof AirlockError && error.code === 'cache.corrupt')) throw error
          progress.note(`WARNING: ${error.message.replace(', run again', '; pulling it again')}`)
        }
      }
      missing.push(b)
    }
    const toPull = missing.reduce((a, b) => a + b.size, 0)
    progress.note(`resolved ${resolved.length} images: ${arch.unique.size} unique blobs (${formatBytes(arch.uniqueBytes)}), ${missing.length} to pull (${formatBytes(toPull)})${bytesResumed ? `, ${formatBytes(bytesResumed)} resumed from ${output}.partial` : ''}`)
    progress.begin(toPull, 'pulling')
    const limit = pLimit(Math.max(1, opts.jobs ?? 8))
    let bytesPulled = 0
    const fileNow = file
    // After a failure (without --keep-going) the blobs still queued are skipped: each queued task
    // still runs and settles (p-limit's clearQueue() would leave their promises pending forever,
    // and this Promise.all with them).
    let stop = false
    await Promise.all(missing.map((b) => limit(async () => {
      if (stop) return
      const ref = arch.unique.get(b.digest)!.ref
      const sink = cache ? await cache.writer(b.digest) : undefined
      try {
        const stream = await sources.openBlob(ref.spec.ref, b.digest, b.size)
        const n = await consume(stream, async (bufs, at) => {
          await fileNow.write(bufs, b.dataOffset + at)
          await sink?.write(bufs)
        }, (n) => progress.advance(n))
        if (n !== b.size) throw new AirlockError('create.pull_failed', `blob ${b.digest}: got ${n} of ${b.size} bytes`)
        await sink?.commit()
        await journal!.done(b.digest, b.size, b.dataOffset)
        done.set(b.digest, b)
        bytesPulled += b.size
      } catch (error) {
        await sink?.abort()
        if (!(error instanceof AirlockError)) throw error
        failedBlobs.set(b.digest, error.message)
        if (!opts.keepGoing) stop = true
      }
    })))
    progress.end()

    /** Per image: every image that needs a blob that could not be pulled. */
    const perImage: FailedImage[] = []
    for (const img of resolved) {
      const bad = imageBlobs(img).find((b) => failedBlobs.has(b.digest))
      if (bad) perImage.push({ref: img.spec.refString, name: img.spec.name, stage: 'pull', error: `blob ${bad.digest}: ${failedBlobs.get(bad.digest)}`})
    }
    if (perImage.length > 0 && !opts.keepGoing) {
      throw new AirlockError('create.pull_failed', `could not pull ${perImage.length} of ${resolved.length} images`, {details: perImage.map((f) => `${f.ref}: ${f.error}`)})
    }
    if (perImage.length > 0) {
      failedImages.push(...perImage)
      const drop = new Set(perImage.map((f) => f.ref + ' ' + f.name))
      resolved = resolved.filter((img) => !drop.has(img.spec.refString + ' ' + img.spec.name))
    }
    if (opts.keepGoing && failedImages.length > 0) {
      for (const f of failedImages) progress.note(`WARNING: ${f.ref}: NOT in the archive (${f.stage} failed): ${f.error}`)
      if (resolved.length === 0) {
        throw new AirlockError('create.nothing_fetched', `none of the ${spec.images.length} images could be fetched`, {details: failedImages.map((f) => `${f.ref}: ${f.error}`)})
      }
    }
    if (perImage.length > 0) {
      // --keep-going dropped images: the archive without them has another layout. Move the
      // blobs it keeps from the first layout into the new one (re-hashed on the way).
      arch = await layout(resolved)
      const moved = await relayout(output, file, [...done.values()], arch.plan)
      file = moved.file
      await journal.remove()
      journal = await Journal.start(output, arch.plan.total, arch.plan.partSize)
      for (const b of moved.reused) await journal.done(b.digest, b.size, b.dataOffset)
    }
    for (const img of resolved) progress.note(`  ${img.spec.name}  ${img.top.digest}  [${img.platforms.join(', ')}]`)

    // 4. sync, and only then give the archive its final name
    let files: string[]
    try {
      files = await file.commit()
    } catch (error) {
      throw fsError(error, `archive ${output}`)
    }
    committed = true
    await journal.remove()
    // A --keep-going archive with missing images must not rewrite the lock file with a partial list.
    if (failedImages.length === 0) await writeLock(lockFile, lock)
    if (!signingKey) progress.note('WARNING: this bundle is UNSIGNED: nobody can prove where it came from')
    const {plan, external, records, referenced, uniqueBytes} = arch
    return {
      archive: files[0],
      files,
      ...(previous ? {base: {name: previous.name, version: previous.version, blobsLeftOut: external.length, bytesLeftOut: external.reduce((x, b) => x + b.size, 0)}} : {}),
      bundle: {name: spec.metadata.name, version: spec.metadata.version},
      images: records.map((r) => ({ref: r.ref, name: r.name, digest: r.digest, sourceDigest: r.sourceDigest, platforms: r.platforms})),
      blobs: plan.blobs.length,
      bytesPulled,
      bytesCached,
      bytesResumed,
      bytesWritten: plan.total,
      bytesReferenced: referenced,
      dedupeSaved: referenced - uniqueBytes,
      signed: Boolean(signingKey),
      ...(plan.signer ? {signer: plan.signer} : {}),
      lockFile,
      ...(opts.keepGoing ? {failed: failedImages} : {}),
    }
  } catch (error) {
    progress.end()
    throw fsError(error, `archive ${output}`)
  } finally {
    if (!committed) {
      await file.discard()
      await journal?.remove()
    }
  }
}

/**
 * Read a verified blob stream and hand it on in batches of about 1 MiB (`at` = offset of the
 * batch in the blob), one batch at a time. Resolves with the byte count once the stream ended
 * (it ends only after its digest matched).
 */
function consume(stream: Readable, onBatch: (bufs: Buffer[], at: number) => Promise<void>, onChunk?: (n: number) => void): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let batch: Buffer[] = []
    let bytes = 0
    let pos = 0
    let over = false
    const fail = (error: unknown) => {
      if (over) return
      over = true
      stream.destroy()
      reject(error)
    }
    const flush = (): Promise<void> => {
      if (bytes === 0) return Promise.resolve()
      const bufs = batch
      const at = pos
      pos += bytes
      batch = []
      bytes = 0
      return onBatch(bufs, at)
    }
    stream.on('data', (c: Buffer) => {
      batch.push(c)
      bytes += c.length
      onChunk?.(c.length)
      if (bytes >= BATCH) {
        stream.pause()
        flush().then(() => { if (!over) stream.resume() }, fail)
      }
    })
    stream.on('end', () => {
      flush().then(() => {
        over = true
        resolve(pos)
      }, fail)
    })
    stream.on('error', fail)
  })
}

const BATCH = 1024 * 1024

/**
 * Open `OUT.partial` for `plan`. An interrupted run of the same layout is resumed in place (its
 * journaled blobs re-hashed and kept); one of another layout has its blobs moved over; anything
 * else is started afresh.
 */
async function openArchive(output: string, plan: ArchivePlan, prior: JournalState | undefined): Promise<{file: ArchiveFile; reused: PlannedBlob[]}> {
  // Files a run killed while it moved blobs between layouts left aside (see relayout).
  const base = `${path.basename(output)}.previous`
  const aside = (await readdir(path.dirname(output)).catch(() => [] as string[])).filter((n) => n.startsWith(base) && n.endsWith('.partial'))
  await Promise.all(aside.map((n) => rm(path.join(path.dirname(output), n), {force: true})))
  const oldFiles = prior ? archiveFiles(output, prior.total, prior.partSize).map((f) => `${f}.partial`) : []
  const usable = prior !== undefined && prior.blobs.size > 0 && (await Promise.all(oldFiles.map((f) => stat(f).then((s) => s.isFile(), () => false)))).every(Boolean)
  if (!usable) {
    await Promise.all([...oldFiles, `${output}.partial`].map((f) => rm(f, {force: true})))
    await rm(journalPath(output), {force: true})
    const file = await ArchiveFile.create(output, plan.total, plan.partSize)
    await writeLayout(file, plan)
    return {file, reused: []}
  }
  const byDigest = new Map(plan.blobs.map((b) => [b.digest, b]))
  const same = prior.total === plan.total && prior.partSize === plan.partSize &&
    [...prior.blobs].every(([d, w]) => byDigest.get(d)?.dataOffset === w.offset && byDigest.get(d)?.size === w.size)
  if (same) {
    const file = await ArchiveFile.create(output, plan.total, plan.partSize, true)
    try {
      await writeLayout(file, plan)
      const reused: PlannedBlob[] = []
      for (const b of plan.blobs) {
        if (prior.blobs.has(b.digest) && (await hashAt(file, b.dataOffset, b.size)) === b.digest) reused.push(b)
      }
      return {file, reused}
    } catch (error) {
      await file.discard()
      throw error
    }
  }
  const old = await ArchiveFile.create(output, prior.total, prior.partSize, true)
  const was = [...prior.blobs].map(([digest, w]) => ({digest, size: w.size, headerOffset: w.offset - BLOCK, dataOffset: w.offset}))
  return relayout(output, old, was, plan)
}

/**
 * Move `blobs` (verified on the way) from `old` (this archive's `.partial` files in another
 * layout) into a new `.partial` laid out as `plan`; `old` is removed.
 */
async function relayout(output: string, old: ArchiveFile, blobs: PlannedBlob[], plan: ArchivePlan): Promise<{file: ArchiveFile; reused: PlannedBlob[]}> {
  await old.close()
  const aside = `${output}.previous`
  const asideFiles = archiveFiles(aside, old.total, old.partSize).map((f) => `${f}.partial`)
  for (const [i, f] of old.files.entries()) await rename(f, asideFiles[i])
  const src = await ArchiveFile.create(aside, old.total, old.partSize, true)
  let file: ArchiveFile | undefined
  try {
    file = await ArchiveFile.create(output, plan.total, plan.partSize)
    await writeLayout(file, plan)
    const want = new Map(plan.blobs.map((b) => [b.digest, b]))
    const reused: PlannedBlob[] = []
    for (const b of blobs) {
      const to = want.get(b.digest)
      if (!to || to.size !== b.size || b.dataOffset + b.size > old.total) continue
      const dst = file
      if ((await hashAt(src, b.dataOffset, b.size, (c, at) => dst.write([c], to.dataOffset + at))) === b.digest) reused.push(to)
    }
    return {file, reused}
  } catch (error) {
    await file?.discard()
    throw error
  } finally {
    await src.discard()
  }
}

/** sha256 of `size` bytes at `offset` of a partial archive, handing each piece read (and its offset in the range) to `each`. */
async function hashAt(file: ArchiveFile, offset: number, size: number, each?: (chunk: Buffer, at: number) => Promise<void>): Promise<string> {
  const h = createHash('sha256')
  const buf = Buffer.allocUnsafe(Math.min(BATCH, Math.max(size, 1)))
  for (let at = 0; at < size; at += BATCH) {
    const c = buf.subarray(0, Math.min(BATCH, size - at))
    await file.read(c, offset + at)
    h.update(c)
    await each?.(c, at)
  }
  return `sha256:${h.digest('hex')}`
}
