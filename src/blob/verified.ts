import {createHash, Hash} from 'node:crypto'

import type {HashJob} from './worker-hasher.js'

/**
 * THE verified-blob primitive. Untrusted bytes go in; they come out only as they are counted
 * against the expected size and hashed against the expected digest, and the last piece given out
 * is held back until the digest matched. So a consumer may see a prefix of a bad blob, never all
 * of it: it must commit nothing before the iteration ended without an error.
 */

export interface BlobWant {
  /** `sha256:HEX` */
  digest: string
  size: number
}

/**
 * What went wrong: `long` as soon as more than `size` bytes arrive (`seen` counts the chunk that
 * went over), `short` when the input ends after `seen` bytes, `digest` when all bytes are there
 * and hash to `hex`. `hex` is also given for `long` and `short` when hashing on this thread (the
 * digest of the bytes before the chunk that went over, or of all of them).
 */
export type BlobFault = 'long' | 'short' | 'digest'

export interface VerifyHow {
  /** The error to throw, in the caller's words (codes and messages belong to the caller). */
  fail(fault: BlobFault, seen: number, hex?: string): Error
  /** Hash through this job (on the hashing thread) instead of on this thread. */
  hashJob?: HashJob
  /** Give out only bytes [from, to) of the blob; all of it is still hashed and checked. */
  pick?: {from: number; to: number}
}

/** Size and digest checked on every byte; the hold-back rule for everything that passes on bytes. */
export class BlobCheck {
  /** Bytes counted so far. */
  seen = 0
  private readonly hash?: Hash
  private readonly from: number
  private readonly to: number
  private held?: Buffer

  constructor(readonly want: BlobWant, private readonly how: VerifyHow) {
    this.hash = how.hashJob ? undefined : createHash('sha256')
    this.from = how.pick?.from ?? 0
    this.to = how.pick?.to ?? want.size
  }

  /** All `size` bytes have arrived. */
  get complete(): boolean {
    return this.seen === this.want.size
  }

  /**
   * Count and hash the next untrusted chunk; throws at once when it goes past the size. A promise
   * when the hashing thread is too far behind: wait for it before reading on.
   */
  add(chunk: Buffer): Promise<void> | undefined {
    if (this.seen + chunk.length > this.want.size) {
      throw this.how.fail('long', this.seen + chunk.length, this.hash?.digest('hex'))
    }
    this.seen += chunk.length
    if (this.hash) {
      this.hash.update(chunk)
      return undefined
    }
    return this.how.hashJob!.update(chunk)
  }

  /**
   * What of the chunk just added may be given out now. The piece that reaches the end of what is
   * given out is the last one: it is held back, and end() gives it once the digest matched.
   */
  pass(chunk: Buffer): Buffer | undefined {
    const at = this.seen - chunk.length
    if (this.seen <= this.from || at >= this.to) return undefined
    const piece = at >= this.from && this.seen <= this.to ? chunk : chunk.subarray(Math.max(this.from - at, 0), Math.min(this.to, this.seen) - at)
    if (this.seen < this.to) return piece
    this.held = piece
    return undefined
  }

  /** At the end of the input: throws on missing bytes or another digest, else gives the piece held back. */
  async end(): Promise<Buffer | undefined> {
    if (this.hash) return this.endSync()
    if (this.seen < this.want.size) throw this.how.fail('short', this.seen)
    return this.settle(await this.how.hashJob!.hex())
  }

  /** end() when hashing on this thread. */
  endSync(): Buffer | undefined {
    const hex = this.hash!.digest('hex')
    if (this.seen < this.want.size) throw this.how.fail('short', this.seen, hex)
    return this.settle(hex)
  }

  private settle(hex: string): Buffer | undefined {
    if (`sha256:${hex}` !== this.want.digest) throw this.how.fail('digest', this.seen, hex)
    const held = this.held
    this.held = undefined
    return held
  }
}

/**
 * The chunks of `untrusted`, verified: see BlobCheck. A chunk passes as it is (no copy) unless
 * `pick` cuts it.
 */
export async function* verifiedChunks(untrusted: AsyncIterable<Buffer>, want: BlobWant, how: VerifyHow): AsyncGenerator<Buffer> {
  const check = new BlobCheck(want, how)
  for await (const chunk of untrusted) {
    const wait = check.add(chunk)
    if (wait) await wait
    const piece = check.pass(chunk)
    if (piece) yield piece
  }
  const last = await check.end()
  if (last) yield last
}

/**
 * Verify `untrusted` without passing it on (plain verify): hashed and checked as verifiedChunks
 * does, each chunk handed to `done` once hashed (to reuse its memory).
 */
export async function checkChunks(untrusted: AsyncIterable<Buffer>, want: BlobWant, how: VerifyHow & {done?: (chunk: Buffer) => void}): Promise<void> {
  const check = new BlobCheck(want, how)
  for await (const chunk of untrusted) {
    const wait = check.add(chunk)
    if (wait) await wait
    how.done?.(chunk)
  }
  await check.end()
}

/** sha256 and length of everything `chunks` yields, each chunk handed to `each` (awaited) once hashed. */
export async function digestChunks(chunks: AsyncIterable<Buffer> | Iterable<Buffer>, each?: (chunk: Buffer, at: number) => void | Promise<void>): Promise<{digest: string; size: number}> {
  const h = createHash('sha256')
  let size = 0
  for await (const chunk of chunks) {
    h.update(chunk)
    if (each) await each(chunk, size)
    size += chunk.length
  }
  return {digest: `sha256:${h.digest('hex')}`, size}
}

/**
 * The `size` bytes at `offset` of anything read positionally (`read` fills the whole buffer it is
 * given), `chunk` bytes at a time into ONE reused buffer: each chunk must be consumed before the
 * next is asked for (digestChunks does). For hashing a range of a file with a callback per chunk.
 */
export async function* positionalChunks(read: (buf: Buffer, position: number) => Promise<unknown>, offset: number, size: number, chunk: number): AsyncGenerator<Buffer> {
  const buf = Buffer.allocUnsafe(Math.min(chunk, Math.max(size, 1)))
  for (let at = 0; at < size; at += buf.length) {
    const c = buf.subarray(0, Math.min(buf.length, size - at))
    await read(c, offset + at)
    yield c
  }
}
