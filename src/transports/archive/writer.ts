import {open, rename, rm, unlink} from 'node:fs/promises'
import type {FileHandle} from 'node:fs/promises'

import type * as openpgp from 'openpgp'

import {AirlockError, InputError} from '../../core/errors.js'
import {COPY_CHUNK} from '../../blob/sizes.js'
import {verifiedChunks} from '../../blob/verified.js'
import {fsError} from '../../core/fs-errors.js'
import {blobPath} from '../../core/model.js'
import {signDetached} from '../../sign/signature.js'
import {describeKey} from '../../sign/keys.js'
import {
  AirlockMetadata, buildChecksums, buildDockerManifestJson, buildIndexJson, ENTRY, fileHashes,
  OCI_LAYOUT_CONTENT, signatureSlot, stableJson,
} from './metadata.js'
import {BLOCK, encodeHeader, paddingFor} from './tar.js'

/**
 * The archive is written positionally: its whole layout (every header and every blob's offset)
 * follows from the signed metadata, which is complete before any blob moves. So the file is
 * laid out up front and each blob is written once, straight to its place, by whoever has its
 * bytes (a download, the blob cache, memory), in any order. Everything goes to `NAME.partial`
 * (or `NAME.NNN.partial` parts) and is renamed only after all of it is written and synced.
 */

export interface BlobFile {
  digest: string
  size: number
  /** A file holding the blob (e.g. the blob cache). Re-hashed while it is copied. */
  path: string
}

export interface WriteResult {
  /** The archive, or its first part. */
  path: string
  /** Every file written: the archive, or its parts in order. */
  files: string[]
  bytes: number
  signer?: {fingerprint: string; userId?: string}
  blobs: number
}

/** Where one blob goes. */
export interface PlannedBlob {
  digest: string
  size: number
  headerOffset: number
  dataOffset: number
}

export interface ArchivePlan {
  /** Bytes [0, head.length): the metadata entries, from airlock.json to manifest.json. */
  head: Buffer
  /** In archive (digest) order. */
  blobs: PlannedBlob[]
  /** Total archive size, including the two zero blocks at the end. */
  total: number
  partSize?: number
  mtime: number
  signer?: {fingerprint: string; userId?: string}
}

const ZERO = Buffer.alloc(BLOCK * 2)
const SYNC_EVERY = 64 * 1024 * 1024
/** At most this many part files open at once (a split archive may have thousands of parts). */
const MAX_OPEN_PARTS = 16

/** Name of part `i` of a split archive: NAME.000, NAME.001, … */
export function partName(outPath: string, i: number): string {
  return `${outPath}.${String(i).padStart(3, '0')}`
}

function entryBytes(name: string, data: Buffer, mtime: number): Buffer[] {
  const pad = paddingFor(data.length)
  return [encodeHeader(name, data.length, mtime), data, ...(pad ? [ZERO.subarray(0, pad)] : [])]
}

/** Sign the metadata and lay the archive out (docs/format.md): nothing is written yet. */
export async function planArchive(opts: {
  metadata: AirlockMetadata
  blobs: {digest: string; size: number}[]
  signingKey?: openpgp.PrivateKey
  epoch: number
  partSize?: number
}): Promise<ArchivePlan> {
  const {metadata, signingKey, epoch} = opts
  const blobs = [...opts.blobs].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
  for (let i = 1; i < blobs.length; i++) {
    if (blobs[i].digest === blobs[i - 1].digest) throw new Error(`duplicate blob ${blobs[i].digest}`)
  }
  const meta = stableJson(metadata)
  const index = buildIndexJson(metadata.images)
  const dockerManifest = buildDockerManifestJson(metadata.images)
  const checksums = buildChecksums(fileHashes(meta, index, dockerManifest, blobs.map((b) => b.digest)))
  const signature = signingKey ? signatureSlot(await signDetached(checksums, signingKey, new Date(epoch * 1000))) : undefined
  const signed = [
    ...entryBytes(ENTRY.METADATA, meta, epoch),
    ...entryBytes(ENTRY.CHECKSUMS, checksums, epoch),
    ...(signature ? entryBytes(ENTRY.SIGNATURE, signature, epoch) : []),
  ]
  const signedBytes = signed.reduce((a, b) => a + b.length, 0)
  if (opts.partSize && signedBytes + 1 > opts.partSize) {
    throw new InputError('create.split_too_small', `--split ${opts.partSize}: the first part must hold the signed metadata (${signedBytes} bytes); use a larger size`)
  }
  const head = Buffer.concat([
    ...signed,
    ...entryBytes(ENTRY.OCI_LAYOUT, OCI_LAYOUT_CONTENT, epoch),
    ...entryBytes(ENTRY.INDEX, index, epoch),
    ...entryBytes(ENTRY.DOCKER_MANIFEST, dockerManifest, epoch),
  ])
  let at = head.length
  const planned = blobs.map((b) => {
    const p = {digest: b.digest, size: b.size, headerOffset: at, dataOffset: at + BLOCK}
    at += BLOCK + b.size + paddingFor(b.size)
    return p
  })
  const k = signingKey ? describeKey(signingKey) : undefined
  return {
    head, blobs: planned, total: at + ZERO.length, mtime: epoch,
    ...(opts.partSize ? {partSize: opts.partSize} : {}),
    ...(k ? {signer: {fingerprint: k.fingerprint, userId: k.userIds[0]}} : {}),
  }
}

/** The final names of a plan's files: the archive, or its parts in order. */
export function archiveFiles(outPath: string, total: number, partSize?: number): string[] {
  if (!partSize) return [outPath]
  const n = Math.max(1, Math.ceil(total / partSize))
  return Array.from({length: n}, (_, i) => partName(outPath, i))
}

interface Part {
  index: number
  start: number
  size: number
  fh?: FileHandle
  busy: number
  unsynced: number
  lastUse: number
}

/**
 * Positional reads and writes over the `.partial` file(s) of an archive: one file, or parts of
 * exactly `partSize` bytes (the last one shorter) whose concatenation is the archive.
 */
export class ArchiveFile {
  readonly files: string[]
  private readonly parts: Part[]
  private open = 0
  private clock = 0
  private unsynced = 0
  private syncing?: Promise<void>
  private closed = false

  private constructor(readonly outPath: string, readonly total: number, readonly partSize?: number) {
    this.files = archiveFiles(outPath, total, partSize).map((f) => `${f}.partial`)
    this.parts = this.files.map((_, i) => {
      const start = partSize ? i * partSize : 0
      return {index: i, start, size: partSize ? Math.min(partSize, total - start) : total, busy: 0, unsynced: 0, lastUse: 0}
    })
  }

  /**
   * Open the `.partial` file(s) for `total` bytes: new and empty (holes read as zeros), or with
   * `keep`, the existing files of an interrupted run of the same layout, kept as they are.
   */
  static async create(outPath: string, total: number, partSize?: number, keep = false): Promise<ArchiveFile> {
    const f = new ArchiveFile(outPath, total, partSize)
    try {
      for (const p of f.parts) {
        const fh = await open(f.files[p.index], keep ? 'r+' : 'w', 0o644)
        try {
          await fh.truncate(p.size)
        } finally {
          await fh.close()
        }
      }
    } catch (error) {
      await f.discard()
      throw error
    }
    return f
  }

  private async handle(p: Part): Promise<FileHandle> {
    p.lastUse = ++this.clock
    if (p.fh) return p.fh
    if (this.open >= MAX_OPEN_PARTS) {
      const idle = this.parts.filter((x) => x.fh && x.busy === 0 && x !== p).sort((a, b) => a.lastUse - b.lastUse)[0]
      if (idle) {
        const fh = idle.fh!
        idle.fh = undefined
        this.open--
        if (idle.unsynced > 0) await fh.datasync()
        idle.unsynced = 0
        await fh.close()
      }
    }
    if (p.fh) return p.fh
    p.fh = await open(this.files[p.index], 'r+')
    this.open++
    return p.fh
  }

  /** Run `fn` on every part slice of [offset, offset+length). */
  private async each(offset: number, length: number, fn: (fh: FileHandle, pos: number, from: number, n: number) => Promise<void>): Promise<void> {
    if (offset < 0 || offset + length > this.total) throw new Error(`archive write outside the layout: ${offset}+${length} of ${this.total}`)
    let done = 0
    while (done < length) {
      const at = offset + done
      const p = this.partSize ? this.parts[Math.floor(at / this.partSize)] : this.parts[0]
      const n = Math.min(length - done, p.start + p.size - at)
      p.busy++
      try {
        const fh = await this.handle(p)
        await fn(fh, at - p.start, done, n)
      } finally {
        p.busy--
      }
      p.unsynced += n
      done += n
    }
  }

  /** Write `bufs` (in order) at `offset`. */
  async write(bufs: Buffer[], offset: number): Promise<void> {
    const length = bufs.reduce((a, b) => a + b.length, 0)
    const p = this.partSize ? this.parts[Math.floor(offset / this.partSize)] : this.parts[0]
    if (bufs.length > 1 && offset + length <= p.start + p.size && offset >= 0) {
      // Within one file: hand the chunks to the kernel as they are (no copy).
      await this.each(offset, length, async (fh, pos) => {
        const {bytesWritten} = await fh.writev(bufs, pos)
        if (bytesWritten < length) {
          const rest = Buffer.concat(bufs, length).subarray(bytesWritten)
          let w = 0
          while (w < rest.length) {
            w += (await fh.write(rest, w, rest.length - w, pos + bytesWritten + w)).bytesWritten
          }
        }
      })
      this.afterWrite(length)
      return
    }
    const data = bufs.length === 1 ? bufs[0] : Buffer.concat(bufs, length)
    await this.each(offset, length, async (fh, pos, from, n) => {
      let w = 0
      while (w < n) {
        const {bytesWritten} = await fh.write(data, from + w, n - w, pos + w)
        w += bytesWritten
      }
    })
    this.afterWrite(length)
  }

  private afterWrite(length: number): void {
    this.unsynced += length
    // Flush to disk in the background as the archive fills, so the sync before the rename is short.
    if (this.unsynced >= SYNC_EVERY && !this.syncing) {
      this.unsynced = 0
      this.syncing = this.syncOpen().catch(() => {}).finally(() => { this.syncing = undefined })
    }
  }

  /** Read exactly `buf.length` bytes at `offset` (from what this or an earlier run wrote). */
  async read(buf: Buffer, offset: number): Promise<void> {
    await this.each(offset, buf.length, async (fh, pos, from, n) => {
      let r = 0
      while (r < n) {
        const {bytesRead} = await fh.read(buf, from + r, n - r, pos + r)
        if (bytesRead === 0) throw new Error(`short read in ${this.files[0]}`)
        r += bytesRead
      }
    })
  }

  private async syncOpen(): Promise<void> {
    for (const p of this.parts) {
      if (p.fh && p.unsynced > 0) {
        p.unsynced = 0
        await p.fh.datasync()
      }
    }
  }

  private async closeAll(sync: boolean): Promise<void> {
    await this.syncing
    for (const p of this.parts) {
      if (sync && (p.unsynced > 0 || p.fh)) {
        const fh = await this.handle(p)
        await fh.sync()
      }
      if (p.fh) {
        const fh = p.fh
        p.fh = undefined
        this.open--
        await fh.close().catch(() => {})
      }
    }
  }

  /** Sync every file and rename it to its final name. Returns the final names. */
  async commit(): Promise<string[]> {
    await this.closeAll(true)
    this.closed = true
    const finals: string[] = []
    for (const f of this.files) {
      const final = f.slice(0, -'.partial'.length)
      await rename(f, final)
      finals.push(final)
    }
    return finals
  }

  /** Close without syncing, keeping the files (an interrupted run to resume). */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.closeAll(false)
  }

  /** Close and remove the `.partial` files. */
  async discard(): Promise<void> {
    await this.close()
    await Promise.all(this.files.map((f) => rm(f, {force: true})))
  }
}

/** Write the head, every blob header, and zeros over every padding and the end blocks. */
export async function writeLayout(file: ArchiveFile, plan: ArchivePlan): Promise<void> {
  await file.write([plan.head], 0)
  for (const b of plan.blobs) {
    const pad = paddingFor(b.size)
    await file.write([encodeHeader(blobPath(b.digest), b.size, plan.mtime)], b.headerOffset)
    if (pad) await file.write([ZERO.subarray(0, pad)], b.dataOffset + b.size)
  }
  await file.write([ZERO], plan.total - ZERO.length)
}

/** The chunks of an open file from where it stands, read into one reused buffer (each is consumed before the next read). */
async function* fileChunks(fh: FileHandle): AsyncGenerator<Buffer> {
  const buf = Buffer.allocUnsafe(COPY_CHUNK)
  for (;;) {
    const {bytesRead} = await fh.read(buf, 0, COPY_CHUNK, null)
    if (bytesRead === 0) return
    yield buf.subarray(0, bytesRead)
  }
}

/**
 * Copy a blob from a file into its place, hashing it on the way. A file whose bytes do not
 * match is removed (a bad cache entry) and reported.
 */
export async function copyBlobFile(file: ArchiveFile, b: PlannedBlob, src: string): Promise<void> {
  const fh = await open(src, 'r')
  let corrupt: AirlockError | undefined
  try {
    const verified = verifiedChunks(fileChunks(fh), b, {
      fail: (_fault, seen, hex) => corrupt = new AirlockError('cache.corrupt', `cached blob ${b.digest} is corrupt (got ${seen} bytes, sha256:${hex}); it was removed from the cache, run again`),
    })
    let at = 0
    for await (const c of verified) {
      await file.write([c], b.dataOffset + at)
      at += c.length
    }
  } catch (error) {
    if (error !== corrupt) throw error
  } finally {
    await fh.close()
  }
  if (corrupt) {
    await unlink(src).catch(() => {})
    throw corrupt
  }
}

/**
 * Write an archive in format v1 (docs/format.md) to `outPath` from blob files, through
 * `outPath.partial` which is renamed only once everything is written and synced.
 */
export async function writeArchive(outPath: string, opts: {
  metadata: AirlockMetadata
  blobs: BlobFile[]
  signingKey?: openpgp.PrivateKey
  epoch: number
  /** Split into parts of at most this many bytes (NAME.000, NAME.001, …). */
  partSize?: number
}): Promise<WriteResult> {
  const plan = await planArchive({...opts, blobs: opts.blobs})
  const byDigest = new Map(opts.blobs.map((b) => [b.digest, b]))
  let file: ArchiveFile | undefined
  let ok = false
  try {
    file = await ArchiveFile.create(outPath, plan.total, plan.partSize)
    await writeLayout(file, plan)
    for (const b of plan.blobs) {
      await copyBlobFile(file, b, byDigest.get(b.digest)!.path)
    }
    const files = await file.commit()
    ok = true
    return {path: files[0], files, bytes: plan.total, blobs: plan.blobs.length, ...(plan.signer ? {signer: plan.signer} : {})}
  } catch (error) {
    throw fsError(error, `archive ${outPath}`)
  } finally {
    if (!ok) await file?.discard()
  }
}
