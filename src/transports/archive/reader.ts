import {createHash} from 'node:crypto'
import {statSync} from 'node:fs'
import {stat} from 'node:fs/promises'

import type * as openpgp from 'openpgp'

import {InputError, VerifyError} from '../../core/errors.js'
import {blobPath, DIGEST_RE, ImageIndex, ImageManifest, isIndexMediaType, MAX_MANIFEST_BYTES} from '../../core/model.js'
import {sha256Hex} from '../../core/digest.js'
import {SignerInfo, verifyDetached} from '../../sign/signature.js'
import {takeEarly} from '../../verify/early.js'
import {ByteReader, READ_CHUNK} from './bytes.js'
import {HASH_CHUNK, HashJobs, hashThreads, PartFiles} from './hash-pool.js'
import {WorkerHasher} from './hash-worker.js'
import {
  AirlockMetadata, BLOB_NAME_RE, buildDockerManifestJson, buildIndexJson, ENTRY, FORMAT_VERSION, ImageRecord, LIMITS,
  OCI_LAYOUT_CONTENT,
} from './metadata.js'
import {BLOCK, isZeroBlock, paddingFor, parseHeader, TarHeader} from './tar.js'

/** Everything known once the signature and the metadata entries have been checked. */
/** Where an entry's data lies in the (possibly multi-part) archive: byte offset from the start of the first part. */
export interface EntryLocation {
  offset: number
  size: number
}

export interface VerifiedHead {
  metadata: AirlockMetadata
  signer?: SignerInfo
  /** Raw bytes of the verified metadata entries, by entry name. */
  raw: Map<string, Buffer>
  /** hex → expected size, for every blob the archive must contain, in archive order. */
  blobs: Map<string, number>
  /** entry name → data location; complete once the whole archive has been read (for `serve`). */
  locations: Map<string, EntryLocation>
}

/**
 * A consumer of a verified stream (an install target). Nothing it receives may become visible
 * before `commit()`: `blob()` data is verified only when its iterable completes without throwing.
 */
export interface ArchiveSink {
  begin?(head: VerifiedHead): Promise<void>
  /**
   * `release`: a sink that is completely done with a chunk of `data` (its bytes have been
   * written out and nothing refers to that memory any more) may hand it back, to be read into
   * again; optional, and saves allocating and faulting in fresh memory for every chunk.
   */
  blob?(digest: string, size: number, data: AsyncIterable<Buffer>, release?: (chunk: Buffer) => void): Promise<void>
  /**
   * True for a sink that releases (nearly) every chunk it is given: the reader then reads into
   * shared memory, recycled, and hashes on a second thread. Fresh shared memory for each chunk
   * would cost more than hashing on the main thread.
   */
  readonly releasesChunks?: boolean
  commit?(head: VerifiedHead): Promise<void>
  abort?(error: unknown): Promise<void>
}

export interface ReadOptions {
  /** May still be loading: plain verify starts reading meanwhile, but a key error is reported first. */
  trustedKeys: openpgp.Key[] | Promise<openpgp.Key[]>
  allowUnsigned?: boolean
  now?: Date
  sink?: ArchiveSink
  /** Stop after the metadata entries (inspect). */
  headOnly?: boolean
  /** Check the bundle's expiry (default true). */
  checkExpiry?: boolean
}

export interface VerifyReport {
  ok: true
  archive: string
  signed: boolean
  signer?: SignerInfo
  bundle: AirlockMetadata['bundle']
  images: {name: string; ref: string; digest: string; platforms: string[]}[]
  entries: number
  blobs: number
  bytes: number
}

/** Read size for the metadata entries on the plain verify path (the blobs that follow are read elsewhere). */
const HEAD_CHUNK = 64 * 1024

const CHECKSUM_LINE = /^([a-f0-9]{64}) {2}(.+)$/

function fail(code: string, entry: string, reason: string): never {
  throw new VerifyError(code, `${entry}: ${reason}`, {entry})
}

function parseChecksums(text: Buffer): Map<string, string> {
  const s = text.toString('utf8')
  if (!s.endsWith('\n')) fail('archive.bad_checksums', ENTRY.CHECKSUMS, 'does not end with a newline')
  const lines = s.slice(0, -1).split('\n')
  const out = new Map<string, string>()
  let prev: string | undefined
  for (const [i, line] of lines.entries()) {
    const m = CHECKSUM_LINE.exec(line)
    if (!m) fail('archive.bad_checksums', ENTRY.CHECKSUMS, `line ${i + 1} is not "HEX  PATH"`)
    const [, hex, name] = m
    const allowed = name === ENTRY.METADATA || name === ENTRY.OCI_LAYOUT || name === ENTRY.INDEX || name === ENTRY.DOCKER_MANIFEST || BLOB_NAME_RE.test(name)
    if (!allowed) fail('archive.bad_checksums', ENTRY.CHECKSUMS, `line ${i + 1} names an unexpected path ${JSON.stringify(name.slice(0, 200))}`)
    if (prev !== undefined && Buffer.compare(Buffer.from(prev), Buffer.from(name)) >= 0) {
      fail('archive.bad_checksums', ENTRY.CHECKSUMS, `line ${i + 1}: paths are not sorted and unique (${name})`)
    }
    const blob = BLOB_NAME_RE.exec(name)
    if (blob && blob[1] !== hex) fail('archive.bad_checksums', ENTRY.CHECKSUMS, `line ${i + 1}: checksum of ${name} is not its own name`)
    out.set(name, hex)
    prev = name
  }
  for (const required of [ENTRY.METADATA, ENTRY.OCI_LAYOUT, ENTRY.INDEX, ENTRY.DOCKER_MANIFEST]) {
    if (!out.has(required)) fail('archive.bad_checksums', ENTRY.CHECKSUMS, `does not list ${required}`)
  }
  return out
}

function parseJson(entry: string, data: Buffer): unknown {
  try {
    return JSON.parse(data.toString('utf8'))
  } catch (error) {
    fail('archive.bad_json', entry, `is not valid JSON (${(error as Error).message})`)
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function checkMetadataShape(m: unknown): asserts m is AirlockMetadata {
  const e = ENTRY.METADATA
  if (!isObj(m)) fail('archive.bad_metadata', e, 'is not a JSON object')
  if (m.formatVersion !== FORMAT_VERSION) fail('archive.unsupported_format', e, `format version ${JSON.stringify(m.formatVersion)} is not supported (this airlock reads version ${FORMAT_VERSION})`)
  if (!isObj(m.bundle) || typeof m.bundle.name !== 'string' || typeof m.bundle.version !== 'string' || typeof m.bundle.created !== 'string') {
    fail('archive.bad_metadata', e, 'bundle name/version/created missing')
  }
  if (!Array.isArray(m.images) || m.images.length === 0) fail('archive.bad_metadata', e, 'lists no images')
  for (const [i, img] of (m.images as unknown[]).entries()) {
    const where = `image #${i + 1}`
    if (!isObj(img)) fail('archive.bad_metadata', e, `${where} is not an object`)
    for (const k of ['ref', 'name', 'mediaType', 'digest', 'sourceDigest', 'dockerManifest']) {
      if (typeof img[k] !== 'string') fail('archive.bad_metadata', e, `${where}: ${k} missing`)
    }
    if (!DIGEST_RE.test(img.digest as string)) fail('archive.bad_metadata', e, `${where}: bad digest`)
    if (!Number.isSafeInteger(img.size) || (img.size as number) < 0) fail('archive.bad_metadata', e, `${where}: bad size`)
    if (!Array.isArray(img.platforms) || !Array.isArray(img.manifests) || !Array.isArray(img.blobs)) fail('archive.bad_metadata', e, `${where}: platforms/manifests/blobs missing`)
    for (const b of img.blobs as unknown[]) {
      if (!isObj(b) || typeof b.digest !== 'string' || !DIGEST_RE.test(b.digest) || !Number.isSafeInteger(b.size) || (b.size as number) < 0) {
        fail('archive.bad_metadata', e, `${where}: bad blob entry`)
      }
    }
    for (const mf of img.manifests as unknown[]) {
      if (!isObj(mf) || typeof mf.digest !== 'string' || !DIGEST_RE.test(mf.digest) || typeof mf.config !== 'string' || !DIGEST_RE.test(mf.config) || !Array.isArray(mf.layers) || !(mf.layers as unknown[]).every((l) => typeof l === 'string' && DIGEST_RE.test(l))) {
        fail('archive.bad_metadata', e, `${where}: bad manifest entry`)
      }
    }
  }
}

/** Cross-check airlock.json, index.json and manifest.json, and compute the expected blob set. */
function crossCheck(meta: AirlockMetadata, raw: Map<string, Buffer>, sums: Map<string, string>): Map<string, number> {
  // index.json and manifest.json must be exactly what airlock.json implies (they are derived data).
  if (!buildIndexJson(meta.images).equals(raw.get(ENTRY.INDEX)!)) {
    fail('archive.inconsistent', ENTRY.INDEX, 'does not match the images in airlock.json')
  }
  let dockerManifest: Buffer
  try {
    dockerManifest = buildDockerManifestJson(meta.images)
  } catch (error) {
    fail('archive.inconsistent', ENTRY.METADATA, (error as Error).message)
  }
  if (!dockerManifest.equals(raw.get(ENTRY.DOCKER_MANIFEST)!)) {
    fail('archive.inconsistent', ENTRY.DOCKER_MANIFEST, 'does not match the images in airlock.json')
  }
  const expected = new Map<string, number>()
  for (const img of meta.images) {
    const own = new Map(img.blobs.map((b) => [b.digest, b.size]))
    const need = [img.digest, ...img.manifests.flatMap((m) => [m.digest, m.config, ...m.layers])]
    for (const d of need) if (!own.has(d)) fail('archive.inconsistent', ENTRY.METADATA, `image ${img.name}: blob ${d} is used but not listed`)
    if (own.get(img.digest) !== img.size) fail('archive.inconsistent', ENTRY.METADATA, `image ${img.name}: size of ${img.digest} disagrees`)
    for (const [d, size] of own) {
      const prev = expected.get(d.slice(7))
      if (prev !== undefined && prev !== size) fail('archive.inconsistent', ENTRY.METADATA, `blob ${d} is listed with two sizes`)
      expected.set(d.slice(7), size)
    }
  }
  // A differential bundle leaves out the blobs its base already shipped: those must be on the target.
  const external = new Map<string, number>()
  for (const b of meta.base?.blobs ?? []) {
    if (!isObj(b) || typeof b.digest !== 'string' || !DIGEST_RE.test(b.digest) || !Number.isSafeInteger(b.size)) fail('archive.bad_metadata', ENTRY.METADATA, 'bad base blob entry')
    const hex = b.digest.slice(7)
    if (expected.get(hex) !== b.size) fail('archive.inconsistent', ENTRY.METADATA, `base blob ${b.digest} is used by no image (or with another size)`)
    if (sums.has(`blobs/sha256/${hex}`)) fail('archive.inconsistent', `blobs/sha256/${hex}`, 'is both shipped and expected from the base bundle')
    external.set(hex, b.size)
  }
  const listed = [...sums.keys()].filter((n) => BLOB_NAME_RE.test(n))
  for (const name of listed) {
    if (!expected.has(name.slice(13))) fail('archive.inconsistent', name, 'is listed in checksums.sha256 but used by no image')
  }
  for (const hex of expected.keys()) {
    if (!sums.has(`blobs/sha256/${hex}`) && !external.has(hex)) fail('archive.inconsistent', `blobs/sha256/${hex}`, 'is used by an image but not listed in checksums.sha256')
  }
  for (const hex of external.keys()) expected.delete(hex)
  return new Map([...expected.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

/** Manifests and indexes among the blobs: what each must reference, to check their content. */
function manifestExpectations(meta: AirlockMetadata): Map<string, ManifestWant> {
  const out = new Map<string, ManifestWant>()
  for (const img of meta.images) {
    for (const m of img.manifests) out.set(m.digest, {kind: 'manifest', children: new Set([m.config, ...m.layers])})
    if (isIndexMediaType(img.mediaType)) {
      out.set(img.digest, {kind: 'index', children: new Set(img.manifests.map((m) => m.digest))})
    } else if (img.manifests.length !== 1 || img.manifests[0].digest !== img.digest) {
      fail('archive.inconsistent', ENTRY.METADATA, `image ${img.name}: a single manifest image must list itself as its manifest`)
    }
  }
  return out
}

function checkManifestContent(digest: string, data: Buffer, want: {kind: 'index' | 'manifest'; children: Set<string>}): void {
  const entry = blobPath(digest)
  const doc = parseJson(entry, data)
  if (!isObj(doc)) fail('archive.bad_manifest', entry, 'is not a JSON object')
  const refs = want.kind === 'index'
    ? ((doc as unknown as ImageIndex).manifests ?? []).map((d) => d?.digest)
    : [(doc as unknown as ImageManifest).config?.digest, ...((doc as unknown as ImageManifest).layers ?? []).map((d) => d?.digest)]
  const got = new Set(refs)
  if (got.size !== want.children.size || ![...want.children].every((d) => got.has(d))) {
    fail('archive.inconsistent', entry, `${want.kind} references other blobs than airlock.json lists`)
  }
}

/**
 * The bytes of one entry, hashed as they pass. The final chunk is held back until the hash has
 * been checked, so a consumer never receives a complete entry whose content is wrong.
 */
async function* entryChunks(reader: ByteReader, header: TarHeader, hexWanted: string, entry: string, hasher?: WorkerHasher): AsyncGenerator<Buffer> {
  // On a hashing thread when there is one (the chunks are then hashed while the sink passes them on).
  const job = hasher?.job()
  const h = job ? undefined : createHash('sha256')
  let left = header.size
  let held: Buffer | undefined
  while (left > 0) {
    const b = await reader.readSome(Math.min(left, READ_CHUNK))
    if (b.length === 0) fail('archive.truncated', entry, `archive is truncated inside this entry (${left} bytes missing)`)
    if (job) {
      const wait = job.update(b)
      if (wait) await wait
    } else {
      h!.update(b)
    }
    left -= b.length
    if (held) yield held
    held = b
  }
  const pad = paddingFor(header.size)
  if (pad) await readPadding(reader, pad, entry)
  const got = job ? await job.hex() : h!.digest('hex')
  if (got !== hexWanted) fail('archive.digest_mismatch', entry, `content does not match its signed sha256 (got ${got})`)
  if (held) yield held
}

/** Hand a read chunk back to its reader, if it covers its whole buffer (a partial one shares it with what follows). */
function recycleWhole(reader: ByteReader, b: Buffer): void {
  if (b.byteOffset === 0 && b.length === b.buffer.byteLength) reader.recycle(b.buffer)
}

/** verify without a sink, sequentially: hash here, and reuse each whole read buffer once it is hashed. */
async function hashEntryInline(reader: ByteReader, header: TarHeader, hexWanted: string, entry: string): Promise<void> {
  const h = createHash('sha256')
  let left = header.size
  while (left > 0) {
    const b = await reader.readSome(Math.min(left, READ_CHUNK))
    if (b.length === 0) fail('archive.truncated', entry, `archive is truncated inside this entry (${left} bytes missing)`)
    h.update(b)
    left -= b.length
    recycleWhole(reader, b)
  }
  const pad = paddingFor(header.size)
  if (pad) await readPadding(reader, pad, entry)
  const got = h.digest('hex')
  if (got !== hexWanted) fail('archive.digest_mismatch', entry, `content does not match its signed sha256 (got ${got})`)
}

type ManifestWant = {kind: 'index' | 'manifest'; children: Set<string>}

/** Where the blob entries stand: what has been read and checked so far. */
interface BlobState {
  /** Entries read so far (messages name entries by their number). */
  index: number
  seen: Set<string>
  prevHex: string
}

interface BlobContext {
  /** hex → signed size, in archive order. */
  blobs: Map<string, number>
  manifests: Map<string, ManifestWant>
  locations: Map<string, EntryLocation>
  sink?: ArchiveSink
  hasher?: WorkerHasher
}

/**
 * The blob entries from the reader's position on, one after the other, then the end-of-archive
 * marker and the zero padding after it. With a sink, each verified blob is streamed to it.
 */
async function readBlobsSequentially(reader: ByteReader, st: BlobState, ctx: BlobContext): Promise<void> {
  const {blobs, manifests, locations, sink, hasher} = ctx
  // A chunk the sink is done with is read into again, once the hashing thread has hashed it too.
  const recycle = (chunk: Buffer) => hasher ? hasher.afterHashed(chunk, () => recycleWhole(reader, chunk)) : recycleWhole(reader, chunk)
  for (;;) {
    const block = await reader.readExact(BLOCK, st.index === 0 ? 'archive header' : `header of entry #${st.index + 1}`)
    if (isZeroBlock(block)) break
    st.index++
    const h = parseHeader(block, st.index)
    const m = BLOB_NAME_RE.exec(h.name)
    if (!m) fail('archive.unexpected_entry', h.name.slice(0, 200), describeName(h.name))
    const hex = m[1]
    if (st.seen.has(hex)) fail('archive.duplicate_entry', h.name, 'appears twice')
    const size = blobs.get(hex)
    if (size === undefined) fail('archive.unexpected_entry', h.name, 'is not listed in the signed checksums.sha256')
    if (hex < st.prevHex) fail('archive.bad_order', h.name, 'blobs are not in sorted order')
    if (h.size !== size) fail('archive.size_mismatch', h.name, `is ${h.size} bytes, the signed metadata says ${size}`)
    st.seen.add(hex)
    locations.set(h.name, {offset: reader.position, size: h.size})
    st.prevHex = hex
    const digest = `sha256:${hex}`
    const want = manifests.get(digest)
    if (want) {
      if (h.size > MAX_MANIFEST_BYTES) fail('archive.entry_too_large', h.name, 'manifest is larger than 4 MiB')
      const chunks: Buffer[] = []
      for await (const c of entryChunks(reader, h, hex, h.name, hasher)) chunks.push(c)
      const data = Buffer.concat(chunks)
      checkManifestContent(digest, data, want)
      if (sink?.blob) await sink.blob(digest, size, (async function* () { yield data })())
    } else if (sink?.blob) {
      const gen = entryChunks(reader, h, hex, h.name, hasher)
      await sink.blob(digest, size, gen, recycle)
      // A sink that skipped this blob (e.g. --only, or already on the target): still verify it.
      // The sink never saw these chunks: their memory is free as soon as they are hashed.
      for await (const c of gen) recycle(c)
    } else {
      await hashEntryInline(reader, h, hex, h.name)
    }
  }
  for (const hex of blobs.keys()) {
    if (!st.seen.has(hex)) fail('archive.missing_entry', `blobs/sha256/${hex}`, 'is listed in the signed checksums.sha256 but missing from the archive')
  }
  // After the end-of-archive marker only zero padding may follow.
  const rest = await reader.readExact(BLOCK, 'end-of-archive marker')
  if (!isZeroBlock(rest)) fail('archive.bad_trailer', 'end-of-archive marker', 'is not two zero blocks')
  for (;;) {
    const b = await reader.readSome(READ_CHUNK)
    if (b.length === 0) break
    if (!isZeroBlock(b)) fail('archive.trailing_data', 'end of archive', `unexpected data after the end-of-archive marker (at byte ${reader.position - b.length})`)
  }
}

/** The zero bytes after an entry's data, up to the next 512-byte boundary: anything else is refused. */
async function readPadding(reader: ByteReader, pad: number, entry: string): Promise<void> {
  const bytes = await reader.readExact(pad, entry)
  if (!isZeroBlock(bytes)) fail('archive.bad_padding', entry, 'the padding after its data is not all zero bytes')
}

interface PlannedBlob {
  hex: string
  name: string
  header: number
  data: number
  size: number
  /** Offset just after its zero padding. */
  end: number
  manifest?: ManifestWant
  jobs?: HashJobs
  job?: number
}

/**
 * Plain verify of the blob entries, fast. After the head, the signed metadata fixes the layout
 * (docs/format.md): per blob, in sorted order, one header, the data, zero padding. The headers
 * are read and checked here, in order, as the sequential reader checks them; the data of every
 * blob before the first header that is not exactly the expected one is hashed with positional
 * reads on all threads (`jobs`: what the speculation started, if anything). Failures are
 * reported in archive order, as the sequential reader reports them: from the first unexpected
 * header on (or else from the end-of-archive marker), the sequential reader takes over at the
 * returned offset. `at.position` follows the last blob checked (for messages about parts).
 */
async function verifyBlobsFast(files: PartFiles, start: number, st: BlobState, ctx: BlobContext, jobs: HashJobs | undefined, threads: number, at: {position?: number}): Promise<number> {
  const plan: PlannedBlob[] = []
  let off = start
  for (const [hex, size] of ctx.blobs) {
    const data = off + BLOCK
    const end = data + size + paddingFor(size)
    plan.push({hex, name: `blobs/sha256/${hex}`, header: off, data, size, end, manifest: ctx.manifests.get(`sha256:${hex}`)})
    off = end
  }
  const trailer = off
  // The headers, up to the first one the sequential reader would see differently.
  const block = Buffer.allocUnsafe(BLOCK)
  let good = 0
  for (const b of plan) {
    if (b.end > files.total) break
    if (files.read(block, 0, BLOCK, b.header) !== BLOCK) break
    let h: TarHeader
    try {
      h = parseHeader(block, st.index + good + 1) // a zero block is not a ustar header either
    } catch {
      break
    }
    if (h.name !== b.name || h.size !== b.size) break
    if (b.manifest && b.size > MAX_MANIFEST_BYTES) break
    // Non-zero padding: the sequential reader names it (it re-reads this one blob to get there).
    const pad = b.end - b.data - b.size
    if (pad > 0 && (files.read(block, 0, pad, b.data + b.size) !== pad || !isZeroBlock(block.subarray(0, pad)))) break
    good++
  }
  const prefix = plan.slice(0, good)
  // Data: the speculation's result where it hashed exactly this range, else hashed now.
  const needed = new Set<number>()
  const rest: PlannedBlob[] = []
  for (const b of prefix) {
    if (b.manifest) continue // read and hashed below, its content is needed
    const k = jobs?.find(b.data, b.size)
    if (k === undefined) {
      rest.push(b)
    } else {
      b.jobs = jobs
      b.job = k
      needed.add(k)
    }
  }
  jobs?.skipAllBut(needed)
  const own = rest.length > 0 ? HashJobs.start(files, rest.map((b) => ({offset: b.data, size: b.size})), jobs ? 0 : threads - 1) : undefined
  try {
    for (const b of rest) {
      b.jobs = own
      b.job = own!.find(b.data, b.size)
    }
    await Promise.all([jobs?.finish(), own?.finish()])
    for (const b of prefix) {
      let got: string | undefined
      let content: Buffer | undefined
      if (b.manifest) {
        content = Buffer.allocUnsafe(b.size)
        got = files.read(content, 0, b.size, b.data) === b.size ? sha256Hex(content) : undefined
      } else {
        got = b.jobs!.digest(b.job!)
      }
      // Could not be read whole after all (the file shrank?): the sequential reader says what is wrong.
      if (got === undefined) return b.header
      st.index++
      st.seen.add(b.hex)
      st.prevHex = b.hex
      ctx.locations.set(b.name, {offset: b.data, size: b.size})
      at.position = b.end
      if (got !== b.hex) fail('archive.digest_mismatch', b.name, `content does not match its signed sha256 (got ${got})`)
      if (content) checkManifestContent(`sha256:${b.hex}`, content, b.manifest!)
    }
  } finally {
    await own?.close()
  }
  return good === plan.length ? trailer : plan[good].header
}

/**
 * Verify an archive in ONE streaming pass and, when a sink is given, feed it the verified
 * content in the same pass. Throws VerifyError naming the entry and the reason; on any failure
 * the sink is aborted before the error propagates.
 */
export async function readArchive(parts: string[], opts: ReadOptions): Promise<VerifyReport & {head: VerifiedHead}> {
  const {sink} = opts
  // Plain verification of a whole archive: positional reads, blobs hashed on every core,
  // starting while the keys are read and the signature is checked. A pipe or a device is
  // read front to back instead.
  const direct = !sink && !opts.headOnly && parts.every(isRegularOrMissing)
  const threads = direct ? hashThreads() : 1
  let files: PartFiles | undefined
  let jobs: HashJobs | undefined
  let openError: unknown
  if (direct) {
    const early = takeEarly(parts)
    if (early) {
      ({files, jobs} = early)
    } else {
      try {
        files = PartFiles.open(parts)
        jobs = HashJobs.speculate(files, 0, threads - 1)
      } catch (error) {
        openError = error
      }
    }
  }
  // Feeding a sink that hands chunks back, the main thread reads and writes; the blobs are
  // hashed on a second thread.
  const hasher = sink?.releasesChunks && !opts.headOnly && hashThreads() > 1 ? WorkerHasher.start() : undefined
  let trustedKeys: openpgp.Key[]
  let reader: ByteReader
  try {
    trustedKeys = await opts.trustedKeys
    if (openError) throw openError as Error
    reader = files ? ByteReader.over(files, 0, HEAD_CHUNK) : await ByteReader.open(parts, {shared: hasher !== undefined})
  } catch (error) {
    await jobs?.close()
    await hasher?.close()
    files?.close()
    throw error
  }
  const at: {position?: number} = {}
  const partSizes = files ? files.sizes : parts.length > 1 ? await Promise.all(parts.map(async (p) => (await stat(p)).size)) : []
  let began = false
  try {
    let index = 0
    const nextHeader = async (): Promise<TarHeader | undefined> => {
      const block = await reader.readExact(BLOCK, index === 0 ? 'archive header' : `header of entry #${index + 1}`)
      if (isZeroBlock(block)) return undefined
      index++
      return parseHeader(block, index)
    }
    const readSmall = async (expectName: string, optional = false): Promise<Buffer | undefined> => {
      const h = await nextHeader()
      if (!h) {
        if (optional) return undefined
        fail('archive.missing_entry', expectName, 'is missing (archive ends before it)')
      }
      if (h.name !== expectName) {
        if (optional) {
          pendingHeader = h
          return undefined
        }
        fail('archive.unexpected_entry', h.name.slice(0, 200), `found where ${expectName} was expected (${describeName(h.name)})`)
      }
      if (h.size > LIMITS[expectName]) fail('archive.entry_too_large', expectName, `is ${h.size} bytes, more than the ${LIMITS[expectName]} allowed`)
      locations.set(expectName, {offset: reader.position, size: h.size})
      const data = await reader.readExact(h.size, expectName)
      const pad = paddingFor(h.size)
      if (pad) await readPadding(reader, pad, expectName)
      return data
    }
    let pendingHeader: TarHeader | undefined
    const locations = new Map<string, EntryLocation>()

    const metaBytes = (await readSmall(ENTRY.METADATA))!
    const sumsBytes = (await readSmall(ENTRY.CHECKSUMS))!
    const sigBytes = await readSmall(ENTRY.SIGNATURE, true)

    let signer: SignerInfo | undefined
    if (sigBytes) {
      if (trustedKeys.length === 0) {
        if (!opts.allowUnsigned) throw new InputError('signature.no_keys', 'no trusted key given: pass --key PUB.asc (or --allow-unsigned to skip the signature check)')
      } else {
        signer = await verifyDetached(sumsBytes, sigBytes.toString('utf8'), trustedKeys)
      }
    } else if (!opts.allowUnsigned) {
      fail('signature.missing', ENTRY.SIGNATURE, 'archive is unsigned (pass --allow-unsigned to accept it)')
    }

    const sums = parseChecksums(sumsBytes)
    if (sha256Hex(metaBytes) !== sums.get(ENTRY.METADATA)) fail('archive.digest_mismatch', ENTRY.METADATA, 'content does not match its signed sha256')
    const metaDoc = parseJson(ENTRY.METADATA, metaBytes)
    checkMetadataShape(metaDoc)
    const metadata = metaDoc
    if (opts.checkExpiry !== false && metadata.bundle.expires) {
      const exp = new Date(metadata.bundle.expires)
      const now = opts.now ?? new Date()
      if (Number.isNaN(exp.getTime()) || exp.getTime() <= now.getTime()) {
        fail('bundle.expired', ENTRY.METADATA, `bundle ${metadata.bundle.name} ${metadata.bundle.version} expired on ${metadata.bundle.expires}`)
      }
    }
    if (parts.length > 1) checkParts(parts, partSizes, metadata)
    const raw = new Map<string, Buffer>([[ENTRY.METADATA, metaBytes], [ENTRY.CHECKSUMS, sumsBytes]])
    if (sigBytes) raw.set(ENTRY.SIGNATURE, sigBytes)
    const headOnlyBlobs = new Map<string, number>()
    if (opts.headOnly) {
      return {ok: true, archive: parts[0], ...summary(metadata, signer, sigBytes !== undefined), entries: index, blobs: headOnlyBlobs.size, bytes: reader.position, head: {metadata, signer, raw, blobs: headOnlyBlobs, locations}}
    }

    for (const name of [ENTRY.OCI_LAYOUT, ENTRY.INDEX, ENTRY.DOCKER_MANIFEST]) {
      let data: Buffer
      if (pendingHeader) {
        const h = pendingHeader
        pendingHeader = undefined
        if (h.name !== name) fail('archive.unexpected_entry', h.name.slice(0, 200), `found where ${name} was expected (${describeName(h.name)})`)
        if (h.size > LIMITS[name]) fail('archive.entry_too_large', name, `is ${h.size} bytes, more than the ${LIMITS[name]} allowed`)
        locations.set(name, {offset: reader.position, size: h.size})
        data = await reader.readExact(h.size, name)
        const pad = paddingFor(h.size)
        if (pad) await readPadding(reader, pad, name)
      } else {
        data = (await readSmall(name))!
      }
      if (sha256Hex(data) !== sums.get(name)) fail('archive.digest_mismatch', name, 'content does not match its signed sha256')
      raw.set(name, data)
    }
    if (!raw.get(ENTRY.OCI_LAYOUT)!.equals(OCI_LAYOUT_CONTENT)) fail('archive.inconsistent', ENTRY.OCI_LAYOUT, 'unexpected content')
    const blobs = crossCheck(metadata, raw, sums)
    const manifests = manifestExpectations(metadata)
    const head: VerifiedHead = {metadata, signer, raw, blobs, locations}

    began = true
    await sink?.begin?.(head)

    const st: BlobState = {index, seen: new Set(), prevHex: ''}
    const ctx: BlobContext = {blobs, manifests, locations, sink, hasher}
    if (files) {
      const resume = await verifyBlobsFast(files, reader.position, st, ctx, jobs, threads, at)
      await jobs?.close()
      jobs = undefined
      reader = ByteReader.over(files, resume, HASH_CHUNK)
      at.position = undefined
    }
    await readBlobsSequentially(reader, st, ctx)
    index = st.index
    await sink?.commit?.(head)
    return {ok: true, archive: parts[0], ...summary(metadata, signer, sigBytes !== undefined), entries: index, blobs: st.seen.size, bytes: reader.position, head}
  } catch (error) {
    if (began || sink) await sink?.abort?.(error).catch(() => {})
    if (parts.length > 1 && error instanceof VerifyError) error.message += locatePart(parts, partSizes, at.position ?? reader.position)
    throw error
  } finally {
    await jobs?.close()
    await hasher?.close()
    await reader.close()
    files?.close()
  }
}

/** A regular file, or nothing there (then opening it reports the problem as usual). */
function isRegularOrMissing(p: string): boolean {
  try {
    return statSync(p).isFile()
  } catch {
    return true
  }
}

/** Split archives: every part but the last has exactly the signed part size. */
function checkParts(parts: string[], sizes: number[], metadata: AirlockMetadata): void {
  const partSize = metadata.split?.partSize
  if (!partSize) fail('archive.unexpected_part', parts[1], 'was given as a part, but the signed metadata says this archive is not split (foreign part?)')
  for (const [i, size] of sizes.entries()) {
    const last = i === sizes.length - 1
    if (!last && size !== partSize) fail('archive.part_size', parts[i], `is ${size} bytes; every part but the last must be ${partSize} bytes (a damaged, foreign or missing part)`)
    if (last && (size === 0 || size > partSize)) fail('archive.part_size', parts[i], `is ${size} bytes, more than the part size ${partSize} (foreign part?)`)
  }
}

function locatePart(parts: string[], sizes: number[], position: number): string {
  let start = 0
  for (const [i, size] of sizes.entries()) {
    if (position <= start + size || i === sizes.length - 1) {
      return ` (in part ${parts[i]} near byte ${position - start}: a part may be missing, reordered, duplicated or foreign)`
    }
    start += size
  }
  return ''
}

function describeName(name: string): string {
  if (name.startsWith('/')) return 'absolute path names are not allowed'
  if (name.split('/').includes('..')) return 'path names with ".." are not allowed'
  return 'not a name this format allows'
}

function summary(metadata: AirlockMetadata, signer: SignerInfo | undefined, signed: boolean) {
  return {
    signed,
    ...(signer ? {signer} : {}),
    bundle: metadata.bundle,
    images: metadata.images.map((i: ImageRecord) => ({name: i.name, ref: i.ref, digest: i.digest, platforms: i.platforms})),
  }
}
