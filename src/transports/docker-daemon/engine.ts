/**
 * The Docker Engine API over its unix socket (no docker CLI): the socket, the negotiated API
 * version, the kind of image store, small requests and the replies' error text.
 */
import http from 'node:http'

import {AirlockError, InputError} from '../../core/errors.js'

const DEFAULT_SOCKET = '/var/run/docker.sock'
/** Largest reply body kept (dockerd's answers are small; a load's progress stream is cut here). */
export const MAX_RESPONSE = 16 * 1024 * 1024

export interface Reply {
  status: number
  body: Buffer
}

export function dockerSocketPath(host: string | undefined): string {
  if (!host) return DEFAULT_SOCKET
  if (host.startsWith('unix://')) {
    const p = host.slice('unix://'.length)
    if (!p.startsWith('/')) throw new InputError('install.docker_host', `DOCKER_HOST ${JSON.stringify(host)}: expected unix:///absolute/path`)
    return p
  }
  if (host.startsWith('/')) return host
  throw new InputError('install.docker_host', `DOCKER_HOST ${JSON.stringify(host)} is not supported: airlock talks to Docker over a local unix socket (unix:///var/run/docker.sock)`)
}

/** True for dockerd's classic (graphdriver) image store; false for the containerd image store or when unknown. */
export function classicImageStore(info: {Driver?: unknown; DriverStatus?: unknown}): boolean {
  if (typeof info.Driver !== 'string' || !info.Driver) return false
  const status = Array.isArray(info.DriverStatus) ? info.DriverStatus : []
  return !status.some((row) => Array.isArray(row) && row.some((v) => typeof v === 'string' && v.includes('containerd.snapshotter')))
}

/** Parse a JSON-lines stream from the Engine API; return its messages and the first error in it. */
export function parseJsonStream(body: string): {messages: string[]; error?: string} {
  const messages: string[] = []
  let error: string | undefined
  for (const line of body.split(/\r?\n/)) {
    const t = line.trim()
    if (!t) continue
    let obj: Record<string, unknown>
    try {
      obj = JSON.parse(t) as Record<string, unknown>
    } catch {
      messages.push(t)
      continue
    }
    const detail = obj.errorDetail as {message?: string} | undefined
    if (obj.error !== undefined || detail) {
      error ??= String(detail?.message ?? (obj.error as string | undefined) ?? 'unknown error')
      continue
    }
    if (typeof obj.stream === 'string' && obj.stream.trim()) messages.push(obj.stream.trim())
    else if (typeof obj.status === 'string' && obj.status.trim()) messages.push(obj.status.trim())
  }
  return {messages, error}
}

export function errorMessage(reply: Reply): string {
  const text = reply.body.toString('utf8')
  try {
    const j = JSON.parse(text) as {message?: string}
    if (j.message) return j.message
  } catch { /* not JSON */ }
  return text.trim().slice(0, 2000) || `HTTP ${reply.status}`
}

/** Collect a reply body, keeping at most MAX_RESPONSE bytes of it. */
export function collectReply(res: http.IncomingMessage, onEnd: (r: Reply) => void): void {
  const chunks: Buffer[] = []
  let size = 0
  res.on('data', (c: Buffer) => {
    size += c.length
    if (size <= MAX_RESPONSE) chunks.push(c)
  })
  res.on('end', () => onEnd({status: res.statusCode ?? 0, body: Buffer.concat(chunks)}))
}

/** A dockerd reached and asked for its API version and image store. */
export class DockerEngine {
  private constructor(readonly socketPath: string, readonly where: string, readonly api: string, readonly classic: boolean) {}

  /** Negotiate the API version before the archive is read (and fail early if dockerd is not there). */
  static async connect(host: string | undefined): Promise<DockerEngine> {
    const socketPath = dockerSocketPath(host)
    const where = `Docker Engine at unix://${socketPath}`
    const infoReply = request(socketPath, 'GET', '/info').catch(() => undefined)
    let version: {ApiVersion?: string; Version?: string}
    try {
      const r = await request(socketPath, 'GET', '/version')
      if (r.status !== 200) throw new Error(errorMessage(r))
      version = JSON.parse(r.body.toString('utf8')) as typeof version
    } catch (error) {
      throw new AirlockError('install.docker_unreachable', `${where} is not reachable: ${(error as Error).message}`, {cause: error})
    }
    const api = /^\d+\.\d+$/.test(version.ApiVersion ?? '') ? `/v${version.ApiVersion}` : ''
    const info = await infoReply
    let classic = false
    try {
      if (info?.status === 200) classic = classicImageStore(JSON.parse(info.body.toString('utf8')) as Record<string, unknown>)
    } catch { /* unknown store: send layers as they are */ }
    return new DockerEngine(socketPath, where, api, classic)
  }

  request(method: string, urlPath: string, timeoutMs = 60_000): Promise<Reply> {
    return request(this.socketPath, method, `${this.api}${urlPath}`, timeoutMs)
  }
}

function request(socketPath: string, method: string, urlPath: string, timeoutMs = 60_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({socketPath, method, path: urlPath, headers: {Host: 'docker'}, timeout: timeoutMs}, (res) => {
      collectReply(res, resolve)
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000}s`)))
    req.on('error', reject)
    req.end()
  })
}
