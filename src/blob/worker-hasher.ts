import type {Worker} from 'node:worker_threads'

import {AirlockError} from '../core/errors.js'
import type {HashThreadMessage, HashThreadReply} from './hash-thread.js'
import {MAX_HASH_BEHIND} from './sizes.js'
import {startThread} from './workers.js'

/**
 * sha256 of the bytes a sink is being fed, computed on a worker thread instead of the main one.
 *
 * While installing, the main thread reads the archive, builds what the target needs and writes
 * it out; hashing there came to about 0.7 s of its time per GB. Chunks read into
 * SharedArrayBuffers are hashed by the worker from that same memory while the main thread passes
 * them on: the bytes that are hashed are the bytes that are sent, with nothing copied. (A chunk
 * in ordinary memory is copied once to the worker.) verifiedChunks still holds back each blob's
 * last chunk until hex() has given the blob's digest.
 *
 * At most MAX_HASH_BEHIND bytes are posted and not yet hashed: update() waits beyond that, so a
 * slow worker holds back the reader instead of growing memory.
 */

/** A digest being computed elsewhere (on the hashing thread). */
export interface HashJob {
  /** Hash `b` next (resolved at once unless the worker is more than MAX_HASH_BEHIND bytes behind). */
  update(b: Buffer): Promise<void> | undefined
  /** The hex sha256 of everything given to update(). */
  hex(): Promise<string>
}

interface Waiter<T> {
  resolve: (v: T) => void
  reject: (e: Error) => void
}

export class WorkerHasher {
  private readonly worker: Worker
  private nextJob = 1
  private behind = 0
  private failure?: Error
  private closed = false
  private readonly hexWaiters = new Map<number, Waiter<string>>()
  private roomWaiters: Waiter<void>[] = []
  /** Chunks posted so far, and hashed so far (the worker hashes them in order). */
  private posted = 0
  private hashed = 0
  private readonly seqOf = new WeakMap<Buffer, number>()
  private deferred: {seq: number; fn: () => void}[] = []

  private constructor() {
    this.worker = startThread('hash-thread')
    this.worker.unref()
    this.worker.on('message', (m: HashThreadReply) => this.onReply(m))
    const onFailure = (error: Error) => {
      if (this.closed) return
      this.failure = new AirlockError('verify.hash_worker', `the hashing thread failed: ${error.message}`, {cause: error})
      for (const w of this.hexWaiters.values()) w.reject(this.failure)
      this.hexWaiters.clear()
      for (const w of this.roomWaiters.splice(0)) w.reject(this.failure)
    }
    this.worker.on('error', onFailure)
    this.worker.on('exit', (code) => onFailure(new Error(`exited with code ${code}`)))
  }

  static start(): WorkerHasher {
    return new WorkerHasher()
  }

  private onReply(m: HashThreadReply): void {
    if ('done' in m) {
      this.behind -= m.done
      this.hashed++
      if (this.deferred.length > 0 && this.deferred[0].seq < this.hashed) {
        const ready = this.deferred.filter((d) => d.seq < this.hashed)
        this.deferred = this.deferred.filter((d) => d.seq >= this.hashed)
        for (const d of ready) d.fn()
      }
      if (this.behind <= MAX_HASH_BEHIND / 2) for (const w of this.roomWaiters.splice(0)) w.resolve()
      return
    }
    const w = this.hexWaiters.get(m.job)
    this.hexWaiters.delete(m.job)
    w?.resolve(m.hex)
  }

  private post(m: HashThreadMessage): void {
    this.worker.postMessage(m)
  }

  job(): HashJob {
    const job = this.nextJob++
    return {
      update: (b) => {
        if (this.failure) throw this.failure
        if (b.length === 0) return undefined
        if (b.buffer instanceof SharedArrayBuffer) this.post({job, buf: b.buffer, off: b.byteOffset, len: b.length})
        else this.post({job, bytes: new Uint8Array(b)}) // a copy of just these bytes
        this.seqOf.set(b, this.posted++)
        this.behind += b.length
        if (this.behind <= MAX_HASH_BEHIND) return undefined
        return new Promise<void>((resolve, reject) => this.roomWaiters.push({resolve, reject}))
      },
      hex: () => {
        if (this.failure) return Promise.reject(this.failure)
        return new Promise<string>((resolve, reject) => {
          this.hexWaiters.set(job, {resolve, reject})
          this.post({job, hex: true})
        })
      },
    }
  }

  /**
   * Run `fn` (which lets the memory of `chunk` be reused) once the worker has hashed `chunk`:
   * now if it has, else when it has. A chunk never given to update() runs at once.
   */
  afterHashed(chunk: Buffer, fn: () => void): void {
    const seq = this.seqOf.get(chunk)
    if (seq === undefined || seq < this.hashed) fn()
    else this.deferred.push({seq, fn})
  }

  /** Bytes posted and not yet hashed (for tests). */
  get pending(): number {
    return this.behind
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.worker.terminate()
  }
}
