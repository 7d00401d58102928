/**
 * HTTP(S) downloads for `files:` URLs and classic Helm repositories: the `registries:` options of
 * the URL's host (CA, insecure, auth from named env variables), retries with backoff on 5xx/429
 * and network faults, resumed with `Range` where the server honours it, bounded, and hashed on the
 * way. Credentials go only to the URL's own origin and are never part of a message.
 */
import {createHash} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import {rm} from 'node:fs/promises'
import type http from 'node:http'

import {AirlockError, InputError} from '../core/errors.js'
import type {RegistryOptions} from '../spec/types.js'
import {resolveCredentials} from '../transports/registry/credentials.js'
import {Agents, drain, send} from '../transports/registry/transport/http.js'
import {Backoff, parseRetryAfter, retryPolicyOf, sleep} from '../transports/registry/transport/retry.js'

export interface DownloadOptions {
  registries: Record<string, RegistryOptions>
  registryConfig?: string
  retries?: number
  retryBaseDelayMs?: number
  onRetry?: (info: {host: string; attempt: number; reason: string}) => void
}

export interface Downloaded {
  digest: string
  size: number
}

class Transient extends Error {
  constructor(message: string, readonly retryAfterMs?: number) {
    super(message)
  }
}

/** A URL as shown to the user: no query string (signed URLs carry tokens there), no userinfo. */
export function showUrl(u: URL | string): string {
  const x = new URL(String(u))
  return `${x.protocol}//${x.host}${x.pathname}`
}

export class Downloader {
  private readonly agents = new Map<string, Agents>()

  constructor(private readonly opts: DownloadOptions) {}

  private agentsFor(host: string): Agents {
    let a = this.agents.get(host)
    if (!a) {
      a = new Agents(this.opts.registries[host]?.ca)
      this.agents.set(host, a)
    }
    return a
  }

  close(): void {
    for (const a of this.agents.values()) a.destroy()
  }

  private async headers(url: URL, origin: string): Promise<Record<string, string>> {
    const h: Record<string, string> = {'User-Agent': 'airlock'}
    if (url.origin !== origin) return h // never send credentials along a redirect to another origin
    const ro = this.opts.registries[url.host]
    const creds = ro?.auth ? await resolveCredentials(url.host, {auth: ro.auth, registryConfig: this.opts.registryConfig}) : undefined
    if (creds?.username !== undefined && creds.password !== undefined) h.Authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
    return h
  }

  /** GET with redirects; resolves on 200/206, throws Transient for what is worth retrying. */
  private async get(start: URL, range: number): Promise<http.IncomingMessage> {
    const ro = this.opts.registries[start.host]
    if (start.protocol === 'http:' && !ro?.insecure) {
      throw new InputError('download.failed', `${showUrl(start)}: plain HTTP needs registries: ${start.host}: {insecure: true}`)
    }
    let url = start
    for (let hops = 0; hops < 10; hops++) {
      const headers = await this.headers(url, start.origin)
      if (range > 0) headers.Range = `bytes=${range}-`
      let res: http.IncomingMessage
      try {
        res = await send({url, method: 'GET', headers, agent: this.agentsFor(url.host).for(url), timeoutMs: 60_000})
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? ''
        if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) throw new AirlockError('registry.tls', `${showUrl(url)}: TLS: ${code} (give registries: ${url.host}: {ca: FILE})`)
        throw new Transient(`${showUrl(url)}: ${code || (error as Error).message}`)
      }
      const status = res.statusCode ?? 0
      if (status >= 300 && status < 400 && res.headers.location) {
        drain(res)
        url = new URL(res.headers.location, url)
        continue
      }
      if (status === 200 || status === 206) return res
      drain(res)
      if (status >= 500 || status === 429) throw new Transient(`${showUrl(url)}: HTTP ${status}`, parseRetryAfter(res.headers['retry-after']))
      throw new AirlockError(status === 404 ? 'registry.not_found' : 'download.failed', `${showUrl(url)}: HTTP ${status}${status === 401 || status === 403 ? ` (credentials: registries: ${url.host}: auth)` : ''}`)
    }
    throw new AirlockError('download.failed', `${showUrl(start)}: too many redirects`)
  }

  /**
   * Fetch `url` into `sink` (called with each chunk in order), at most `max` bytes; retried and
   * resumed with Range. Returns the sha256 digest and size of the whole.
   */
  async fetch(url: string, max: number, sink: (chunk: Buffer) => Promise<void> | void): Promise<Downloaded> {
    const u = new URL(url)
    const backoff = new Backoff(retryPolicyOf({...(this.opts.retries === undefined ? {} : {retries: this.opts.retries}), ...(this.opts.retryBaseDelayMs === undefined ? {} : {retryBaseDelayMs: this.opts.retryBaseDelayMs})}))
    const hash = createHash('sha256')
    let got = 0
    for (;;) {
      try {
        const res = await this.get(u, got)
        if (got > 0 && res.statusCode !== 206) {
          drain(res) // the server ignored Range: cannot resume this one
          throw new AirlockError('download.failed', `${showUrl(u)}: the connection broke and the server does not resume (no Range support)`)
        }
        for await (const chunk of res as AsyncIterable<Buffer>) {
          got += chunk.length
          if (got > max) {
            res.destroy()
            throw new AirlockError('download.failed', `${showUrl(u)}: larger than the ${max} bytes allowed`)
          }
          hash.update(chunk)
          await sink(chunk)
        }
        if (!res.complete) throw new Transient(`${showUrl(u)}: connection closed early`)
        return {digest: `sha256:${hash.digest('hex')}`, size: got}
      } catch (error) {
        const t = error instanceof Transient ? error : isNetwork(error) ? new Transient(`${showUrl(u)}: ${(error as Error).message}`) : undefined
        if (!t) throw error
        const delay = backoff.next(t.retryAfterMs)
        if (delay === undefined) throw new AirlockError('download.failed', `${t.message} (gave up after retries)`)
        this.opts.onRetry?.({host: u.host, attempt: backoff.attempt, reason: t.message})
        await sleep(delay)
      }
    }
  }

  /** A small document (index.yaml, a chart) in memory. */
  async fetchBytes(url: string, max: number): Promise<{bytes: Buffer} & Downloaded> {
    const chunks: Buffer[] = []
    const d = await this.fetch(url, max, (c) => void chunks.push(c))
    return {bytes: Buffer.concat(chunks), ...d}
  }

  /** Into `file` (created; removed again on failure). */
  async fetchFile(url: string, file: string, max: number): Promise<Downloaded> {
    const out = createWriteStream(file, {flags: 'wx'})
    try {
      const d = await this.fetch(url, max, (c) => new Promise<void>((resolve, reject) => out.write(c, (e) => (e ? reject(e) : resolve()))))
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())))
      return d
    } catch (error) {
      out.destroy()
      await rm(file, {force: true})
      throw error
    }
  }
}

function isNetwork(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code ?? ''
  return /^(ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|ECONNABORTED|EAI_AGAIN|ERR_STREAM_PREMATURE_CLOSE)$/.test(code) || (e as Error)?.message === 'aborted'
}
