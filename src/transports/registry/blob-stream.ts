import type http from 'node:http'
import {Readable} from 'node:stream'

import {VerifyError} from '../../core/errors.js'
import {DOWNLOAD_BUFFER} from '../../blob/sizes.js'
import {BlobCheck, BlobFault} from '../../blob/verified.js'
import type {RegistryClient} from './client.js'
import {classifyError, headerOne, NetworkError} from './transport/http.js'
import {Backoff, Retryable} from './transport/retry.js'

/**
 * A blob downloaded from a registry, as a stream of verified bytes (BlobCheck: size and sha256
 * checked on every byte, end signalled only after the digest matched). After a connection
 * failure it resumes with `Range` where the server does ranges, else re-reads from zero and skips
 * what was already passed on; it backs off as the client's retry policy says.
 */
export class VerifiedBlobStream extends Readable {
  private readonly check: BlobCheck
  /** Bytes of the current response to discard (already emitted) when it started before them. */
  private skip = 0
  private res?: http.IncomingMessage
  private ranges = false
  private readonly backoff: Backoff
  private progressAtFailure = -1
  private finished = false

  constructor(
    private readonly client: RegistryClient,
    private readonly repo: string,
    private readonly digest: string,
    private readonly size: number,
    first: http.IncomingMessage,
    start: number,
  ) {
    super({highWaterMark: DOWNLOAD_BUFFER})
    this.backoff = new Backoff(client.retryPolicy)
    this.check = new BlobCheck({digest, size}, {fail: (fault, seen, hex) => this.failure(fault, seen, hex)})
    this.attach(first, start, true)
  }

  private get what(): string {
    return `blob ${this.client.host}/${this.repo}@${this.digest}`
  }

  /** Bytes hashed and passed downstream (all of them but a held-back last piece). */
  private get emitted(): number {
    return this.check.seen
  }

  private failure(fault: BlobFault, seen: number, hex?: string): VerifyError {
    const message = fault === 'long' ? `more than the expected ${this.size} bytes`
      : fault === 'short' ? `only ${seen} of ${this.size} bytes`
        : `content hashes to sha256:${hex}`
    return new VerifyError(fault === 'digest' ? 'registry.digest_mismatch' : 'registry.size_mismatch', `${this.what}: ${message}`, {entry: this.digest})
  }

  override _read(): void {
    this.res?.resume()
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.finished = true
    this.res?.destroy()
    this.res = undefined
    cb(err)
  }

  private fail(err: Error): void {
    if (this.finished) return
    this.finished = true
    this.res?.destroy()
    this.res = undefined
    this.destroy(err)
  }

  /** All bytes are there: end the stream with the piece held back, once the digest matched. */
  private complete(res: http.IncomingMessage): void {
    let last: Buffer | undefined
    try {
      last = this.check.endSync()
    } catch (error) {
      this.fail(error as Error)
      return
    }
    this.finished = true
    if (last) this.push(last)
    this.push(null)
    res.resume()
  }

  /** Bytes of a response: skipped where already passed on, else checked and passed on. */
  private onData(res: http.IncomingMessage, chunk: Buffer): void {
    let c = chunk
    if (this.skip > 0) {
      if (c.length <= this.skip) {
        this.skip -= c.length
        return
      }
      c = c.subarray(this.skip)
      this.skip = 0
    }
    let piece: Buffer | undefined
    try {
      void this.check.add(c) // hashed on this thread: nothing to wait for
      piece = this.check.pass(c)
    } catch (error) {
      this.fail(error as Error)
      return
    }
    if (this.check.complete) this.complete(res)
    else if (piece && !this.push(piece)) res.pause()
  }

  private attach(res: http.IncomingMessage, start: number, first: boolean): void {
    if (first) this.ranges = /bytes/i.test(headerOne(res.headers['accept-ranges']) ?? '') || res.statusCode === 206
    else if (res.statusCode === 206) this.ranges = true
    if (res.statusCode === 200) {
      const len = Number(headerOne(res.headers['content-length']))
      if (Number.isFinite(len) && headerOne(res.headers['content-length']) !== undefined && len !== this.size) {
        res.destroy()
        this.fail(new VerifyError('registry.size_mismatch', `${this.what}: registry sends ${len} bytes, expected ${this.size}`, {entry: this.digest}))
        return
      }
    }
    this.res = res
    this.skip = this.emitted - start
    res.on('data', (chunk: Buffer) => {
      if (this.finished || this.res !== res) return
      this.onData(res, chunk)
    })
    let ended = false
    const onBroken = (err?: Error) => {
      if (ended || this.finished || this.res !== res) return
      ended = true
      this.res = undefined
      void this.retry(err)
    }
    res.on('end', () => {
      if (this.finished || this.res !== res) return
      if (res.complete && this.emitted < this.size) {
        // The server said this was the whole body: the blob is shorter than expected.
        ended = true
        this.complete(res)
        return
      }
      onBroken()
    })
    res.on('error', (e) => onBroken(e))
    res.on('close', () => {
      if (!res.complete) onBroken()
    })
    // Empty blob: nothing will arrive; verify the empty hash now.
    if (this.size === 0) this.complete(res)
  }

  private async retry(err?: Error): Promise<void> {
    if (this.emitted !== this.progressAtFailure) this.backoff.reset()
    this.progressAtFailure = this.emitted
    const first = classifyError(err ?? Object.assign(new Error('aborted'), {code: 'ECONNRESET'}), this.client.host)
    if (!(first instanceof NetworkError)) {
      this.fail(first instanceof Error ? first : new Error(String(first)))
      return
    }
    let cause: Retryable | NetworkError = first
    for (;;) {
      try {
        await this.client.backoffOrThrow(this.backoff, cause, 'GET', this.what)
        if (this.finished) return
        // Resume where we are when the server does ranges; else re-read from zero and skip what
        // was already hashed and emitted (the hash always covers exactly the emitted bytes).
        const {res, start} = await this.client.openBlob(this.repo, this.digest, this.ranges ? this.emitted : 0, true)
        if (this.finished) {
          res.destroy()
          return
        }
        this.attach(res, start, false)
        return
      } catch (e) {
        if (e instanceof Retryable) {
          cause = e
          continue
        }
        this.fail(e instanceof Error ? e : new Error(String(e)))
        return
      }
    }
  }
}
