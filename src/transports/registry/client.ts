/**
 * An OCI distribution-spec client for ONE registry host, on node:http(s) with keep-alive agents.
 * This class is the public face; each concern lives in its own module:
 *
 * - transport/request.ts: attempts, retries (transport/retry.ts), redirects; `Authorization`
 *   never goes to another origin. Auth: transport/auth.ts (Basic, Bearer token flow in
 *   transport/bearer.ts), discovered from the `WWW-Authenticate` of a 401.
 * - transport/scrub.ts: server text in messages, scrubbed of every secret the client has seen.
 * - manifests.ts: manifests hashed raw and capped at MAX_MANIFEST_BYTES; blobs.ts: HEAD, mount,
 *   upload; listing.ts: catalog and tags.
 * - Blob streams are hashed and length-checked as they flow, resuming with `Range` where the
 *   server supports it (VerifiedBlobStream).
 */
import {createHash, type Hash} from 'node:crypto'
import http from 'node:http'
import {Readable} from 'node:stream'

import {InputError, VerifyError} from '../../core/errors.js'
import * as blobs from './blobs.js'
import * as listing from './listing.js'
import * as manifests from './manifests.js'
import {checkDigest, checkRepo} from './names.js'
import {NetworkError, classifyError, drain, headerOne} from './transport/http.js'
import {RegistryTransport, type TransportOptions} from './transport/request.js'
import {Backoff, type RetryPolicy, Retryable} from './transport/retry.js'

export type {OpenBlob, PutBlobResult} from './blobs.js'
export type {ManifestHead, ManifestResult} from './manifests.js'
export type {RetryInfo} from './transport/retry.js'
export type RegistryClientOptions = TransportOptions

export class RegistryClient {
  readonly host: string
  private readonly transport: RegistryTransport

  constructor(o: RegistryClientOptions) {
    this.transport = new RegistryTransport(o)
    this.host = o.host
  }

  /** Release keep-alive sockets. */
  close(): void {
    this.transport.close()
  }

  // ---------------------------------------------------------------- public API

  /** GET /v2/: reachability and credentials check. */
  async ping(): Promise<void> {
    await this.transport.request({method: 'GET', url: '/v2/', scopes: [], expect: [200], what: `registry ${this.host}`}, async (res) => drain(res))
  }

  getManifest(repo: string, reference: string): Promise<manifests.ManifestResult> {
    return manifests.getManifest(this.transport, repo, reference)
  }

  headManifest(repo: string, reference: string): Promise<manifests.ManifestHead | undefined> {
    return manifests.headManifest(this.transport, repo, reference)
  }

  /**
   * A verified stream of the blob: it errors with VerifyError if the bytes' length or sha256
   * differ from `size`/`digest` (the last chunk is held back only by the final check: end is
   * signalled only after the digest matched). Resumes with `Range` after connection failures.
   */
  async getBlob(repo: string, digest: string, size: number): Promise<Readable> {
    checkRepo(repo)
    checkDigest(digest)
    if (!Number.isSafeInteger(size) || size < 0) throw new InputError('registry.invalid_size', `invalid blob size ${size}`)
    const first = await this.openBlob(repo, digest, 0)
    return new VerifiedBlobStream(this, repo, digest, size, first.res, first.start)
  }

  hasBlob(repo: string, digest: string): Promise<boolean> {
    return blobs.hasBlob(this.transport, repo, digest)
  }

  /**
   * Make `digest` present in `repo`: HEAD first ('exists'), then a cross-repo mount from
   * `mountFrom` ('mounted'), else a monolithic POST + PUT upload of `open()` ('uploaded').
   * `open` may be called again on retry and must return a fresh stream of exactly `size` bytes.
   */
  putBlob(repo: string, digest: string, size: number, open: () => Readable, opts: {mountFrom?: string} = {}): Promise<blobs.PutBlobResult> {
    return blobs.putBlob(this.transport, repo, digest, size, open, opts)
  }

  putManifest(repo: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    return manifests.putManifest(this.transport, repo, reference, bytes, mediaType)
  }

  /** Repository names from `/v2/_catalog` (best effort: many registries disable it; then []). */
  catalog(max = 1000): Promise<string[]> {
    return listing.catalog(this.transport, max)
  }

  listTags(repo: string): Promise<string[]> {
    return listing.listTags(this.transport, repo)
  }

  // ---------------------------------------------------------------- for VerifiedBlobStream

  /** @internal Open a blob GET at `offset` (Range when > 0). `start` is where the body begins. */
  openBlob(repo: string, digest: string, offset: number, noRetry = false): Promise<blobs.OpenBlob> {
    return blobs.openBlob(this.transport, repo, digest, offset, noRetry)
  }

  /** @internal */
  get retryPolicy(): RetryPolicy {
    return this.transport.policy
  }

  /** @internal Wait per the backoff (reporting onRetry) or throw the final error. */
  backoffOrThrow(backoff: Backoff, e: Retryable | NetworkError, method: string, url: string): Promise<void> {
    return this.transport.backoffOrThrow(backoff, e, method, url)
  }
}

// ------------------------------------------------------------------ verified blob stream

class VerifiedBlobStream extends Readable {
  private hash: Hash = createHash('sha256')
  /** Bytes hashed and pushed downstream. */
  private emitted = 0
  /** Bytes of the current response to discard (already emitted) when it started before `emitted`. */
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
    super({highWaterMark: 1024 * 1024})
    this.backoff = new Backoff(client.retryPolicy)
    this.attach(first, start, true)
  }

  private get what(): string {
    return `blob ${this.client.host}/${this.repo}@${this.digest}`
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
    let over = false
    res.on('data', (chunk: Buffer) => {
      if (over || this.finished || this.res !== res) return
      let c = chunk
      if (this.skip > 0) {
        if (c.length <= this.skip) {
          this.skip -= c.length
          return
        }
        c = c.subarray(this.skip)
        this.skip = 0
      }
      if (this.emitted + c.length > this.size) {
        over = true
        this.fail(new VerifyError('registry.size_mismatch', `${this.what}: more than the expected ${this.size} bytes`, {entry: this.digest}))
        return
      }
      this.hash.update(c)
      this.emitted += c.length
      if (this.emitted === this.size) {
        // Verify before handing over the last bytes, so a consumer never sees a complete bad blob.
        const got = `sha256:${this.hash.digest('hex')}`
        if (got !== this.digest) {
          this.fail(new VerifyError('registry.digest_mismatch', `${this.what}: content hashes to ${got}`, {entry: this.digest}))
          return
        }
        this.finished = true
        this.push(c)
        this.push(null)
        res.resume()
        return
      }
      if (!this.push(c)) res.pause()
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
        this.fail(new VerifyError('registry.size_mismatch', `${this.what}: only ${this.emitted} of ${this.size} bytes`, {entry: this.digest}))
        return
      }
      onBroken()
    })
    res.on('error', (e) => onBroken(e))
    res.on('close', () => {
      if (!res.complete) onBroken()
    })
    if (this.emitted === this.size && this.size === 0) {
      // Empty blob: nothing will arrive; verify the empty hash now.
      const got = `sha256:${this.hash.digest('hex')}`
      if (got !== this.digest) this.fail(new VerifyError('registry.digest_mismatch', `${this.what}: content hashes to ${got}`, {entry: this.digest}))
      else {
        this.finished = true
        this.push(null)
      }
      res.resume()
    }
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

// ------------------------------------------------------------------ helpers

// What VerifiedBlobStream uses, reachable from here wherever the stream lives.
export {Backoff, NetworkError, Retryable, classifyError, headerOne}
