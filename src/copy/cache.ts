import {randomBytes} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import {mkdir, rename, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {AirlockError} from '../core/errors.js'
import {sha256Digest} from '../core/digest.js'
import {hexOf} from '../core/model.js'

export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache')
  return path.join(base, 'airlock')
}

/**
 * Content-addressed blob cache. A blob is written to a temp file beside its final place and
 * renamed only after the producer's verified stream ended cleanly, so an interrupted run never
 * leaves a corrupt entry under a digest name.
 */
export class BlobCache {
  constructor(readonly dir: string) {}

  path(digest: string): string {
    return path.join(this.dir, 'blobs', 'sha256', hexOf(digest))
  }

  async has(digest: string, size: number): Promise<boolean> {
    try {
      const st = await stat(this.path(digest))
      return st.isFile() && st.size === size
    } catch {
      return false
    }
  }

  private async tempFor(digest: string): Promise<string> {
    const dir = path.join(this.dir, 'tmp')
    await mkdir(dir, {recursive: true})
    await mkdir(path.dirname(this.path(digest)), {recursive: true})
    return path.join(dir, `${hexOf(digest)}.${process.pid}.${randomBytes(4).toString('hex')}`)
  }

  /** `source` must be a stream that errors unless the bytes match digest and size. */
  async putStream(digest: string, source: Readable, onChunk?: (bytes: number) => void): Promise<void> {
    const tmp = await this.tempFor(digest)
    try {
      const count = async function* (src: AsyncIterable<Buffer>) {
        for await (const chunk of src) {
          onChunk?.(chunk.length)
          yield chunk
        }
      }
      await pipeline(source, count, createWriteStream(tmp, {highWaterMark: 1024 * 1024}))
      await rename(tmp, this.path(digest))
    } catch (error) {
      await rm(tmp, {force: true})
      throw error
    }
  }

  async putBytes(digest: string, data: Buffer): Promise<void> {
    if (sha256Digest(data) !== digest) throw new AirlockError('cache.digest_mismatch', `refusing to cache bytes that do not match ${digest}`)
    if (await this.has(digest, data.length)) return
    const tmp = await this.tempFor(digest)
    try {
      await writeFile(tmp, data)
      await rename(tmp, this.path(digest))
    } catch (error) {
      await rm(tmp, {force: true})
      throw error
    }
  }
}
