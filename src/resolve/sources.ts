import {readFile} from 'node:fs/promises'
import {Readable} from 'node:stream'

import {BlobCache} from '../copy/cache.js'
import {sha256Digest} from '../core/digest.js'
import {AirlockError} from '../core/errors.js'
import type {Reference} from '../spec/reference.js'
import type {RegistryOptions} from '../spec/types.js'
import {RegistryClient, type RetryInfo} from '../transports/registry/client.js'
import {resolveCredentials} from '../transports/registry/credentials.js'

/** Configs larger than this are refused (they are held in memory). */
const MAX_SMALL_BLOB = 16 * 1024 * 1024

export interface SourcesOptions {
  registries: Record<string, RegistryOptions>
  /** A persistent blob cache (optional): configs are read from and written to it. */
  cache?: BlobCache
  registryConfig?: string
  /** Retry knobs (tests make them fast). */
  retries?: number
  retryBaseDelayMs?: number
  onRetry?: (info: {host: string; attempt: number; reason: string}) => void
}

/**
 * The registry side of `create`: one client per registry host (mirrors tried first), manifests
 * fetched by tag or digest, small blobs (configs) cached, layers opened as verified streams.
 */
export class Sources {
  private clients = new Map<string, RegistryClient>()

  constructor(private readonly opts: SourcesOptions) {}

  client(host: string, credentialsFor = host): RegistryClient {
    let c = this.clients.get(host)
    if (!c) {
      const ro = this.opts.registries[host] ?? this.opts.registries[credentialsFor] ?? {}
      c = new RegistryClient({
        host,
        insecure: ro.insecure,
        caFile: ro.ca,
        credentials: () => resolveCredentials(credentialsFor, {auth: ro.auth, registryConfig: this.opts.registryConfig}),
        ...(this.opts.retries === undefined ? {} : {retries: this.opts.retries}),
        ...(this.opts.retryBaseDelayMs === undefined ? {} : {retryBaseDelayMs: this.opts.retryBaseDelayMs}),
        ...(this.opts.onRetry ? {onRetry: (i: RetryInfo) => this.opts.onRetry!({host, attempt: i.attempt, reason: i.reason})} : {}),
      })
      this.clients.set(host, c)
    }
    return c
  }

  /** Mirrors of the reference's registry first, then the registry itself. */
  private candidates(ref: Reference): RegistryClient[] {
    const mirrors = this.opts.registries[ref.registry]?.mirrors ?? []
    return [...mirrors.map((m) => this.client(m, m)), this.client(ref.registry)]
  }

  private async firstOf<T>(ref: Reference, fn: (c: RegistryClient) => Promise<T>): Promise<T> {
    const cands = this.candidates(ref)
    let last: unknown
    for (const c of cands) {
      try {
        return await fn(c)
      } catch (error) {
        last = error
        if (!(error instanceof AirlockError) || c === cands.at(-1)) break
      }
    }
    throw last
  }

  getManifest(ref: Reference, reference: string): Promise<{bytes: Buffer; mediaType: string; digest: string}> {
    return this.firstOf(ref, (c) => c.getManifest(ref.repository, reference))
  }

  /** What `reference` (a tag) points at, or undefined when the registry has no such tag. */
  headManifest(ref: Reference, reference: string): Promise<{digest: string; mediaType: string; size: number} | undefined> {
    return this.firstOf(ref, (c) => c.headManifest(ref.repository, reference))
  }

  /** The OCI 1.1 referrers index of `digest`, or undefined when the registry has no referrers API. */
  getReferrers(ref: Reference, digest: string): Promise<{bytes: Buffer; mediaType: string; digest: string} | undefined> {
    return this.firstOf(ref, (c) => c.getReferrers(ref.repository, digest))
  }

  /** Small blobs (configs) fetched by this run, verified: `create` writes them from here. */
  readonly small = new Map<string, Buffer>()

  async getSmallBlob(ref: Reference, digest: string, size: number): Promise<Buffer> {
    const have = this.small.get(digest)
    if (have) return have
    if (size > MAX_SMALL_BLOB) throw new AirlockError('registry.blob_too_large', `${ref.registry}/${ref.repository}: config ${digest} is ${size} bytes, more than the ${MAX_SMALL_BLOB} allowed`)
    const cache = this.opts.cache
    let bytes: Buffer | undefined
    if (cache && (await cache.has(digest, size))) {
      bytes = await readFile(cache.path(digest))
      if (sha256Digest(bytes) !== digest) bytes = undefined
    }
    if (!bytes) {
      bytes = await this.firstOf(ref, async (c) => {
        const chunks: Buffer[] = []
        for await (const chunk of await c.getBlob(ref.repository, digest, size)) chunks.push(chunk as Buffer)
        return Buffer.concat(chunks)
      })
      await cache?.putBytes(digest, bytes)
    }
    this.small.set(digest, bytes)
    return bytes
  }

  openBlob(ref: Reference, digest: string, size: number): Promise<Readable> {
    return this.firstOf(ref, (c) => c.getBlob(ref.repository, digest, size))
  }
}
