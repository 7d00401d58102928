import {statSync} from 'node:fs'

import type * as openpgp from 'openpgp'

import {VerifyError} from '../../core/errors.js'
import {HashJobs, hashThreads} from '../../blob/hash-pool.js'
import {MultiFile, STDIN} from '../../blob/multi-file.js'
import {SequentialReader} from '../../blob/sequential.js'
import {HASH_CHUNK, HEAD_CHUNK} from '../../blob/sizes.js'
import {WorkerHasher} from '../../blob/worker-hasher.js'
import type {SignerInfo} from '../../sign/signature.js'
import {verifyBlobsPositional} from './blobs-positional.js'
import {BlobContext, BlobState, readBlobsSequentially} from './blobs-sequential.js'
import {locatePart} from './checks.js'
import {EntryLocation, HeadReader, readLayoutEntries, readSignedHead, SignedHead} from './head.js'
import {AirlockMetadata, ImageRecord} from './metadata.js'
import {EarlyHashing, speculate, takeOver} from './speculate.js'

/**
 * Reading an archive: the head (head.ts: signature, then the metadata entries), then the blobs,
 * either front to back (blobs-sequential.ts: a sink to feed, a pipe) or, for plain verify of
 * regular files, with positional reads on every core (blobs-positional.ts).
 */

export type {EntryLocation} from './head.js'
export type {EarlyHashing} from './speculate.js'

/** Everything known once the signature and the metadata entries have been checked. */
export interface VerifiedHead {
  metadata: AirlockMetadata
  signer?: SignerInfo
  /** Every distinct trusted key that signed. */
  signers: SignerInfo[]
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
  /** At least this many distinct trusted keys must have signed (default 1). */
  threshold?: number
  /**
   * Hashing the command started before calling (see startEarlyHashing): taken over when it was
   * started on exactly these parts, else stopped. Only plain verify (no sink) uses it.
   */
  early?: EarlyHashing
  /** Hashing threads, the main one included (default: the cores, at most 8). */
  hashThreads?: number
}

export interface VerifyReport {
  ok: true
  archive: string
  signed: boolean
  signer?: SignerInfo
  /** Every distinct trusted key that signed (a co-signed bundle has several). */
  signers?: SignerInfo[]
  bundle: AirlockMetadata['bundle']
  images: {name: string; ref: string; digest: string; platforms: string[]}[]
  entries: number
  blobs: number
  bytes: number
}

/** The open archive and the threads working on it, for one readArchive call. */
interface Opened {
  files: MultiFile
  reader: SequentialReader
  /** Plain verify: blobs are hashed with positional reads on this many threads. */
  positional: boolean
  threads: number
  jobs?: HashJobs
  hasher?: WorkerHasher
}

/**
 * Open the parts. Plain verification of a whole archive: positional reads, blobs hashed on every
 * core, starting (unless the command already started) while the keys are read and the signature
 * is checked; a pipe, a device or standard input is read front to back instead. Feeding a sink that hands chunks
 * back, the main thread reads and writes, and the blobs are hashed on a second thread.
 */
async function openArchive(parts: string[], opts: ReadOptions): Promise<Opened> {
  const {sink} = opts
  const positional = !sink && !opts.headOnly && parts.every(isRegularOrMissing)
  const threads = positional ? hashThreads(opts.hashThreads) : 1
  // Hashing the command started is used only where it would have been started here.
  const early = takeOver(opts.early, positional ? parts : [])
  let files = early?.files
  let jobs = early?.jobs
  let openError: unknown
  if (positional && !files) {
    try {
      files = MultiFile.openSync(parts)
      jobs = speculate(files, 0, threads - 1)
    } catch (error) {
      openError = error
    }
  }
  const hasher = sink?.releasesChunks && !opts.headOnly && hashThreads(opts.hashThreads) > 1 ? WorkerHasher.start() : undefined
  try {
    await opts.trustedKeys // a key error is reported before anything about the archive
    if (openError) throw openError as Error
    files ??= await MultiFile.open(parts)
    const reader = positional ? SequentialReader.at(files, 0, HEAD_CHUNK) : SequentialReader.stream(files, {shared: hasher !== undefined})
    return {files, reader, positional, threads, jobs, hasher}
  } catch (error) {
    await jobs?.close()
    await hasher?.close()
    await files?.close()
    throw error
  }
}

/** The blobs, from the end of the head to the end of the archive. */
async function readBlobs(o: Opened, st: BlobState, ctx: BlobContext, at: {position?: number}): Promise<void> {
  if (o.positional) {
    const resume = await verifyBlobsPositional(o.files, o.reader.position, st, ctx, o.jobs, o.threads, at)
    await o.jobs?.close()
    o.jobs = undefined
    o.reader = SequentialReader.at(o.files, resume, HASH_CHUNK)
    at.position = undefined
  }
  await readBlobsSequentially(o.reader, st, ctx)
}

/**
 * Verify an archive in ONE streaming pass and, when a sink is given, feed it the verified
 * content in the same pass. Throws VerifyError naming the entry and the reason; on any failure
 * the sink is aborted before the error propagates.
 */
export async function readArchive(parts: string[], opts: ReadOptions): Promise<VerifyReport & {head: VerifiedHead}> {
  const {sink} = opts
  const o = await openArchive(parts, opts)
  const trustedKeys = await opts.trustedKeys
  const partSizes = o.files.sizes
  const at: {position?: number} = {}
  let began = false
  try {
    const headReader = new HeadReader(o.reader)
    const signed = await readSignedHead(headReader, {trustedKeys, allowUnsigned: opts.allowUnsigned, now: opts.now, checkExpiry: opts.checkExpiry, threshold: opts.threshold, parts, partSizes})
    const {locations} = headReader
    if (opts.headOnly) {
      const head = {metadata: signed.metadata, signer: signed.signer, signers: signed.signers, raw: signed.raw, blobs: new Map<string, number>(), locations}
      return {...report(parts, signed, headReader.index, 0, o.reader.position), head}
    }
    const {blobs, manifests} = await readLayoutEntries(headReader, signed)
    const head: VerifiedHead = {metadata: signed.metadata, signer: signed.signer, signers: signed.signers, raw: signed.raw, blobs, locations}
    began = true
    await sink?.begin?.(head)
    const st: BlobState = {index: headReader.index, seen: new Set(), prevHex: ''}
    await readBlobs(o, st, {blobs, manifests, locations, sink, hasher: o.hasher}, at)
    await sink?.commit?.(head)
    return {...report(parts, signed, st.index, st.seen.size, o.reader.position), head}
  } catch (error) {
    if (began || sink) await sink?.abort?.(error).catch(() => {})
    if (parts.length > 1 && error instanceof VerifyError) error.message += locatePart(parts, partSizes, at.position ?? o.reader.position)
    if (parts[0] === STDIN && error instanceof VerifyError && error.code === 'archive.truncated') error.message += ' (standard input ended before the archive did)'
    throw error
  } finally {
    await o.jobs?.close()
    await o.hasher?.close()
    await o.reader.close()
    await o.files.close()
  }
}

/** A regular file, or nothing there (then opening it reports the problem as usual); never standard input. */
function isRegularOrMissing(p: string): boolean {
  if (p === STDIN) return false
  try {
    return statSync(p).isFile()
  } catch {
    return true
  }
}

function report(parts: string[], signed: SignedHead, entries: number, blobs: number, bytes: number): VerifyReport {
  const {metadata, signer, signers} = signed
  return {
    ok: true,
    archive: parts[0],
    signed: signed.signed,
    ...(signer ? {signer, signers} : {}),
    bundle: metadata.bundle,
    images: metadata.images.map((i: ImageRecord) => ({name: i.name, ref: i.ref, digest: i.digest, platforms: i.platforms})),
    entries,
    blobs,
    bytes,
  }
}
