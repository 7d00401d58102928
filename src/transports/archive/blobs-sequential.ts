import {MAX_MANIFEST_BYTES} from '../../core/model.js'
import type {SequentialReader} from '../../blob/sequential.js'
import {READ_CHUNK} from '../../blob/sizes.js'
import {checkChunks, verifiedChunks, VerifyHow} from '../../blob/verified.js'
import type {WorkerHasher} from '../../blob/worker-hasher.js'
import {checkManifestContent, describeName, fail, ManifestWant} from './checks.js'
import {EntryLocation, readPadding} from './head.js'
import {BLOB_NAME_RE} from './metadata.js'
import type {ArchiveSink} from './reader.js'
import {BLOCK, isZeroBlock, paddingFor, parseHeader, TarHeader} from './tar.js'

/**
 * The blob entries read front to back (a sink to feed, a pipe, or where the positional walk
 * stopped): each header checked against the signed list, each blob's bytes verified on the way,
 * then the end-of-archive marker and the zero padding after it.
 */

/** Where the blob entries stand: what has been read and checked so far. */
export interface BlobState {
  /** Entries read so far (messages name entries by their number). */
  index: number
  seen: Set<string>
  prevHex: string
}

export interface BlobContext {
  /** hex → signed size, in archive order. */
  blobs: Map<string, number>
  manifests: Map<string, ManifestWant>
  locations: Map<string, EntryLocation>
  sink?: ArchiveSink
  hasher?: WorkerHasher
}

/** The untrusted bytes of one entry's data, then its padding checked. */
async function* entryBytes(reader: SequentialReader, size: number, entry: string): AsyncGenerator<Buffer> {
  let left = size
  while (left > 0) {
    const b = await reader.readSome(Math.min(left, READ_CHUNK))
    if (b.length === 0) fail('archive.truncated', entry, `archive is truncated inside this entry (${left} bytes missing)`)
    left -= b.length
    yield b
  }
  const pad = paddingFor(size)
  if (pad) await readPadding(reader, pad, entry)
}

/** How a blob entry that is not what the signed checksums say is reported. */
function entryFailures(entry: string, size: number, hasher?: WorkerHasher): VerifyHow {
  return {
    hashJob: hasher?.job(),
    fail: (fault, seen, hex) => fault === 'digest'
      ? fail('archive.digest_mismatch', entry, `content does not match its signed sha256 (got ${hex})`)
      : fail('archive.truncated', entry, `archive is truncated inside this entry (${size - seen} bytes missing)`),
  }
}

/** The next blob header, checked against the signed list; undefined at the end-of-archive marker. */
async function nextBlobHeader(reader: SequentialReader, st: BlobState, ctx: BlobContext): Promise<{h: TarHeader; hex: string; size: number} | undefined> {
  const block = await reader.readExact(BLOCK, st.index === 0 ? 'archive header' : `header of entry #${st.index + 1}`)
  if (isZeroBlock(block)) return undefined
  st.index++
  const h = parseHeader(block, st.index)
  const m = BLOB_NAME_RE.exec(h.name)
  if (!m) fail('archive.unexpected_entry', h.name.slice(0, 200), describeName(h.name))
  const hex = m[1]
  if (st.seen.has(hex)) fail('archive.duplicate_entry', h.name, 'appears twice')
  const size = ctx.blobs.get(hex)
  if (size === undefined) fail('archive.unexpected_entry', h.name, 'is not listed in the signed checksums.sha256')
  if (hex < st.prevHex) fail('archive.bad_order', h.name, 'blobs are not in sorted order')
  if (h.size !== size) fail('archive.size_mismatch', h.name, `is ${h.size} bytes, the signed metadata says ${size}`)
  st.seen.add(hex)
  ctx.locations.set(h.name, {offset: reader.position, size: h.size})
  st.prevHex = hex
  return {h, hex, size}
}

/** One blob's bytes, verified, to the sink (or only verified when there is none). */
async function feedBlob(reader: SequentialReader, name: string, hex: string, size: number, ctx: BlobContext): Promise<void> {
  const {sink, hasher} = ctx
  const digest = `sha256:${hex}`
  const want = {digest, size}
  const untrusted = entryBytes(reader, size, name)
  const manifest = ctx.manifests.get(digest)
  if (manifest) {
    // A manifest is read whole and its content checked before a sink sees it.
    if (size > MAX_MANIFEST_BYTES) fail('archive.entry_too_large', name, 'manifest is larger than 4 MiB')
    const chunks: Buffer[] = []
    for await (const c of verifiedChunks(untrusted, want, entryFailures(name, size, hasher))) chunks.push(c)
    const data = Buffer.concat(chunks)
    checkManifestContent(digest, data, manifest)
    if (sink?.blob) await sink.blob(digest, size, (async function* () { yield data })())
  } else if (sink?.blob) {
    // A chunk the sink is done with is read into again, once the hashing thread has hashed it too.
    const recycle = (chunk: Buffer) => hasher ? hasher.afterHashed(chunk, () => reader.recycleWhole(chunk)) : reader.recycleWhole(chunk)
    const verified = verifiedChunks(untrusted, want, entryFailures(name, size, hasher))
    await sink.blob(digest, size, verified, recycle)
    // A sink that skipped this blob (e.g. --only, or already on the target): still verify it.
    // The sink never saw these chunks: their memory is free as soon as they are hashed.
    for await (const c of verified) recycle(c)
  } else {
    // Only verified: hashed here, each whole read buffer reused once hashed.
    await checkChunks(untrusted, want, {...entryFailures(name, size), done: (c) => reader.recycleWhole(c)})
  }
}

/**
 * The blob entries from the reader's position on, one after the other, then the end-of-archive
 * marker and the zero padding after it. With a sink, each verified blob is streamed to it.
 */
export async function readBlobsSequentially(reader: SequentialReader, st: BlobState, ctx: BlobContext): Promise<void> {
  for (;;) {
    const next = await nextBlobHeader(reader, st, ctx)
    if (!next) break
    await feedBlob(reader, next.h.name, next.hex, next.size, ctx)
  }
  for (const hex of ctx.blobs.keys()) {
    if (!st.seen.has(hex)) fail('archive.missing_entry', `blobs/sha256/${hex}`, 'is listed in the signed checksums.sha256 but missing from the archive')
  }
  await readTrailer(reader)
}

/** After the end-of-archive marker's first block: its second one, then only zero padding. */
async function readTrailer(reader: SequentialReader): Promise<void> {
  const rest = await reader.readExact(BLOCK, 'end-of-archive marker')
  if (!isZeroBlock(rest)) fail('archive.bad_trailer', 'end-of-archive marker', 'is not two zero blocks')
  for (;;) {
    const b = await reader.readSome(READ_CHUNK)
    if (b.length === 0) break
    if (!isZeroBlock(b)) fail('archive.trailing_data', 'end of archive', `unexpected data after the end-of-archive marker (at byte ${reader.position - b.length})`)
  }
}
