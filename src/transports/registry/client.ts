/**
 * An OCI distribution-spec client for ONE registry host, on node:http(s) with keep-alive agents.
 *
 * - Auth: Basic or Bearer (token flow with service/scope, tokens cached per scope until expiry),
 *   discovered from the `WWW-Authenticate` of a 401.
 * - Redirects are followed manually; `Authorization` never goes to another origin.
 * - Retries with exponential backoff + jitter on 5xx/429 (honouring `Retry-After`) and on
 *   connection resets/timeouts; blob downloads resume with `Range` where the server supports it.
 * - Everything a registry sends is verified: manifests are hashed raw and capped at
 *   MAX_MANIFEST_BYTES; blob streams are hashed and length-checked as they flow.
 */
import {readFileSync} from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import {Readable} from 'node:stream'
import {rootCertificates} from 'node:tls'

import {sha256Digest} from '../../core/digest.js'
import {AirlockError, InputError, VerifyError} from '../../core/errors.js'
import {DIGEST_RE, MANIFEST_MEDIA_TYPES, MAX_MANIFEST_BYTES, MediaType} from '../../core/model.js'
import type {Credentials} from './credentials.js'
import {
  Backoff,
  type Challenge,
  DEFAULT_RETRY_POLICY,
  NetworkError,
  type RetryPolicy,
  classifyError,
  drain,
  isLoopbackHost,
  parseChallenge,
  parseRetryAfter,
  readBody,
  send,
  sleep,
} from './http.js'
import {VerifiedBlobStream} from './blob-stream.js'

export interface RetryInfo {
  /** 1 for the first retry. */
  attempt: number
  retries: number
  delayMs: number
  /** e.g. "HTTP 503", "ECONNRESET". */
  reason: string
  method: string
  /** URL without credentials (registry URLs never carry any). */
  url: string
}

export interface RegistryClientOptions {
  /** "host[:port]", e.g. "127.0.0.1:5301", "ghcr.io". */
  host: string
  /** Plain HTTP for a non-loopback host (loopback hosts always use HTTP). */
  insecure?: boolean
  /** PEM file with extra CA certificates (added to Node's default roots). */
  caFile?: string
  credentials?: Credentials | (() => Promise<Credentials | undefined>)
  /** Retries after the first attempt (default 5). */
  retries?: number
  /** First backoff delay, ms (default 500). */
  retryBaseDelayMs?: number
  /** Cap for one backoff delay, ms (default 30 000). */
  retryMaxDelayMs?: number
  /** Cap for the sum of backoff delays of one operation, ms (default 120 000). */
  maxRetryWaitMs?: number
  /** Socket idle timeout, ms (default 60 000). */
  timeoutMs?: number
  userAgent?: string
  onRetry?: (info: RetryInfo) => void
}

export interface ManifestResult {
  bytes: Buffer
  mediaType: string
  digest: string
}

export interface ManifestHead {
  digest: string
  mediaType: string
  size: number
}

export type PutBlobResult = 'mounted' | 'uploaded' | 'exists'

const SCHEMA1_TYPES = new Set([
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
])
const ACCEPT_MANIFESTS = MANIFEST_MEDIA_TYPES.join(', ')
const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/
const TAG_RE = /^\w[\w.-]{0,127}$/
const MAX_SMALL_BODY = 16 * 1024 * 1024
const MAX_ERROR_BODY = 64 * 1024
const MAX_REDIRECTS = 10

/** Thrown inside one attempt for a failure worth retrying. */
export class Retryable extends Error {
  constructor(
    readonly reason: string,
    readonly final: Error,
    readonly retryAfterMs?: number,
  ) {
    super(reason)
  }
}

interface Req {
  method: string
  /** Absolute URL, or a path on this registry. */
  url: URL | string
  headers?: Record<string, string>
  body?: Buffer | (() => Readable)
  bodyLength?: number
  /** Token scopes this request needs (Bearer registries). */
  scopes: string[]
  /** Statuses handed to the consumer; anything else becomes an error. */
  expect: number[]
  /** Used in error messages: "manifest 127.0.0.1:5301/testbed/x:1". */
  what: string
}

interface Token {
  value: string
  expiresAt: number
}

export function headerOne(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}

function baseMediaType(ct: string | string[] | undefined): string {
  return (headerOne(ct) ?? '').split(';')[0].trim().toLowerCase()
}

export class RegistryClient {
  readonly host: string
  private readonly scheme: 'http' | 'https'
  private readonly origin: string
  private readonly policy: RetryPolicy
  private readonly timeoutMs: number
  private readonly userAgent: string
  private readonly onRetry?: (info: RetryInfo) => void
  private readonly httpAgent = new http.Agent({keepAlive: true, maxSockets: 32})
  private readonly httpsAgent: https.Agent
  private readonly credSource?: Credentials | (() => Promise<Credentials | undefined>)
  private creds?: Promise<Credentials | undefined>
  private challenge?: Challenge
  private readonly tokens = new Map<string, Token>()
  /** Every secret this client has seen, scrubbed from any message built from server text. */
  private readonly secrets = new Set<string>()

  constructor(o: RegistryClientOptions) {
    if (!o.host || /[\s/@]/.test(o.host)) throw new InputError('registry.invalid_host', `invalid registry host: ${JSON.stringify(o.host)}`)
    this.host = o.host
    this.scheme = o.insecure || isLoopbackHost(o.host) ? 'http' : 'https'
    // Docker Hub's API lives on registry-1.docker.io; messages keep the name the user wrote.
    const endpoint = /^(docker\.io|index\.docker\.io)$/i.test(o.host) ? 'registry-1.docker.io' : o.host
    this.origin = new URL(`${this.scheme}://${endpoint}`).origin
    this.policy = {
      retries: o.retries ?? DEFAULT_RETRY_POLICY.retries,
      baseDelayMs: o.retryBaseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs,
      maxDelayMs: o.retryMaxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs,
      maxTotalWaitMs: o.maxRetryWaitMs ?? DEFAULT_RETRY_POLICY.maxTotalWaitMs,
    }
    this.timeoutMs = o.timeoutMs ?? 60_000
    this.userAgent = o.userAgent ?? 'airlock'
    this.onRetry = o.onRetry
    this.credSource = o.credentials
    let ca: string[] | undefined
    if (o.caFile) {
      try {
        ca = [...rootCertificates, readFileSync(o.caFile, 'utf8')]
      } catch (e) {
        throw new InputError('registry.ca_file', `cannot read CA file ${o.caFile}: ${(e as NodeJS.ErrnoException).code ?? e}`)
      }
    }
    this.httpsAgent = new https.Agent({keepAlive: true, maxSockets: 32, ...(ca ? {ca} : {})})
  }

  /** Release keep-alive sockets. */
  close(): void {
    this.httpAgent.destroy()
    this.httpsAgent.destroy()
  }

  // ---------------------------------------------------------------- public API

  /** GET /v2/: reachability and credentials check. */
  async ping(): Promise<void> {
    await this.request({method: 'GET', url: '/v2/', scopes: [], expect: [200], what: `registry ${this.host}`}, async (res) => drain(res))
  }

  async getManifest(repo: string, reference: string): Promise<ManifestResult> {
    checkRepo(repo)
    const byDigest = checkReference(reference)
    const what = this.refString(repo, reference)
    return this.request(
      {
        method: 'GET',
        url: `/v2/${repo}/manifests/${reference}`,
        headers: {Accept: ACCEPT_MANIFESTS},
        scopes: [pullScope(repo)],
        expect: [200],
        what: `manifest ${what}`,
      },
      async (res) => {
        const contentType = baseMediaType(res.headers['content-type'])
        if (SCHEMA1_TYPES.has(contentType)) throw schema1Error(what)
        const bytes = await readBody(res, MAX_MANIFEST_BYTES, () => tooLarge(what))
        const digest = sha256Digest(bytes)
        if (byDigest && digest !== reference) {
          throw new VerifyError('registry.digest_mismatch', `manifest ${what} has digest ${digest}, expected ${reference}`, {entry: what})
        }
        const headerDigest = headerOne(res.headers['docker-content-digest'])
        if (headerDigest && headerDigest.startsWith('sha256:') && headerDigest !== digest) {
          throw new VerifyError(
            'registry.digest_mismatch',
            `manifest ${what}: registry claims digest ${headerDigest} but the bytes hash to ${digest}`,
            {entry: what},
          )
        }
        const mediaType = manifestMediaType(bytes, contentType, what)
        return {bytes, mediaType, digest}
      },
    )
  }

  async headManifest(repo: string, reference: string): Promise<ManifestHead | undefined> {
    checkRepo(repo)
    const byDigest = checkReference(reference)
    const what = this.refString(repo, reference)
    const r = await this.request(
      {
        method: 'HEAD',
        url: `/v2/${repo}/manifests/${reference}`,
        headers: {Accept: ACCEPT_MANIFESTS},
        scopes: [pullScope(repo)],
        expect: [200, 404],
        what: `manifest ${what}`,
      },
      async (res) => {
        drain(res)
        if (res.statusCode === 404) return undefined
        return {
          digest: headerOne(res.headers['docker-content-digest']),
          mediaType: baseMediaType(res.headers['content-type']),
          size: Number(headerOne(res.headers['content-length'])),
        }
      },
    )
    if (!r) return undefined
    if (SCHEMA1_TYPES.has(r.mediaType)) throw schema1Error(what)
    if (r.digest && DIGEST_RE.test(r.digest) && MANIFEST_MEDIA_TYPES.includes(r.mediaType) && Number.isFinite(r.size)) {
      if (byDigest && r.digest !== reference) {
        throw new VerifyError('registry.digest_mismatch', `manifest ${what}: registry answered digest ${r.digest}`, {entry: what})
      }
      if (r.size > MAX_MANIFEST_BYTES) throw tooLarge(what)
      return {digest: r.digest, mediaType: r.mediaType, size: r.size}
    }
    // Incomplete HEAD answer (no digest header, generic content type): fetch and compute.
    const m = await this.getManifest(repo, reference)
    return {digest: m.digest, mediaType: m.mediaType, size: m.bytes.length}
  }

  /**
   * A verified stream of the blob (VerifiedBlobStream): it errors with VerifyError if the bytes'
   * length or sha256 differ from `size`/`digest`, and its last chunk and its end come only after
   * the digest matched. Resumes with `Range` after connection failures.
   */
  async getBlob(repo: string, digest: string, size: number): Promise<Readable> {
    checkRepo(repo)
    checkDigest(digest)
    if (!Number.isSafeInteger(size) || size < 0) throw new InputError('registry.invalid_size', `invalid blob size ${size}`)
    const first = await this.openBlob(repo, digest, 0)
    return new VerifiedBlobStream(this, repo, digest, size, first.res, first.start)
  }

  async hasBlob(repo: string, digest: string): Promise<boolean> {
    checkRepo(repo)
    checkDigest(digest)
    return this.request(
      {
        method: 'HEAD',
        url: `/v2/${repo}/blobs/${digest}`,
        scopes: [pullScope(repo)],
        expect: [200, 404],
        what: `blob ${this.host}/${repo}@${digest}`,
      },
      async (res) => {
        drain(res)
        return res.statusCode === 200
      },
    )
  }

  /**
   * Make `digest` present in `repo`: HEAD first ('exists'), then a cross-repo mount from
   * `mountFrom` ('mounted'), else a monolithic POST + PUT upload of `open()` ('uploaded').
   * `open` may be called again on retry and must return a fresh stream of exactly `size` bytes.
   */
  async putBlob(
    repo: string,
    digest: string,
    size: number,
    open: () => Readable,
    opts: {mountFrom?: string} = {},
  ): Promise<PutBlobResult> {
    checkRepo(repo)
    checkDigest(digest)
    if (opts.mountFrom) checkRepo(opts.mountFrom)
    if (!Number.isSafeInteger(size) || size < 0) throw new InputError('registry.invalid_size', `invalid blob size ${size}`)
    if (await this.hasBlob(repo, digest)) return 'exists'
    const what = `blob ${this.host}/${repo}@${digest}`
    const scopes = [pushScope(repo)]
    let location: URL | undefined
    if (opts.mountFrom && opts.mountFrom !== repo) {
      scopes.push(pullScope(opts.mountFrom))
      const q = new URLSearchParams({mount: digest, from: opts.mountFrom})
      const r = await this.request(
        {method: 'POST', url: `/v2/${repo}/blobs/uploads/?${q}`, headers: {'Content-Length': '0'}, scopes, expect: [201, 202], what},
        async (res) => {
          drain(res)
          return {status: res.statusCode, location: headerOne(res.headers.location), url: res.url}
        },
      )
      if (r.status === 201) return 'mounted'
      if (r.location) location = new URL(r.location, `${this.origin}/v2/${repo}/blobs/uploads/`)
    }
    const backoff = new Backoff(this.policy)
    for (;;) {
      try {
        if (!location) location = await this.startUpload(repo, scopes, what)
        const put = new URL(location)
        put.searchParams.set('digest', digest)
        await this.attempt(
          {
            method: 'PUT',
            url: put,
            headers: {'Content-Type': 'application/octet-stream'},
            body: open,
            bodyLength: size,
            scopes,
            expect: [201, 204],
            what,
          },
          async (res) => {
            drain(res)
            const got = headerOne(res.headers['docker-content-digest'])
            if (got && got.startsWith('sha256:') && got !== digest) {
              throw new VerifyError('registry.digest_mismatch', `${what}: registry stored digest ${got}`, {entry: what})
            }
          },
        )
        return 'uploaded'
      } catch (e) {
        if (!(e instanceof Retryable)) throw e
        // A failed PUT may have left a half-written session: start a fresh one.
        location = undefined
        await this.backoffOrThrow(backoff, e, 'PUT', what)
      }
    }
  }

  async putManifest(repo: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    checkRepo(repo)
    const byDigest = checkReference(reference)
    const what = this.refString(repo, reference)
    if (bytes.length > MAX_MANIFEST_BYTES) throw tooLarge(what)
    if (!MANIFEST_MEDIA_TYPES.includes(mediaType)) {
      throw new InputError('registry.unsupported_media_type', `cannot push manifest of media type ${mediaType}`)
    }
    const digest = sha256Digest(bytes)
    if (byDigest && digest !== reference) {
      throw new VerifyError('registry.digest_mismatch', `manifest bytes hash to ${digest}, not ${reference}`, {entry: what})
    }
    await this.request(
      {
        method: 'PUT',
        url: `/v2/${repo}/manifests/${reference}`,
        headers: {'Content-Type': mediaType},
        body: bytes,
        scopes: [pushScope(repo)],
        expect: [200, 201, 202, 204],
        what: `manifest ${what}`,
      },
      async (res) => {
        drain(res)
        const got = headerOne(res.headers['docker-content-digest'])
        if (got && got.startsWith('sha256:') && got !== digest) {
          throw new VerifyError('registry.digest_mismatch', `manifest ${what}: registry stored digest ${got}, expected ${digest}`, {entry: what})
        }
      },
    )
    return digest
  }

  /** Repository names from `/v2/_catalog` (best effort: many registries disable it; then []). */
  async catalog(max = 1000): Promise<string[]> {
    try {
      return await this.request(
        {method: 'GET', url: `/v2/_catalog?n=${max}`, scopes: ['registry:catalog:*'], expect: [200], what: `catalog of ${this.host}`},
        async (res) => {
          const body = await readBody(res, MAX_SMALL_BODY, () => new AirlockError('registry.bad_response', `catalog of ${this.host} too large`))
          const j = JSON.parse(body.toString('utf8')) as {repositories?: unknown}
          return Array.isArray(j.repositories) ? j.repositories.filter((x): x is string => typeof x === 'string') : []
        },
      )
    } catch {
      return []
    }
  }

  async listTags(repo: string): Promise<string[]> {
    checkRepo(repo)
    const tags: string[] = []
    let url: URL | string | undefined = `/v2/${repo}/tags/list`
    for (let page = 0; url && page < 10_000; page++) {
      const r: {tags: string[]; next?: string} = await this.request(
        {method: 'GET', url, scopes: [pullScope(repo)], expect: [200], what: `repository ${this.host}/${repo}`},
        async (res) => {
          const body = await readBody(res, MAX_SMALL_BODY, () => new AirlockError('registry.bad_response', `tag list of ${this.host}/${repo} too large`))
          let j: {tags?: unknown}
          try {
            j = JSON.parse(body.toString('utf8'))
          } catch {
            throw new AirlockError('registry.bad_response', `invalid tag list JSON from ${this.host}/${repo}`)
          }
          const t = Array.isArray(j.tags) ? j.tags.filter((x): x is string => typeof x === 'string') : []
          const link = headerOne(res.headers.link)
          const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null
          return {tags: t, next: m ? m[1] : undefined}
        },
      )
      tags.push(...r.tags)
      url = r.next ? new URL(r.next, this.origin) : undefined
    }
    return tags
  }

  // ---------------------------------------------------------------- internals

  private refString(repo: string, reference: string): string {
    return `${this.host}/${repo}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`
  }

  /** @internal Open a blob GET at `offset` (Range when > 0). `start` is where the body begins. */
  async openBlob(repo: string, digest: string, offset: number, noRetry = false): Promise<{res: http.IncomingMessage; start: number; ranges: boolean}> {
    const req: Req = {
      method: 'GET',
      url: `/v2/${repo}/blobs/${digest}`,
      headers: offset > 0 ? {Range: `bytes=${offset}-`} : {},
      scopes: [pullScope(repo)],
      expect: [200, 206],
      what: `blob ${this.host}/${repo}@${digest}`,
    }
    const consume = async (res: http.IncomingMessage) => {
      let start = 0
      if (res.statusCode === 206) {
        const m = /^bytes\s+(\d+)-\d+\/(\d+|\*)$/.exec(headerOne(res.headers['content-range']) ?? '')
        if (!m) {
          res.destroy()
          throw new AirlockError('registry.bad_response', `${req.what}: invalid Content-Range in partial response`)
        }
        start = Number(m[1])
        if (start > offset) {
          res.destroy()
          throw new AirlockError('registry.bad_response', `${req.what}: server resumed at byte ${start}, asked for ${offset}`)
        }
      }
      const ranges = res.statusCode === 206 || /bytes/i.test(headerOne(res.headers['accept-ranges']) ?? '')
      return {res, start, ranges}
    }
    return noRetry ? this.attempt(req, consume) : this.request(req, consume)
  }

  /** @internal */
  get retryPolicy(): RetryPolicy {
    return this.policy
  }

  /** @internal Wait per the backoff (reporting onRetry) or throw the final error. */
  async backoffOrThrow(backoff: Backoff, e: Retryable | NetworkError, method: string, url: string): Promise<void> {
    const r = e instanceof Retryable ? e : this.netRetryable(e)
    const delay = backoff.next(r.retryAfterMs)
    if (delay === undefined) throw r.final
    this.onRetry?.({attempt: backoff.attempt, retries: this.policy.retries, delayMs: delay, reason: r.reason, method, url})
    await sleep(delay)
  }

  private netRetryable(e: NetworkError): Retryable {
    return new Retryable(e.code, new AirlockError('registry.unreachable', `registry ${this.host} unreachable: ${e.code}`, {cause: e}))
  }

  private async startUpload(repo: string, scopes: string[], what: string): Promise<URL> {
    return this.request(
      {method: 'POST', url: `/v2/${repo}/blobs/uploads/`, headers: {'Content-Length': '0'}, scopes, expect: [202], what},
      async (res) => {
        drain(res)
        const loc = headerOne(res.headers.location)
        if (!loc) throw new AirlockError('registry.bad_response', `${what}: upload started without a Location header`)
        return new URL(loc, `${this.origin}/v2/${repo}/blobs/uploads/`)
      },
    )
  }

  /** Retry loop around one logical request. */
  private async request<T>(req: Req, consume: (res: http.IncomingMessage) => Promise<T>): Promise<T> {
    const backoff = new Backoff(this.policy)
    for (;;) {
      try {
        return await this.attempt(req, consume)
      } catch (e) {
        if (!(e instanceof Retryable)) throw e
        await this.backoffOrThrow(backoff, e, req.method, String(this.resolve(req.url)))
      }
    }
  }

  private resolve(u: URL | string): URL {
    return typeof u === 'string' ? new URL(u, this.origin) : u
  }

  private credentials(): Promise<Credentials | undefined> {
    if (!this.creds) {
      const src = this.credSource
      this.creds = (typeof src === 'function' ? src() : Promise.resolve(src)).then((c) => {
        if (c) for (const s of [c.password, c.identityToken]) if (s) this.secrets.add(s)
        if (c?.username && c.password) this.secrets.add(Buffer.from(`${c.username}:${c.password}`).toString('base64'))
        return c
      })
    }
    return this.creds
  }

  /** Remove every known secret from a message built from server-provided text. */
  private redact(s: string): string {
    let out = s
    for (const secret of this.secrets) if (secret.length >= 4) out = out.split(secret).join('***')
    return out
  }

  /** One exchange with auth and redirects; failures worth retrying are thrown as Retryable. */
  private async attempt<T>(req: Req, consume: (res: http.IncomingMessage) => Promise<T>): Promise<T> {
    let url = this.resolve(req.url)
    let method = req.method
    let body = req.body
    let authRetried = false
    let sentAuth: 'none' | 'basic' | 'bearer' = 'none'
    for (let redirects = 0; ; ) {
      const sameOrigin = url.origin === this.origin
      const headers: Record<string, string> = {'User-Agent': this.userAgent, ...req.headers}
      sentAuth = 'none'
      if (sameOrigin) {
        const a = await this.authorization(req.scopes)
        if (a) {
          headers.Authorization = a.header
          sentAuth = a.kind
        }
      } else {
        // Never forward credentials to another origin (blob storage redirects).
        delete headers.Authorization
      }
      let res: http.IncomingMessage
      try {
        res = await send({url, method, headers, body, bodyLength: req.bodyLength, agent: this.agentFor(url), timeoutMs: this.timeoutMs})
      } catch (e) {
        throw this.toRetryable(classifyError(e, this.host))
      }
      const status = res.statusCode ?? 0

      if (status === 401 && sameOrigin) {
        const ch = parseChallenge(res.headers['www-authenticate'])
        const body401 = await this.errorText(res)
        if (!authRetried && ch && (await this.acceptChallenge(ch, req.scopes, sentAuth))) {
          authRetried = true
          continue
        }
        const creds = await this.credentials()
        throw new AirlockError(
          'registry.unauthorized',
          creds
            ? `${req.what}: credentials for ${this.host} were rejected (401${body401 ? `: ${body401}` : ''})`
            : `${req.what}: ${this.host} requires authentication and no credentials are configured (bundle.yaml registries.${this.host}.auth, --registry-config or docker login)`,
        )
      }

      if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
        drain(res)
        if (++redirects > MAX_REDIRECTS) throw new AirlockError('registry.bad_response', `${req.what}: too many redirects`)
        url = new URL(res.headers.location, url)
        if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
          method = method === 'HEAD' ? 'HEAD' : 'GET'
          body = undefined
        }
        continue
      }

      if (status >= 500 || status === 429) {
        const text = await this.errorText(res)
        const code = status === 429 ? 'registry.rate_limited' : 'registry.server_error'
        throw new Retryable(
          `HTTP ${status}`,
          new AirlockError(code, `${req.what}: ${this.host} answered HTTP ${status}${text ? ` (${text})` : ''}`),
          parseRetryAfter(res.headers['retry-after']),
        )
      }

      if (req.expect.includes(status)) {
        try {
          return await consume(res)
        } catch (e) {
          res.destroy()
          throw this.toRetryable(classifyError(e, this.host))
        }
      }
      throw await this.statusError(res, req)
    }
  }

  private toRetryable(e: unknown): unknown {
    return e instanceof NetworkError ? this.netRetryable(e) : e
  }

  private agentFor(url: URL): http.Agent {
    return url.protocol === 'https:' ? this.httpsAgent : this.httpAgent
  }

  /** The error code/message of a registry error body, capped and redacted ("manifest unknown"). */
  private async errorText(res: http.IncomingMessage): Promise<string> {
    let buf: Buffer
    try {
      buf = await readBody(res, MAX_ERROR_BODY, () => new Error('too large'))
    } catch {
      return ''
    }
    const s = buf.toString('utf8').trim()
    if (!s) return ''
    try {
      const j = JSON.parse(s) as {errors?: Array<{code?: string; message?: string}>}
      if (Array.isArray(j.errors) && j.errors.length > 0) {
        const e = j.errors[0]
        return this.redact(String(e.message || e.code || '')).slice(0, 300)
      }
    } catch {
      /* not JSON */
    }
    return this.redact(s.replace(/\s+/g, ' ')).slice(0, 200)
  }

  private async statusError(res: http.IncomingMessage, req: Req): Promise<AirlockError> {
    const status = res.statusCode ?? 0
    const text = req.method === 'HEAD' ? '' : await this.errorText(res)
    if (req.method === 'HEAD') drain(res)
    const subject = req.what.replace(/^\w+ /, '')
    switch (status) {
      case 404:
        return new AirlockError('registry.not_found', `${text || `${req.what.split(' ')[0]} unknown`}: ${subject}`)
      case 403:
        return new AirlockError('registry.denied', `${req.what}: access denied by ${this.host}${text ? ` (${text})` : ''}`)
      case 400:
        if (/digest/i.test(text)) return new VerifyError('registry.digest_mismatch', `${req.what}: ${text}`, {entry: subject})
        return new AirlockError('registry.rejected', `${req.what}: ${this.host} rejected the request (${text || 'HTTP 400'})`)
      case 405:
        return new AirlockError('registry.unsupported', `${req.what}: ${this.host} does not allow ${req.method} (${text || 'HTTP 405'})`)
      default:
        return new AirlockError('registry.http_error', `${req.what}: unexpected HTTP ${status} from ${this.host}${text ? ` (${text})` : ''}`)
    }
  }

  // ---- auth ----

  private async authorization(scopes: string[]): Promise<{header: string; kind: 'basic' | 'bearer'} | undefined> {
    const ch = this.challenge
    if (!ch) return undefined
    if (ch.scheme === 'basic') {
      const c = await this.credentials()
      if (!c?.username || c.password === undefined) return undefined
      return {header: `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`, kind: 'basic'}
    }
    const t = await this.token(ch, scopes)
    return {header: `Bearer ${t}`, kind: 'bearer'}
  }

  /** Adopt a 401 challenge. Returns true when retrying the request with new auth makes sense. */
  private async acceptChallenge(ch: Challenge, scopes: string[], sent: 'none' | 'basic' | 'bearer'): Promise<boolean> {
    if (ch.scheme === 'basic') {
      if (sent === 'basic') return false // our credentials were rejected
      const c = await this.credentials()
      if (!c?.username || c.password === undefined) return false
      this.challenge = ch
      return true
    }
    const want = [...scopes]
    if (ch.scope) for (const s of ch.scope.split(' ')) if (s && !want.includes(s)) want.push(s)
    this.challenge = {scheme: 'bearer', realm: ch.realm, service: ch.service}
    this.tokens.delete(this.tokenKey(this.challenge, want))
    if (want.length !== scopes.length) scopes.splice(0, scopes.length, ...want)
    return true
  }

  private tokenKey(ch: {realm: string; service?: string}, scopes: string[]): string {
    return `${ch.realm}|${ch.service ?? ''}|${[...scopes].sort().join(' ')}`
  }

  private async token(ch: Extract<Challenge, {scheme: 'bearer'}>, scopes: string[]): Promise<string> {
    const key = this.tokenKey(ch, scopes)
    const cached = this.tokens.get(key)
    if (cached && cached.expiresAt > Date.now()) return cached.value
    const realm = new URL(ch.realm)
    const c = await this.credentials()
    const plainRemote = realm.protocol !== 'https:' && !isLoopbackHost(realm.host) && this.scheme === 'https'
    if (plainRemote && c) {
      throw new AirlockError('registry.insecure_realm', `refusing to send credentials for ${this.host} to a plain-HTTP token service (${realm.host})`)
    }
    const headers: Record<string, string> = {'User-Agent': this.userAgent}
    let method = 'GET'
    let body: Buffer | undefined
    if (c?.identityToken) {
      method = 'POST'
      const form = new URLSearchParams({grant_type: 'refresh_token', refresh_token: c.identityToken, client_id: 'airlock'})
      if (ch.service) form.set('service', ch.service)
      if (scopes.length) form.set('scope', scopes.join(' '))
      body = Buffer.from(form.toString())
      headers['Content-Type'] = 'application/x-www-form-urlencoded'
    } else {
      if (ch.service) realm.searchParams.set('service', ch.service)
      for (const s of scopes) realm.searchParams.append('scope', s)
      if (c?.username && c.password !== undefined) {
        headers.Authorization = `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`
      }
    }
    let res: http.IncomingMessage
    try {
      res = await send({url: realm, method, headers, body, agent: this.agentFor(realm), timeoutMs: this.timeoutMs})
    } catch (e) {
      throw this.toRetryable(classifyError(e, realm.host))
    }
    const status = res.statusCode ?? 0
    if (status === 401 || status === 403) {
      const text = await this.errorText(res)
      throw new AirlockError(
        'registry.unauthorized',
        c
          ? `token service for ${this.host} rejected the credentials (HTTP ${status}${text ? `: ${text}` : ''})`
          : `${this.host} requires authentication and no credentials are configured (HTTP ${status} from its token service)`,
      )
    }
    if (status >= 500 || status === 429) {
      drain(res)
      throw new Retryable(`token HTTP ${status}`, new AirlockError('registry.server_error', `token service for ${this.host} answered HTTP ${status}`), parseRetryAfter(res.headers['retry-after']))
    }
    if (status !== 200) {
      const text = await this.errorText(res)
      throw new AirlockError('registry.unauthorized', `token service for ${this.host} answered HTTP ${status}${text ? ` (${text})` : ''}`)
    }
    let j: {token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown}
    try {
      j = JSON.parse((await readBody(res, 1024 * 1024, () => new Error('too large'))).toString('utf8'))
    } catch (e) {
      const n = classifyError(e, realm.host)
      if (n instanceof NetworkError) throw this.toRetryable(n)
      throw new AirlockError('registry.bad_response', `invalid token response from the token service of ${this.host}`)
    }
    const value = typeof j.token === 'string' && j.token ? j.token : typeof j.access_token === 'string' ? j.access_token : ''
    if (!value) throw new AirlockError('registry.bad_response', `token service for ${this.host} returned no token`)
    this.secrets.add(value)
    const ttl = typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : 60
    const issued = typeof j.issued_at === 'string' ? Date.parse(j.issued_at) : Number.NaN
    const base = Number.isNaN(issued) || issued > Date.now() ? Date.now() : issued
    const margin = Math.min(30, ttl / 4)
    this.tokens.set(key, {value, expiresAt: base + (ttl - margin) * 1000})
    return value
  }
}

// ------------------------------------------------------------------ helpers

function pullScope(repo: string): string {
  return `repository:${repo}:pull`
}

function pushScope(repo: string): string {
  return `repository:${repo}:pull,push`
}

function checkRepo(repo: string): void {
  if (!REPO_RE.test(repo) || repo.length > 255) throw new InputError('registry.invalid_repository', `invalid repository name: ${JSON.stringify(repo)}`)
}

function checkDigest(d: string): void {
  if (!DIGEST_RE.test(d)) throw new InputError('registry.invalid_digest', `invalid digest: ${JSON.stringify(d)}`)
}

/** Validate a tag or digest; true when it is a digest. */
function checkReference(ref: string): boolean {
  if (DIGEST_RE.test(ref)) return true
  if (TAG_RE.test(ref)) return false
  throw new InputError('registry.invalid_reference', `invalid tag or digest: ${JSON.stringify(ref)}`)
}

function tooLarge(what: string): VerifyError {
  return new VerifyError('registry.manifest_too_large', `manifest ${what} is larger than ${MAX_MANIFEST_BYTES} bytes`, {entry: what})
}

function schema1Error(what: string): AirlockError {
  return new AirlockError(
    'registry.unsupported_manifest',
    `manifest ${what} is a Docker schema 1 manifest, which airlock does not support (re-push it with a current docker/skopeo)`,
  )
}

/** Decide the manifest media type from Content-Type and the body's `mediaType`, rejecting disagreement. */
function manifestMediaType(bytes: Buffer, contentType: string, what: string): string {
  let j: {mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown; config?: unknown; layers?: unknown}
  try {
    j = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw new VerifyError('registry.bad_manifest', `manifest ${what} is not valid JSON`, {entry: what})
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw new VerifyError('registry.bad_manifest', `manifest ${what} is not a JSON object`, {entry: what})
  if (j.schemaVersion === 1) throw schema1Error(what)
  const bodyType = typeof j.mediaType === 'string' ? j.mediaType : undefined
  if (bodyType && SCHEMA1_TYPES.has(bodyType)) throw schema1Error(what)
  const ctKnown = MANIFEST_MEDIA_TYPES.includes(contentType)
  if (ctKnown && bodyType && bodyType !== contentType) {
    throw new VerifyError(
      'registry.media_type_mismatch',
      `manifest ${what}: Content-Type ${contentType} disagrees with the manifest's mediaType ${bodyType}`,
      {entry: what},
    )
  }
  let mt = ctKnown ? contentType : bodyType
  if (!mt) {
    // Generic Content-Type and no mediaType field: OCI allows that; infer from the shape.
    if (Array.isArray(j.manifests)) mt = MediaType.OCI_INDEX
    else if (j.config && Array.isArray(j.layers)) mt = MediaType.OCI_MANIFEST
  }
  if (!mt || !MANIFEST_MEDIA_TYPES.includes(mt)) {
    throw new AirlockError('registry.unsupported_media_type', `manifest ${what} has unsupported media type ${mt ?? contentType ?? 'unknown'}`)
  }
  return mt
}
