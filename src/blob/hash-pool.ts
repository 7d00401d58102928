import {availableParallelism} from 'node:os'
import type {Worker} from 'node:worker_threads'

import {DONE, JobTable, PENDING, RangeJobsData, SKIP} from './job-table.js'
import type {MultiFile} from './multi-file.js'
import {HASH_CHUNK, MIN_THREADED_HASH} from './sizes.js'
import {startThread} from './workers.js'

/**
 * sha256 of byte ranges of a file, on every core: every thread (the main one and `threads - 1`
 * workers) reads the ranges it claims into its own reused buffer and hashes them, largest first,
 * so nothing is copied or passed between threads. Plain `verify` (no sink) hashes blobs so.
 */

/**
 * Hashing threads, the main one included: `configured` (the commands pass --hash-threads /
 * AIRLOCK_HASH_THREADS), else the cores this process may use (at most 8).
 */
export function hashThreads(configured?: number): number {
  if (configured !== undefined) return Math.max(1, Math.min(configured, 16))
  return Math.max(1, Math.min(availableParallelism(), 8))
}

export interface Range {
  offset: number
  size: number
}

/** Ranges of `file` being hashed on the worker threads; this thread joins in with finish(). */
export class HashJobs {
  private readonly table: JobTable
  private readonly byRange = new Map<string, number>()
  private readonly workers: Worker[] = []
  private readonly idle: Promise<void>[] = []
  private buf?: Buffer

  private constructor(private readonly file: MultiFile, readonly ranges: Range[]) {
    this.table = JobTable.create(ranges.length)
    for (const [k, r] of ranges.entries()) this.byRange.set(`${r.offset}:${r.size}`, k)
  }

  /**
   * Hash `ranges` (largest first) on `workers` worker threads, starting now; this thread joins
   * in with finish(). With no workers (or little to hash) nothing is hashed before finish().
   */
  static start(file: MultiFile, ranges: Range[], workers: number): HashJobs {
    const sorted = [...ranges].sort((a, b) => b.size - a.size || a.offset - b.offset)
    const jobs = new HashJobs(file, sorted)
    const bytes = sorted.reduce((sum, r) => sum + r.size, 0)
    if (workers > 0 && sorted.length > 0 && bytes >= MIN_THREADED_HASH) jobs.spawn(Math.min(workers, sorted.length))
    return jobs
  }

  private spawn(count: number): void {
    const workerData: RangeJobsData = {
      parts: {fds: this.file.fds, starts: this.file.starts, sizes: this.file.sizes},
      offsets: Float64Array.from(this.ranges, (r) => r.offset), lengths: Float64Array.from(this.ranges, (r) => r.size),
      sab: this.table.sab, chunk: HASH_CHUNK,
    }
    for (let i = 0; i < count; i++) {
      const worker = startThread('range-hash-thread', {workerData})
      // A speculation nobody takes over must not keep the process alive; finish() refs them.
      worker.unref()
      this.idle.push(new Promise<void>((resolve) => {
        worker.on('message', () => resolve())
        // A worker that could not start or died: this thread hashes what it left unclaimed, and
        // a range it claimed but did not finish has no digest (the reader then reads on sequentially).
        worker.on('error', () => resolve())
        worker.on('exit', () => resolve())
      }))
      this.workers.push(worker)
    }
  }

  /** The job for exactly this range, if there is one. */
  find(offset: number, size: number): number | undefined {
    return this.byRange.get(`${offset}:${size}`)
  }

  /** Ranges nobody needs any more are not hashed (unless a thread has already begun). */
  skipAllBut(needed: Set<number>): void {
    for (let k = 0; k < this.ranges.length; k++) if (!needed.has(k)) Atomics.compareExchange(this.table.status, k, PENDING, SKIP)
  }

  /** Hash on this thread whatever is still unclaimed, then wait for the workers to finish theirs. */
  async finish(): Promise<void> {
    this.buf ??= Buffer.allocUnsafe(HASH_CHUNK)
    this.table.hashClaimed(this.file, this.ranges.map((r) => r.offset), this.ranges.map((r) => r.size), this.buf)
    for (const w of this.workers) w.ref()
    await Promise.all(this.idle)
  }

  /** Hex digest of job k once finish() has resolved; undefined when it could not be read whole. */
  digest(k: number): string | undefined {
    const s = Atomics.load(this.table.status, k)
    const {digests} = this.table
    return s === DONE ? Buffer.from(digests.buffer, digests.byteOffset + k * 32, 32).toString('hex') : undefined
  }

  /** Stop the workers (they stop between two reads) and wait until none can read any more. */
  async close(): Promise<void> {
    this.table.stop()
    await Promise.all(this.workers.map((w) => w.terminate()))
    this.workers.length = 0
  }
}

