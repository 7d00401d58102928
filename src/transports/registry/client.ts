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
import {Readable} from 'node:stream'

import {InputError} from '../../core/errors.js'
import {VerifiedBlobStream} from './blob-stream.js'
import * as blobs from './blobs.js'
import * as listing from './listing.js'
import * as manifests from './manifests.js'
import {getReferrers} from './referrers.js'
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

  /** OCI 1.1 referrers of `digest` (an index), or undefined when the registry has no referrers API. */
  getReferrers(repo: string, digest: string): Promise<manifests.ManifestResult | undefined> {
    return getReferrers(this.transport, repo, digest)
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

// ------------------------------------------------------------------ helpers

// What VerifiedBlobStream uses, reachable from here wherever the stream lives.
export {Backoff, NetworkError, Retryable, classifyError, headerOne}
