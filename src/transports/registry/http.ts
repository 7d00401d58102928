/**
 * Low-level HTTP plumbing for the registry client: one request/response exchange on node:http(s)
 * with keep-alive agents, network-error classification, WWW-Authenticate parsing and the
 * exponential backoff policy. No auth, redirect or retry logic lives here (see client.ts).
 */
import http from 'node:http'
import https from 'node:https'
import {Readable} from 'node:stream'

import {AirlockError} from '../../core/errors.js'

export interface SendOptions {
  url: URL
  method: string
  headers: Record<string, string>
  /** Request body: a buffer, or a factory for a fresh stream of exactly `bodyLength` bytes. */
  body?: Buffer | (() => Readable)
  bodyLength?: number
  agent: http.Agent
  /** Socket idle timeout (ms) for the whole exchange, including reading the response body. */
  timeoutMs: number
}

/** A network-level failure (reset, refused, timeout): worth retrying. */
export class NetworkError extends Error {
  readonly code: string
  constructor(code: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : {cause})
    this.name = 'NetworkError'
    this.code = code
  }
}

const RETRYABLE_NET_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ESOCKETTIMEDOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
  'HPE_INVALID_CONSTANT',
  'HPE_INVALID_CHUNK_SIZE',
  'HPE_UNEXPECTED_CONTENT_LENGTH',
])

const TLS_CODE_RE = /^(CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_TLS_|ERR_SSL_|EPROTO$)/

/** Classify a thrown socket/HTTP error: NetworkError (retryable), TLS AirlockError, or rethrow as is. */
export function classifyError(e: unknown, host: string): unknown {
  if (e instanceof AirlockError || e instanceof NetworkError) return e
  const code = (e as {code?: string})?.code ?? ''
  const msg = (e as Error)?.message ?? String(e)
  if (RETRYABLE_NET_CODES.has(code) || msg === 'aborted' || msg === 'socket hang up') {
    return new NetworkError(code || 'ECONNRESET', `${code || msg}`, e)
  }
  if (TLS_CODE_RE.test(code)) {
    return new AirlockError(
      'registry.tls',
      `TLS error talking to ${host}: ${msg} (use --ca-file / registries[host].caFile for a private CA)`,
      {cause: e},
    )
  }
  if (code === 'ENOTFOUND') {
    return new AirlockError('registry.unreachable', `cannot resolve registry host ${host}`, {cause: e})
  }
  return e
}

export function isRetryableNetworkError(e: unknown): e is NetworkError {
  return e instanceof NetworkError
}

/** One HTTP exchange. Resolves with the response as soon as headers arrive (body not consumed). */
export function send(o: SendOptions): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const mod = o.url.protocol === 'https:' ? https : http
    const headers: Record<string, string> = {...o.headers}
    if (Buffer.isBuffer(o.body)) headers['Content-Length'] = String(o.body.length)
    else if (o.body) headers['Content-Length'] = String(o.bodyLength ?? 0)
    let settled = false
    let response: http.IncomingMessage | undefined
    const req = mod.request(o.url, {method: o.method, headers, agent: o.agent}, (res) => {
      settled = true
      response = res
      // The timeout keeps guarding the socket while the caller reads the body.
      resolve(res)
    })
    req.setTimeout(o.timeoutMs, () => {
      // A body paused by backpressure (slow consumer) is not a stalled server.
      if (response && response.isPaused() && !response.complete) return
      req.destroy(Object.assign(new Error(`no data for ${o.timeoutMs} ms`), {code: 'ETIMEDOUT'}))
    })
    req.on('error', (err) => {
      if (!settled) {
        settled = true
        reject(err)
      }
    })
    if (o.body === undefined) {
      req.end()
    } else if (Buffer.isBuffer(o.body)) {
      req.end(o.body)
    } else {
      let src: Readable
      try {
        src = o.body()
      } catch (e) {
        settled = true
        req.destroy()
        reject(e)
        return
      }
      const expected = o.bodyLength ?? 0
      let sent = 0
      const fail = (err: Error) => {
        src.destroy()
        req.destroy(err)
        if (!settled) {
          settled = true
          reject(err)
        }
      }
      src.on('data', (chunk: Buffer) => {
        sent += chunk.length
        if (sent > expected) {
          fail(new AirlockError('registry.upload_size_mismatch', `upload source produced more than the expected ${expected} bytes`))
          return
        }
        if (!req.write(chunk)) src.pause()
      })
      req.on('drain', () => src.resume())
      src.on('end', () => {
        if (sent !== expected) {
          fail(new AirlockError('registry.upload_size_mismatch', `upload source produced ${sent} bytes, expected ${expected}`))
          return
        }
        req.end()
      })
      src.on('error', (err) => fail(err instanceof AirlockError ? err : new AirlockError('registry.upload_source', `reading upload source failed: ${err.message}`, {cause: err})))
      req.on('close', () => src.destroy())
    }
  })
}

/** Read a whole (small) body, refusing more than `max` bytes without buffering beyond that. */
export function readBody(res: http.IncomingMessage, max: number, onTooLarge: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const len = Number(res.headers['content-length'])
    if (Number.isFinite(len) && len > max) {
      res.destroy()
      reject(onTooLarge())
      return
    }
    const chunks: Buffer[] = []
    let total = 0
    let done = false
    res.on('data', (c: Buffer) => {
      if (done) return
      total += c.length
      if (total > max) {
        done = true
        res.destroy()
        reject(onTooLarge())
        return
      }
      chunks.push(c)
    })
    res.on('end', () => {
      if (done) return
      done = true
      resolve(Buffer.concat(chunks))
    })
    res.on('error', (err) => {
      if (done) return
      done = true
      reject(err)
    })
    res.on('close', () => {
      if (done) return
      if (!res.complete) {
        done = true
        reject(Object.assign(new Error('aborted'), {code: 'ECONNRESET'}))
      }
    })
  })
}

/** Throw away a response body we do not need, so the keep-alive socket can be reused. */
export function drain(res: http.IncomingMessage): void {
  res.on('error', () => {})
  res.resume()
}

// ---- WWW-Authenticate ----

export type Challenge =
  | {scheme: 'basic'; realm?: string}
  | {scheme: 'bearer'; realm: string; service?: string; scope?: string; error?: string}

/** Parse `WWW-Authenticate` (Basic or Bearer with quoted or token params). Unknown schemes → undefined. */
export function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  const values = Array.isArray(header) ? header : header ? [header] : []
  for (const h of values) {
    const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(h)
    if (!m) continue
    const scheme = m[1].toLowerCase()
    const params: Record<string, string> = {}
    const re = /([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy
    const rest = m[2]
    re.lastIndex = 0
    let pm: RegExpExecArray | null
    while (re.lastIndex < rest.length && (pm = re.exec(rest))) {
      params[pm[1].toLowerCase()] = pm[2] !== undefined ? pm[2].replace(/\\(.)/g, '$1') : pm[3]
    }
    if (scheme === 'basic') return {scheme: 'basic', realm: params.realm}
    if (scheme === 'bearer' && params.realm) {
      return {scheme: 'bearer', realm: params.realm, service: params.service, scope: params.scope, error: params.error}
    }
  }
  return undefined
}

// ---- backoff ----

export interface RetryPolicy {
  /** Retries after the first attempt (default 5). */
  retries: number
  /** First backoff delay in ms (default 500); doubles each retry, with jitter. */
  baseDelayMs: number
  /** Cap for one delay (default 30 s). */
  maxDelayMs: number
  /** Cap for the sum of all delays of one operation (default 120 s). */
  maxTotalWaitMs: number
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {retries: 5, baseDelayMs: 500, maxDelayMs: 30_000, maxTotalWaitMs: 120_000}

export class Backoff {
  attempt = 0
  waited = 0
  constructor(private readonly p: RetryPolicy) {}

  /** The delay before the next retry, or undefined when the budget is spent. */
  next(retryAfterMs?: number): number | undefined {
    if (this.attempt >= this.p.retries) return undefined
    const exp = Math.min(this.p.maxDelayMs, this.p.baseDelayMs * 2 ** this.attempt)
    let delay = exp / 2 + Math.random() * (exp / 2)
    if (retryAfterMs !== undefined && retryAfterMs > delay) delay = Math.min(retryAfterMs, this.p.maxTotalWaitMs)
    if (this.waited + delay > this.p.maxTotalWaitMs) return undefined
    this.attempt++
    this.waited += delay
    return Math.round(delay)
  }

  reset(): void {
    this.attempt = 0
    this.waited = 0
  }
}

/** `Retry-After` as milliseconds (delta-seconds or HTTP date), or undefined. */
export function parseRetryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v
  if (!s) return undefined
  if (/^\d+$/.test(s.trim())) return Number(s.trim()) * 1000
  const t = Date.parse(s)
  if (Number.isNaN(t)) return undefined
  return Math.max(0, t - Date.now())
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

export function isLoopbackHost(host: string): boolean {
  // host may carry a port: "127.0.0.1:5000", "[::1]:5000", "localhost:5000"
  let h = host
  if (h.startsWith('[')) h = h.slice(1, h.indexOf(']'))
  else if (h.split(':').length === 2) h = h.split(':')[0]
  h = h.toLowerCase()
  if (h === 'localhost' || h === '::1') return true
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}
