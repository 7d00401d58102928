import {availableParallelism} from 'node:os'
import {Worker} from 'node:worker_threads'

/**
 * SHA-256 on worker threads, so that `verify` hashes different blobs on different cores while
 * the main thread keeps reading the archive. Every chunk of one blob goes to the same worker,
 * in order; the buffer is transferred (not copied) when the chunk owns its whole ArrayBuffer.
 */

// CommonJS, evaluated in the worker: no file to resolve from dist/ or from tsx.
const WORKER_SOURCE = `
const {parentPort} = require('node:worker_threads')
const {createHash} = require('node:crypto')
const hashes = new Map()
parentPort.on('message', (m) => {
  if (m.t === 'c') {
    let h = hashes.get(m.id)
    if (!h) { h = createHash('sha256'); hashes.set(m.id, h) }
    h.update(new Uint8Array(m.buf, m.off, m.len))
    parentPort.postMessage({t: 'a', n: m.len, buf: m.buf}, [m.buf])
  } else {
    const h = hashes.get(m.id) || createHash('sha256')
    hashes.delete(m.id)
    parentPort.postMessage({t: 'd', id: m.id, hex: h.digest('hex')})
  }
})
`

interface Slot {
  worker: Worker
  /** Bytes posted to this worker and not yet hashed. */
  queued: number
}

export interface PooledHash {
  /** Hand a chunk to the worker (the Buffer must not be used afterwards); resolves once the backlog allows more. */
  update(chunk: Buffer): Promise<void>
  /** The hex digest once every chunk has been hashed. */
  digest(): Promise<string>
}

/** Threads to hash on: AIRLOCK_HASH_THREADS, else the cores this process may use (0 when only one: hash inline). */
export function hashThreads(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.AIRLOCK_HASH_THREADS
  if (v !== undefined && /^\d+$/.test(v)) return Math.min(Number(v), 16)
  const n = availableParallelism()
  return n < 2 ? 0 : Math.min(n, 8)
}

export class HashPool {
  private readonly slots: Slot[] = []
  private readonly done = new Map<number, {resolve: (hex: string) => void; reject: (e: Error) => void}>()
  private nextId = 1
  private inflight = 0
  private waiters: (() => void)[] = []
  private failed?: Error

  /** At most this many bytes posted and not yet hashed (bounds memory). */
  /** `onFree` receives every chunk's buffer back once it has been hashed (to reuse it). */
  constructor(threads: number, private readonly onFree?: (buf: ArrayBuffer) => void, private readonly maxInflight = 32 * 1024 * 1024) {
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(WORKER_SOURCE, {eval: true})
      const slot: Slot = {worker, queued: 0}
      worker.on('message', (m: {t: 'a'; n: number; buf: ArrayBuffer} | {t: 'd'; id: number; hex: string}) => {
        if (m.t === 'a') {
          this.onFree?.(m.buf)
          slot.queued -= m.n
          this.inflight -= m.n
          if (this.inflight <= this.maxInflight) this.wake()
        } else {
          const d = this.done.get(m.id)
          this.done.delete(m.id)
          d?.resolve(m.hex)
        }
      })
      worker.on('error', (error) => this.fail(error))
      this.slots.push(slot)
    }
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  private fail(error: Error): void {
    this.failed ??= error
    for (const d of this.done.values()) d.reject(error)
    this.done.clear()
    this.wake()
  }

  /** Start hashing one blob on the least busy worker. */
  begin(): PooledHash {
    const slot = this.slots.reduce((a, b) => (b.queued < a.queued ? b : a))
    const id = this.nextId++
    const result = new Promise<string>((resolve, reject) => { this.done.set(id, {resolve, reject}) })
    result.catch(() => {})
    return {
      update: async (chunk: Buffer) => {
        if (this.failed) throw this.failed
        let buf: ArrayBuffer
        let off = 0
        if (chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer) {
          buf = chunk.buffer // the chunk owns it: move it to the worker
        } else {
          buf = new ArrayBuffer(chunk.length)
          new Uint8Array(buf).set(chunk)
        }
        const len = chunk.length
        off = 0
        slot.queued += len
        this.inflight += len
        slot.worker.postMessage({t: 'c', id, buf, off, len}, [buf])
        while (this.inflight > this.maxInflight && !this.failed) {
          // eslint-disable-next-line no-await-in-loop
          await new Promise<void>((resolve) => { this.waiters.push(resolve) })
        }
      },
      digest: () => {
        if (this.failed) return Promise.reject(this.failed)
        slot.worker.postMessage({t: 'e', id})
        return result
      },
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()))
    this.slots.length = 0
  }
}
