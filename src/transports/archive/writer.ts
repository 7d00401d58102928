import {createHash, Hash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {open, rename, rm, unlink} from 'node:fs/promises'

import type * as openpgp from 'openpgp'

import {AirlockError} from '../../core/errors.js'
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
}

export interface WriteResult {
  path: string
  bytes: number
  sha256: string
  signer?: {fingerprint: string; userId?: string}
  blobs: number
}

const ZERO = Buffer.alloc(BLOCK * 2)
const CHUNK = 1024 * 1024

class Out {
  bytes = 0
  readonly hash: Hash = createHash('sha256')
  private pending: Buffer[] = []
  private pendingBytes = 0
  constructor(private fh: import('node:fs/promises').FileHandle) {}

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
      // eslint-disable-next-line no-await-in-loop
      const {bytesWritten} = await this.fh.write(data, off, data.length - off)
      off += bytesWritten
    }
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
  const h = createHash('sha256')
  let n = 0
  for await (const chunk of createReadStream(blob.path, {highWaterMark: CHUNK})) {
    const b = chunk as Buffer
    h.update(b)
    n += b.length
    // eslint-disable-next-line no-await-in-loop
    await out.write(b)
  }
  const got = `sha256:${h.digest('hex')}`
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

  const partial = `${outPath}.partial`
  const fh = await open(partial, 'w', 0o644)
  let ok = false
  try {
    const out = new Out(fh)
    await writeEntry(out, ENTRY.METADATA, meta, epoch)
    await writeEntry(out, ENTRY.CHECKSUMS, checksums, epoch)
    if (signature) await writeEntry(out, ENTRY.SIGNATURE, signature, epoch)
    await writeEntry(out, ENTRY.OCI_LAYOUT, OCI_LAYOUT_CONTENT, epoch)
    await writeEntry(out, ENTRY.INDEX, index, epoch)
    await writeEntry(out, ENTRY.DOCKER_MANIFEST, dockerManifest, epoch)
    for (const b of blobs) {
      // eslint-disable-next-line no-await-in-loop
      await copyBlob(out, b, epoch)
    }
    await out.write(ZERO)
    await out.flush()
    await fh.sync()
    await fh.close()
    await rename(partial, outPath)
    ok = true
    const signer = signingKey ? describeKey(signingKey) : undefined
    return {
      path: outPath,
      bytes: out.bytes,
      sha256: out.hash.digest('hex'),
      blobs: blobs.length,
      ...(signer ? {signer: {fingerprint: signer.fingerprint, userId: signer.userIds[0]}} : {}),
    }
  } finally {
    if (!ok) {
      await fh.close().catch(() => {})
      await rm(partial, {force: true})
    }
  }
}
