/**
 * One request/response exchange on node:http(s) with keep-alive agents, and the classification
 * of network failures (retryable NetworkError, TLS, DNS). No auth, redirect or retry logic lives
 * here (see request.ts).
 */
import {readFileSync} from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import {Readable} from 'node:stream'
import {rootCertificates} from 'node:tls'

import {AirlockError, InputError} from '../../../core/errors.js'

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

/** One HTTP exchange. Resolves with the response as soon as headers arrive (body not consumed). */
export function send(o: SendOptions): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const mod = o.url.protocol === 'https:' ? https : http
    const headers: Record<string, string> = {...o.headers}
    if (Buffer.isBuffer(o.body)) headers['Content-Length'] = String(o.body.length)
    else if (o.body) headers['Content-Length'] = String(o.bodyLength ?? 0)
    let settled = false
    const settleError = (err: unknown): void => {
      if (!settled) {
        settled = true
        reject(err)
      }
    }
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
    req.on('error', settleError)
    if (o.body === undefined) {
      req.end()
    } else if (Buffer.isBuffer(o.body)) {
      req.end(o.body)
    } else {
      let src: Readable
      try {
        src = o.body()
      } catch (e) {
        settleError(e)
        req.destroy()
        return
      }
      streamBody(req, src, o.bodyLength ?? 0, (err) => {
        src.destroy()
        req.destroy(err)
        settleError(err)
      })
    }
  })
}

/** Write `src` as the request body with backpressure, failing unless it is exactly `expected` bytes. */
function streamBody(req: http.ClientRequest, src: Readable, expected: number, fail: (err: Error) => void): void {
  let sent = 0
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

/** The first value of a response header. */
export function headerOne(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}

/** `Content-Type` without parameters, lowercased ("application/json"). */
export function baseMediaType(ct: string | string[] | undefined): string {
  return (headerOne(ct) ?? '').split(';')[0].trim().toLowerCase()
}

/** The keep-alive agents of one registry; HTTPS trusts Node's roots plus the PEM `caFile`. */
export class Agents {
  private readonly httpAgent = new http.Agent({keepAlive: true, maxSockets: 32})
  private readonly httpsAgent: https.Agent

  constructor(caFile?: string) {
    let ca: string[] | undefined
    if (caFile) {
      try {
        ca = [...rootCertificates, readFileSync(caFile, 'utf8')]
      } catch (e) {
        throw new InputError('registry.ca_file', `cannot read CA file ${caFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
      }
    }
    this.httpsAgent = new https.Agent({keepAlive: true, maxSockets: 32, ...(ca ? {ca} : {})})
  }

  for(url: URL): http.Agent {
    return url.protocol === 'https:' ? this.httpsAgent : this.httpAgent
  }

  /** Release keep-alive sockets. */
  destroy(): void {
    this.httpAgent.destroy()
    this.httpsAgent.destroy()
  }
}
