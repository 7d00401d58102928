import type {Readable} from 'node:stream'

import {AirlockError} from '../core/errors.js'
import {BlobSource, BlobTarget} from '../copy/source.js'
import type {ResolvedImage} from '../resolve/resolve.js'
import {WRITE_BATCH} from '../blob/sizes.js'
import type {Sources} from '../resolve/sources.js'
import type {Reference} from '../spec/types.js'
import type {PlannedBlob} from '../transports/archive/writer.js'

/** Manifests, indexes and configs already fetched (and verified) while resolving. */
export class MemorySource implements BlobSource {
  readonly origin = 'memory'
  readonly remote = false
  readonly fresh = true

  constructor(private readonly blobs: ReadonlyMap<string, Buffer>) {}

  /** Everything resolution left in memory: `small` (configs) and each image's manifests. */
  static fromResolved(small: ReadonlyMap<string, Buffer>, images: ResolvedImage[]): MemorySource {
    const blobs = new Map(small)
    for (const img of images) {
      blobs.set(img.top.digest, img.top.bytes)
      for (const ix of img.indexes) blobs.set(ix.digest, ix.bytes)
      for (const m of img.manifests) blobs.set(m.digest, m.bytes)
    }
    return new MemorySource(blobs)
  }

  async has(blob: PlannedBlob): Promise<boolean> {
    return this.blobs.get(blob.digest)?.length === blob.size
  }

  async provide(blob: PlannedBlob, target: BlobTarget): Promise<void> {
    await target.write([this.blobs.get(blob.digest)!], 0)
  }
}

/** The registry (mirrors first): each blob pulled as a stream that errors unless its digest matches. */
export class RegistrySource implements BlobSource {
  readonly origin = 'registry'
  readonly remote = true
  readonly fresh = true

  /** `refFor` names an image (repository) that holds the blob; `onBytes` sees every byte pulled. */
  /** `foreignUrls`: the URLs a foreign (non-distributable) layer names, to say so when the registry lacks it. */
  constructor(
    private readonly sources: Sources,
    private readonly refFor: (digest: string) => Reference,
    private readonly onBytes: (n: number) => void,
    private readonly foreignUrls?: (digest: string) => string[] | undefined,
  ) {}

  async has(): Promise<boolean> {
    return true
  }

  async provide(blob: PlannedBlob, target: BlobTarget): Promise<void> {
    const stream = await this.sources.openBlob(this.refFor(blob.digest), blob.digest, blob.size).catch((error: unknown) => {
      throw this.foreignUrls?.(blob.digest) && error instanceof AirlockError && error.code === 'registry.not_found' ? foreignLayerMissing(blob.digest, this.foreignUrls(blob.digest)!) : error
    })
    const n = await consume(stream, (bufs, at) => target.write(bufs, at), this.onBytes)
    if (n !== blob.size) throw new AirlockError('create.pull_failed', `blob ${blob.digest}: got ${n} of ${blob.size} bytes`)
  }
}

function foreignLayerMissing(digest: string, urls: string[]): AirlockError {
  return new AirlockError('registry.not_found', `foreign layer ${digest}: the registry does not have it; its manifest says to fetch it from ${urls.join(', ') || 'no URL'}, which airlock does not do (they are outside the registry, often under a licence). Hint: push the image once with its foreign layers included (dockerd's \`allow-nondistributable-artifacts\`, or \`crane copy --allow-nondistributable-artifacts\`) and bundle that copy`)
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
      if (bytes >= WRITE_BATCH) {
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
