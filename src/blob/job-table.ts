import {hashRangeSync, PartLayout} from './pread.js'

/**
 * A table of byte ranges to hash, in a SharedArrayBuffer seen by every hashing thread: a claim
 * counter and a stop flag, then a status and a 32-byte digest slot per range. Any thread claims
 * the next range; the same loop (hashClaimed) runs on the main thread and in the workers.
 */

export const PENDING = 0
export const CLAIMED = 1
export const DONE = 2
/** Short read or I/O error: the reader falls back to its sequential path. */
export const FAILED = 3
export const SKIP = 4

export class JobTable {
  readonly ctrl: Int32Array
  readonly status: Int32Array
  readonly digests: Uint8Array

  constructor(readonly sab: SharedArrayBuffer, readonly count: number) {
    this.ctrl = new Int32Array(sab, 0, 2)
    this.status = new Int32Array(sab, 8, count)
    this.digests = new Uint8Array(sab, 8 + 4 * count, 32 * count)
  }

  static create(count: number): JobTable {
    return new JobTable(new SharedArrayBuffer(8 + 4 * count + 32 * count), count)
  }

  get stopped(): boolean {
    return Atomics.load(this.ctrl, 1) !== 0
  }

  stop(): void {
    Atomics.store(this.ctrl, 1, 1)
  }

  /**
   * Claim ranges one after the other and hash them (`offsets`/`lengths` by job number), reading
   * into `buf`, until none is left or the table is stopped.
   */
  hashClaimed(parts: PartLayout, offsets: ArrayLike<number>, lengths: ArrayLike<number>, buf: Buffer): void {
    const stop = () => this.stopped
    for (;;) {
      if (this.stopped) return
      const k = Atomics.add(this.ctrl, 0, 1)
      if (k >= this.count) return
      if (Atomics.compareExchange(this.status, k, PENDING, CLAIMED) !== PENDING) continue
      let digest: Buffer | undefined
      try {
        digest = hashRangeSync(parts, buf, offsets[k], lengths[k], stop)
      } catch {
        digest = undefined
      }
      if (digest) this.digests.set(digest, k * 32)
      Atomics.store(this.status, k, digest ? DONE : FAILED)
    }
  }
}

/** What a range-hashing thread is given. */
export interface RangeJobsData {
  parts: PartLayout
  offsets: Float64Array
  lengths: Float64Array
  sab: SharedArrayBuffer
  chunk: number
}
