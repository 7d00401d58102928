import {createWriteStream} from 'node:fs'
import {mkdir, open, readdir, rename, rm, stat, writeFile} from 'node:fs/promises'
import type {FileHandle} from 'node:fs/promises'
import path from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {AirlockError} from '../core/errors.js'
import {sha256Digest} from '../core/digest.js'
import {fsError} from '../core/fs-errors.js'
import {hexOf} from '../core/model.js'
import {airlockRunning, processUniqueName} from '../core/process.js'

/**
 * The conventional cache location: `$XDG_CACHE_HOME/airlock`, else `~/.cache/airlock`. The caller
 * (a command) passes what it read from the environment; library code reads none.
 */
export function defaultCacheDir(xdgCacheHome: string | undefined, homeDir: string): string {
  return path.join(xdgCacheHome || path.join(homeDir, '.cache'), 'airlock')
}

/** A cache entry being written: a temp file that becomes the entry on commit(). */
export interface CacheWriter {
  write(bufs: Buffer[]): Promise<void>
  commit(): Promise<void>
  abort(): Promise<void>
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

  /**
   * Remove temp files a killed run left behind (`tmp/HEX.PID.RAND` whose PID is no longer
   * running, or older than a day). Entries under `blobs/` are never partial: they appear only by
   * rename after their digest was verified. Returns how many files were removed.
   */
  async cleanStale(maxAgeMs = 24 * 3600 * 1000): Promise<number> {
    const dir = path.join(this.dir, 'tmp')
    let names: string[]
    try {
      names = await readdir(dir)
    } catch {
      return 0
    }
    let removed = 0
    for (const name of names) {
      const pid = Number(/^[a-f0-9]{64}\.(\d+)\.[a-f0-9]+$/.exec(name)?.[1] ?? Number.NaN)
      let stale = !Number.isSafeInteger(pid) || !airlockRunning(pid)
      if (!stale) {
        const st = await stat(path.join(dir, name)).catch(() => undefined)
        stale = st !== undefined && Date.now() - st.mtimeMs > maxAgeMs
      }
      if (stale && pid !== process.pid) {
        await rm(path.join(dir, name), {force: true}).catch(() => {})
        removed++
      }
    }
    return removed
  }

  private async tempFor(digest: string): Promise<string> {
    const dir = path.join(this.dir, 'tmp')
    try {
      await mkdir(dir, {recursive: true})
      await mkdir(path.dirname(this.path(digest)), {recursive: true})
    } catch (error) {
      throw fsError(error, `blob cache ${this.dir}`)
    }
    return path.join(dir, processUniqueName(hexOf(digest)))
  }

  /** `source` must be a stream that errors unless the bytes match digest and size. */
  async putStream(digest: string, source: Readable, onChunk?: (bytes: number) => void): Promise<void> {
    // The source may fail (bad bytes, network) while we still prepare the temp file: keep that
    // error instead of letting it escape as an unhandled 'error' event.
    let early: Error | undefined
    source.on('error', (e: Error) => {
      early ??= e
    })
    let tmp: string
    try {
      tmp = await this.tempFor(digest)
    } catch (error) {
      source.destroy()
      throw error
    }
    if (early) throw early
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
      throw fsError(error, `blob cache ${this.dir}`)
    }
  }

  /** A temp file for `digest` that becomes the cache entry on commit() (call only after the bytes were verified). */
  async writer(digest: string): Promise<CacheWriter> {
    const tmp = await this.tempFor(digest)
    let fh: FileHandle
    try {
      fh = await open(tmp, 'w')
    } catch (error) {
      throw fsError(error, `blob cache ${this.dir}`)
    }
    let closed = false
    const close = async () => {
      if (!closed) {
        closed = true
        await fh.close()
      }
    }
    return {
      write: async (bufs) => {
        try {
          const n = bufs.reduce((a, b) => a + b.length, 0)
          let w = (await fh.writev(bufs)).bytesWritten
          if (w < n) {
            const rest = Buffer.concat(bufs, n)
            while (w < n) w += (await fh.write(rest, w, n - w)).bytesWritten
          }
        } catch (error) {
          throw fsError(error, `blob cache ${this.dir}`)
        }
      },
      commit: async () => {
        try {
          await close()
          await rename(tmp, this.path(digest))
        } catch (error) {
          await rm(tmp, {force: true})
          throw fsError(error, `blob cache ${this.dir}`)
        }
      },
      abort: async () => {
        await close().catch(() => {})
        await rm(tmp, {force: true})
      },
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
      throw fsError(error, `blob cache ${this.dir}`)
    }
  }
}
