import {createHash, Hash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {open, rename, rm, unlink} from 'node:fs/promises'
import type {FileHandle} from 'node:fs/promises'

import type * as openpgp from 'openpgp'

import {AirlockError, InputError} from '../../core/errors.js'
import {fsError} from '../../core/fs-errors.js'
import {blobPath} from '../../core/model.js'
import {signDetached} from '../../sign/signature.js'
import {describeKey} from '../../sign/keys.js'
import {
  AirlockMetadata, buildChecksums, buildDockerManifestJson, buildIndexJson, ENTRY, fileHashes,
  OCI_LAYOUT_CONTENT, stableJson,
} from './metadata.js'
import {BLOCK, encodeHeader, paddingFor} from './tar.js'

export interface BlobFile {
  digest: string
  size: number
  /** A file holding the blob (the content-addressed cache). Re-hashed while it is copied. */
  path: string
  /** Its content was checked against the digest by this process (pulled just now): only the size is re-checked. */
  verified?: boolean
  /** Settles when the file is complete (a download still under way); a rejection aborts the write. */
  ready?: Promise<unknown>
}

export interface WriteResult {
  /** The archive, or its first part. */
  path: string
  /** Every file written: the archive, or its parts in order. */
  files: string[]
  bytes: number
  sha256: string
  signer?: {fingerprint: string; userId?: string}
  blobs: number
}

const ZERO = Buffer.alloc(BLOCK * 2)
const CHUNK = 1024 * 1024
const SYNC_EVERY = 64 * 1024 * 1024

/** Name of part `i` of a split archive: NAME.000, NAME.001, … */
export function partName(outPath: string, i: number): string {
  return `${outPath}.${String(i).padStart(3, '0')}`
}

/**
 * The archive's byte sink: one file, or (split) consecutive parts of at most `partSize` bytes cut
 * at arbitrary byte boundaries, so that `cat` of the parts is the single archive. Every file is
 * written under a `.partial` name and renamed only by commit().
 */
class Out {
  bytes = 0
  readonly hash: Hash = createHash('sha256')
  readonly files: string[] = []
  private pending: Buffer[] = []
  private pendingBytes = 0
  private fh?: FileHandle
  private partBytes = 0
  /**
   * Written data is flushed to disk in the background as the archive grows (one datasync at a
   * time), so the final sync before the rename has little left to do.
   */
  private syncing?: Promise<void>
  private unsynced = 0

  constructor(private readonly outPath: string, private readonly partSize?: number) {}

  private finalName(i: number): string {
    return this.partSize ? partName(this.outPath, i) : this.outPath
  }

  private async nextFile(): Promise<void> {
    if (this.fh) {
      await this.syncing
      await this.fh.sync()
      await this.fh.close()
    }
    const name = `${this.finalName(this.files.length)}.partial`
    this.fh = await open(name, 'w', 0o644)
    this.files.push(name)
    this.partBytes = 0
  }

  async write(buf: Buffer): Promise<void> {
    this.hash.update(buf)
    this.bytes += buf.length
    this.pending.push(buf)
    this.pendingBytes += buf.length
    if (this.pendingBytes >= CHUNK) await this.flush()
  }

  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return
    const data = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending)
    this.pending = []
    this.pendingBytes = 0
    let off = 0
    while (off < data.length) {
      if (!this.fh || (this.partSize && this.partBytes >= this.partSize)) {
        // eslint-disable-next-line no-await-in-loop
        await this.nextFile()
      }
      const room = this.partSize ? this.partSize - this.partBytes : data.length - off
      const n = Math.min(room, data.length - off)
      // eslint-disable-next-line no-await-in-loop
      const {bytesWritten} = await this.fh!.write(data, off, n)
      off += bytesWritten
      this.partBytes += bytesWritten
      this.unsynced += bytesWritten
    }
    if (this.unsynced >= SYNC_EVERY && !this.syncing) {
      this.unsynced = 0
      const fh = this.fh!
      this.syncing = fh.datasync().catch(() => {}).finally(() => { this.syncing = undefined })
    }
  }

  /** Flush, sync and rename every part to its final name. */
  async commit(): Promise<string[]> {
    await this.flush()
    if (!this.fh) await this.nextFile()
    await this.syncing
    await this.fh!.sync()
    await this.fh!.close()
    this.fh = undefined
    const finals: string[] = []
    for (const [i, f] of this.files.entries()) {
      const final = this.finalName(i)
      // eslint-disable-next-line no-await-in-loop
      await rename(f, final)
      finals.push(final)
    }
    return finals
  }

  async discard(): Promise<void> {
    await this.syncing
    await this.fh?.close().catch(() => {})
    this.fh = undefined
    await Promise.all(this.files.map((f) => rm(f, {force: true})))
  }
}

async function writeEntry(out: Out, name: string, data: Buffer, mtime: number): Promise<void> {
  await out.write(encodeHeader(name, data.length, mtime))
  await out.write(data)
  const pad = paddingFor(data.length)
  if (pad) await out.write(ZERO.subarray(0, pad))
}

async function copyBlob(out: Out, blob: BlobFile, mtime: number): Promise<void> {
  await out.write(encodeHeader(blobPath(blob.digest), blob.size, mtime))
  const h = blob.verified ? undefined : createHash('sha256')
  let n = 0
  for await (const chunk of createReadStream(blob.path, {highWaterMark: CHUNK})) {
    const b = chunk as Buffer
    h?.update(b)
    n += b.length
    // eslint-disable-next-line no-await-in-loop
    await out.write(b)
  }
  const got = h ? `sha256:${h.digest('hex')}` : blob.digest
  if (got !== blob.digest || n !== blob.size) {
    // A cache entry went bad on disk: drop it so that the next run fetches it again.
    await unlink(blob.path).catch(() => {})
    throw new AirlockError('cache.corrupt', `cached blob ${blob.digest} is corrupt (got ${n} bytes, ${got}); it was removed from the cache, run again`)
  }
  const pad = paddingFor(blob.size)
  if (pad) await out.write(ZERO.subarray(0, pad))
}

/**
 * Write an archive in format v1 (docs/format.md) to `outPath`, through `outPath.partial`
 * which is renamed only once everything is written and synced.
 */
export async function writeArchive(outPath: string, opts: {
  metadata: AirlockMetadata
  blobs: BlobFile[]
  signingKey?: openpgp.PrivateKey
  epoch: number
  /** Split into parts of at most this many bytes (NAME.000, NAME.001, …). */
  partSize?: number
}): Promise<WriteResult> {
  const {metadata, signingKey, epoch} = opts
  const blobs = [...opts.blobs].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
  for (let i = 1; i < blobs.length; i++) {
    if (blobs[i].digest === blobs[i - 1].digest) throw new Error(`duplicate blob ${blobs[i].digest}`)
  }
  const meta = stableJson(metadata)
  const index = buildIndexJson(metadata.images)
  const dockerManifest = buildDockerManifestJson(metadata.images)
  const checksums = buildChecksums(fileHashes(meta, index, dockerManifest, blobs.map((b) => b.digest)))
  const signature = signingKey ? Buffer.from(await signDetached(checksums, signingKey, new Date(epoch * 1000))) : undefined

  const out = new Out(outPath, opts.partSize)
  let ok = false
  try {
    await writeEntry(out, ENTRY.METADATA, meta, epoch)
    await writeEntry(out, ENTRY.CHECKSUMS, checksums, epoch)
    if (signature) await writeEntry(out, ENTRY.SIGNATURE, signature, epoch)
    if (opts.partSize && out.bytes + 1 > opts.partSize) {
      throw new InputError('create.split_too_small', `--split ${opts.partSize}: the first part must hold the signed metadata (${out.bytes} bytes); use a larger size`)
    }
    await writeEntry(out, ENTRY.OCI_LAYOUT, OCI_LAYOUT_CONTENT, epoch)
    await writeEntry(out, ENTRY.INDEX, index, epoch)
    await writeEntry(out, ENTRY.DOCKER_MANIFEST, dockerManifest, epoch)
    for (const b of blobs) {
      // eslint-disable-next-line no-await-in-loop
      // The blob may still be downloading: write in order as soon as it is in the cache.
      if (b.ready) await b.ready
      await copyBlob(out, b, epoch)
    }
    await out.write(ZERO)
    const files = await out.commit()
    ok = true
    const signer = signingKey ? describeKey(signingKey) : undefined
    return {
      path: files[0],
      files,
      bytes: out.bytes,
      sha256: out.hash.digest('hex'),
      blobs: blobs.length,
      ...(signer ? {signer: {fingerprint: signer.fingerprint, userId: signer.userIds[0]}} : {}),
    }
  } catch (error) {
    // Disk full, quota, read-only mount: one clear error (the .partial files are removed below).
    throw fsError(error, `archive ${outPath}`)
  } finally {
    if (!ok) await out.discard()
  }
}
