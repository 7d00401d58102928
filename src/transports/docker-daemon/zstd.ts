/**
 * zstd layers for a Docker Engine that cannot unpack them (20.10, the one Debian ships, fails
 * with "ApplyLayer ... unexpected EOF"): they are decompressed on the way, as gzip layers are
 * inflated (inflate.ts), with fzstd (pure JavaScript, ~80 MB/s of output on one core).
 *
 * A tar entry needs its size before its content, and a zstd frame need not say its content size
 * (nor is a layer one frame), so each zstd layer is kept, decompressed once it verified into a
 * file of a private directory, and that file goes into the load as the layer's entry at the
 * end, once the whole archive verified. dockerd then checks the
 * decompressed tar against the config's diff_id (the image ID stays the config digest).
 */
import {createReadStream} from 'node:fs'
import {mkdtemp, open, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {Decompress} from 'fzstd'

import {AirlockError} from '../../core/errors.js'

/** The first four bytes of a zstd frame. */
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd])

export function hasZstdMagic(head: Buffer): boolean {
  return head.length >= 4 && head.subarray(0, 4).equals(ZSTD_MAGIC)
}

/**
 * The first chunk of `data` (undefined when it is empty), and an iterable that yields that chunk
 * again and then the rest: a layer is sniffed without a second read.
 */
export async function peek(data: AsyncIterable<Buffer>): Promise<{first?: Buffer; all: AsyncIterable<Buffer>}> {
  const it = data[Symbol.asyncIterator]()
  const r = await it.next()
  const first = r.done ? undefined : r.value
  const all = {
    async* [Symbol.asyncIterator]() {
      if (r.done) return
      yield r.value
      for (;;) {
        const n = await it.next()
        if (n.done) return
        yield n.value
      }
    },
  }
  return {first, all}
}

export interface Decompressed {
  digest: string
  path: string
  size: number
}

/**
 * zstd layers, for the end of a load: each is written as it streams (and so verifies), and only
 * once it verified decompressed into a file of one private directory, in the background while
 * the rest of the archive streams. Decompressing only verified bytes: a frame header read by the
 * decompressor (its window size: what it allocates) is signed content, never an attacker's.
 */
export class ZstdSpool {
  private dir?: string
  private readonly pending: Promise<Decompressed>[] = []

  constructor(private readonly base = os.tmpdir()) {}

  /** Keep the verified stream `data` of zstd layer `digest`, and start decompressing it once verified. */
  async add(digest: string, data: AsyncIterable<Buffer>): Promise<void> {
    this.dir ??= await mkdtemp(path.join(this.base, 'airlock-zstd-'))
    const packed = path.join(this.dir, `${digest.slice(7)}.zst`)
    const fh = await open(packed, 'wx', 0o600)
    try {
      for await (const chunk of data) await fh.write(chunk)
    } finally {
      await fh.close()
    }
    const done = this.decompress(digest, packed, path.join(this.dir, digest.slice(7)))
    done.catch(() => {}) // awaited in layers()
    this.pending.push(done)
  }

  /** Every layer added, decompressed; an AirlockError naming zstd if one cannot be. */
  layers(): Promise<Decompressed[]> {
    return Promise.all(this.pending)
  }

  private async decompress(digest: string, packed: string, file: string): Promise<Decompressed> {
    const fh = await open(file, 'wx', 0o600)
    let size = 0
    try {
      let out: Uint8Array[] = []
      const z = new Decompress((chunk) => { if (chunk.length) out.push(chunk) })
      const flush = async () => {
        for (const c of out) {
          await fh.write(c)
          size += c.length
        }
        out = []
      }
      for await (const chunk of createReadStream(packed, {highWaterMark: 1024 * 1024})) {
        z.push(chunk as Buffer)
        await flush()
      }
      z.push(new Uint8Array(0), true)
      await flush()
    } catch (error) {
      throw new AirlockError('install.docker_failed', `layer ${digest} starts like zstd but cannot be decompressed: ${(error as Error).message}`, {cause: error})
    } finally {
      await fh.close()
      await rm(packed, {force: true})
    }
    return {digest, path: file, size}
  }

  /** The decompressed content of a layer. */
  static read(layer: Decompressed): AsyncIterable<Buffer> {
    return createReadStream(layer.path, {highWaterMark: 1024 * 1024})
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.pending)
    if (this.dir) await rm(this.dir, {recursive: true, force: true}).catch(() => {})
    this.dir = undefined
  }
}
