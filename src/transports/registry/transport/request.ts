/**
 * The request core of the registry client: one logical request = attempts with backoff; one
 * attempt = auth, the exchange, manual redirects and status handling.
 *
 * - `Authorization` goes only to the registry's own origin, never along a redirect to another
 *   one (blob storage).
 * - 5xx/429 (honouring `Retry-After`) and connection resets/timeouts are retried; once the budget
 *   is spent the last failure is thrown as a clear AirlockError.
 * - Server text in messages is scrubbed of every secret the client has seen.
 */
import type http from 'node:http'
import {Readable} from 'node:stream'

import {AirlockError, InputError} from '../../../core/errors.js'
import {Authenticator, type SentAuth} from './auth.js'
import type {CredentialSource} from './credentials.js'
import {parseChallenge} from './challenge.js'
import {networkRetryable, serverStatusRetryable, statusError, toRetryable, unauthorizedError} from './errors.js'
import {Agents, NetworkError, classifyError, drain, send} from './http.js'
import {registryEndpoint} from './origin.js'
import {Backoff, type RetryInfo, type RetryOptions, type RetryPolicy, Retryable, parseRetryAfter, retryPolicyOf, sleep} from './retry.js'
import {SecretScrubber, serverErrorText} from './scrub.js'

export interface TransportOptions extends RetryOptions {
  /** "host[:port]", e.g. "127.0.0.1:5301", "ghcr.io". */
  host: string
  /** Plain HTTP for a non-loopback host (loopback hosts always use HTTP). */
  insecure?: boolean
  /** PEM file with extra CA certificates (added to Node's default roots). */
  caFile?: string
  credentials?: CredentialSource
  /** Socket idle timeout, ms (default 60 000). */
  timeoutMs?: number
  userAgent?: string
  onRetry?: (info: RetryInfo) => void
}

export interface TransportRequest {
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

export type Consume<T> = (res: http.IncomingMessage) => Promise<T>

const MAX_REDIRECTS = 10
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

/** Where one attempt is: the URL, method and body change along redirects. */
interface Hop {
  url: URL
  method: string
  body?: Buffer | (() => Readable)
}

export class RegistryTransport {
  readonly host: string
  /** e.g. "https://ghcr.io"; the only origin that sees credentials. */
  readonly origin: string
  readonly policy: RetryPolicy
  private readonly timeoutMs: number
  private readonly userAgent: string
  private readonly onRetry?: (info: RetryInfo) => void
  private readonly agents: Agents
  private readonly scrubber = new SecretScrubber()
  private readonly auth: Authenticator

  constructor(o: TransportOptions) {
    if (!o.host || /[\s/@]/.test(o.host)) throw new InputError('registry.invalid_host', `invalid registry host: ${JSON.stringify(o.host)}`)
    this.host = o.host
    const {scheme, origin} = registryEndpoint(o.host, o.insecure)
    this.origin = origin
    this.policy = retryPolicyOf(o)
    this.timeoutMs = o.timeoutMs ?? 60_000
    this.userAgent = o.userAgent ?? 'airlock'
    this.onRetry = o.onRetry
    this.agents = new Agents(o.caFile)
    const tokenService = {host: o.host, scheme, userAgent: this.userAgent, timeoutMs: this.timeoutMs, agents: this.agents, scrubber: this.scrubber}
    this.auth = new Authenticator(o.credentials, tokenService)
  }

  /** Release keep-alive sockets. */
  close(): void {
    this.agents.destroy()
  }

  /** A path on this registry as an absolute URL. */
  resolve(u: URL | string): URL {
    return typeof u === 'string' ? new URL(u, this.origin) : u
  }

  /** Retry loop around one logical request. */
  async request<T>(req: TransportRequest, consume: Consume<T>): Promise<T> {
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

  /** Wait per the backoff (reporting onRetry) or throw the final error. */
  async backoffOrThrow(backoff: Backoff, e: Retryable | NetworkError, method: string, url: string): Promise<void> {
    const r = e instanceof Retryable ? e : networkRetryable(this.host, e)
    const delay = backoff.next(r.retryAfterMs)
    if (delay === undefined) throw r.final
    this.onRetry?.({attempt: backoff.attempt, retries: this.policy.retries, delayMs: delay, reason: r.reason, method, url})
    await sleep(delay)
  }

  /** One exchange with auth and redirects; failures worth retrying are thrown as Retryable. */
  async attempt<T>(req: TransportRequest, consume: Consume<T>): Promise<T> {
    const hop: Hop = {url: this.resolve(req.url), method: req.method, body: req.body}
    let authRetried = false
    for (let redirects = 0; ; ) {
      const sameOrigin = hop.url.origin === this.origin
      const {headers, sentAuth} = await this.headersFor(req, sameOrigin)
      const res = await this.exchange(hop, headers, req.bodyLength)
      const status = res.statusCode ?? 0
      if (status === 401 && sameOrigin) {
        await this.handleUnauthorized(res, req, sentAuth, authRetried)
        authRetried = true
        continue
      }
      if (REDIRECT_STATUSES.has(status) && res.headers.location) {
        drain(res)
        if (++redirects > MAX_REDIRECTS) throw new AirlockError('registry.bad_response', `${req.what}: too many redirects`)
        followRedirect(hop, status, res.headers.location)
        continue
      }
      if (status >= 500 || status === 429) {
        const text = await serverErrorText(res, this.scrubber)
        throw serverStatusRetryable(req.what, this.host, status, text, parseRetryAfter(res.headers['retry-after']))
      }
      if (req.expect.includes(status)) return this.consume(res, consume)
      throw await this.unexpectedStatus(res, req)
    }
  }

  private async headersFor(req: TransportRequest, sameOrigin: boolean): Promise<{headers: Record<string, string>; sentAuth: SentAuth}> {
    const headers: Record<string, string> = {'User-Agent': this.userAgent, ...req.headers}
    let sentAuth: SentAuth = 'none'
    if (sameOrigin) {
      const a = await this.auth.authorization(req.scopes)
      if (a) {
        headers.Authorization = a.header
        sentAuth = a.kind
      }
    } else {
      // Never forward credentials to another origin (blob storage redirects).
      delete headers.Authorization
    }
    return {headers, sentAuth}
  }

  private async exchange(hop: Hop, headers: Record<string, string>, bodyLength: number | undefined): Promise<http.IncomingMessage> {
    try {
      return await send({url: hop.url, method: hop.method, headers, body: hop.body, bodyLength, agent: this.agents.for(hop.url), timeoutMs: this.timeoutMs})
    } catch (e) {
      throw toRetryable(this.host, classifyError(e, this.host))
    }
  }

  /** A 401 from the registry: returns when a retry with (new) auth makes sense, else throws. */
  private async handleUnauthorized(res: http.IncomingMessage, req: TransportRequest, sentAuth: SentAuth, authRetried: boolean): Promise<void> {
    const ch = parseChallenge(res.headers['www-authenticate'])
    const text = await serverErrorText(res, this.scrubber)
    if (!authRetried && ch && (await this.auth.acceptChallenge(ch, req.scopes, sentAuth))) return
    const creds = await this.auth.credentials()
    throw unauthorizedError(req.what, this.host, Boolean(creds), text)
  }

  private async consume<T>(res: http.IncomingMessage, consume: Consume<T>): Promise<T> {
    try {
      return await consume(res)
    } catch (e) {
      res.destroy()
      throw toRetryable(this.host, classifyError(e, this.host))
    }
  }

  private async unexpectedStatus(res: http.IncomingMessage, req: TransportRequest): Promise<AirlockError> {
    const text = req.method === 'HEAD' ? '' : await serverErrorText(res, this.scrubber)
    if (req.method === 'HEAD') drain(res)
    return statusError(req, res.statusCode ?? 0, text, this.host)
  }
}

/** Follow a redirect: 303 (and 301/302 after a POST) turn the request into a GET without body. */
function followRedirect(hop: Hop, status: number, location: string): void {
  hop.url = new URL(location, hop.url)
  if (status === 303 || ((status === 301 || status === 302) && hop.method === 'POST')) {
    hop.method = hop.method === 'HEAD' ? 'HEAD' : 'GET'
    hop.body = undefined
  }
}
