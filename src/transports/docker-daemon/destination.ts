/**
 * `--to docker`: the Docker Engine API over its unix socket (no docker CLI).
 *
 * begin() opens `POST /images/load?quiet=1` with a chunked application/x-tar body fed from a
 * VerifiedTarStream; verified blobs are piped into it as they arrive. dockerd unpacks the whole
 * body into a temporary directory and loads images only once the body has ended properly, so
 * commit() (which ends the tar and the chunked body) is the moment anything becomes visible.
 * abort() destroys the request socket and the stream: dockerd sees a body that breaks off
 * without its terminating chunk and loads nothing.
 *
 * The socket comes from `host`, else $DOCKER_HOST (`unix:///path`), else /var/run/docker.sock.
 */
import http from 'node:http'

import {AirlockError, InputError} from '../../core/errors.js'
import type {Destination, DestinationContext, InstalledImage} from '../../install/types.js'
import {VerifiedTarStream} from '../../install/tarstream.js'
import type {VerifiedHead} from '../archive/reader.js'
import {dockerRepoTags, ImageRecord} from '../archive/metadata.js'

export interface DockerOptions {
  /** `unix:///path/docker.sock` (or a plain socket path). Default $DOCKER_HOST, else /var/run/docker.sock. */
  host?: string
}

const CODE = 'install.docker_failed'
const DEFAULT_SOCKET = '/var/run/docker.sock'
const MAX_RESPONSE = 16 * 1024 * 1024

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

interface Reply {
  status: number
  body: Buffer
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
      error ??= String(detail?.message ?? obj.error ?? 'unknown error')
      continue
    }
    if (typeof obj.stream === 'string' && obj.stream.trim()) messages.push(obj.stream.trim())
    else if (typeof obj.status === 'string' && obj.status.trim()) messages.push(obj.status.trim())
  }
  return {messages, error}
}

function errorMessage(reply: Reply): string {
  const text = reply.body.toString('utf8')
  try {
    const j = JSON.parse(text) as {message?: string}
    if (j.message) return j.message
  } catch { /* not JSON */ }
  return text.trim().slice(0, 2000) || `HTTP ${reply.status}`
}

export async function dockerDestination(ctx: DestinationContext & DockerOptions): Promise<Destination> {
  const socketPath = dockerSocketPath(ctx.host ?? process.env.DOCKER_HOST)
  const where = `Docker Engine at unix://${socketPath}`

  const request = (method: string, urlPath: string, timeoutMs = 60_000): Promise<Reply> => new Promise((resolve, reject) => {
    const req = http.request({socketPath, method, path: urlPath, headers: {Host: 'docker'}, timeout: timeoutMs}, (res) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => {
        size += c.length
        if (size <= MAX_RESPONSE) chunks.push(c)
      })
      res.on('end', () => resolve({status: res.statusCode ?? 0, body: Buffer.concat(chunks)}))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000}s`)))
    req.on('error', reject)
    req.end()
  })

  // Negotiate the API version before the archive is read (and fail early if dockerd is not there).
  let version: {ApiVersion?: string; Version?: string}
  try {
    const r = await request('GET', '/version')
    if (r.status !== 200) throw new Error(errorMessage(r))
    version = JSON.parse(r.body.toString('utf8')) as typeof version
  } catch (error) {
    throw new AirlockError('install.docker_unreachable', `${where} is not reachable: ${(error as Error).message}`, {cause: error})
  }
  const api = /^\d+\.\d+$/.test(version.ApiVersion ?? '') ? `/v${version.ApiVersion}` : ''

  let images: ImageRecord[] = []
  let tar: VerifiedTarStream | undefined
  let req: http.ClientRequest | undefined
  let reply: Promise<Reply> | undefined
  /** Set when dockerd answered or the connection broke before we finished the body. */
  let early: AirlockError | undefined
  let finishing = false
  let aborted = false

  const configOf = (img: ImageRecord): string => {
    const m = img.manifests.find((x) => x.digest === img.dockerManifest)
    if (!m) throw new AirlockError('install.confirm_failed', `${img.name}: docker manifest ${img.dockerManifest} is not among its manifests`)
    return m.config
  }
  const names = () => images.map((i) => i.name).join(', ')

  /** Writes failing because dockerd went away are reported with dockerd's reason. */
  const guard = async (fn: () => Promise<void>): Promise<void> => {
    try {
      await fn()
    } catch (error) {
      if (tar?.stream.destroyed && !aborted) {
        if (!early && reply) await Promise.race([reply.catch(() => {}), new Promise((r) => setTimeout(r, 2000))])
        if (early) throw early
      }
      throw error
    }
  }

  return {
    kind: 'docker',
    async begin(head: VerifiedHead) {
      images = ctx.selected(head)
      tar = new VerifiedTarStream()
      const stream = tar.stream
      reply = new Promise<Reply>((resolve, reject) => {
        req = http.request({
          socketPath, method: 'POST', path: `${api}/images/load?quiet=1`,
          headers: {Host: 'docker', 'Content-Type': 'application/x-tar', 'Transfer-Encoding': 'chunked'},
        }, (res) => {
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (c: Buffer) => {
            size += c.length
            if (size <= MAX_RESPONSE) chunks.push(c)
          })
          res.on('end', () => {
            const r = {status: res.statusCode ?? 0, body: Buffer.concat(chunks)}
            if (!finishing && !aborted) {
              // dockerd answered before the body was complete: it refused the load.
              early = new AirlockError(CODE, `loading ${names()} into ${where} failed: ${r.status === 200 ? parseJsonStream(r.body.toString('utf8')).error ?? 'dockerd ended the upload early' : errorMessage(r)}`)
              tar?.fail(early)
            }
            resolve(r)
          })
          res.on('error', reject)
          res.on('close', () => { if (!res.complete) reject(new Error('connection closed during the response')) })
        })
        req.on('error', (e) => {
          if (!aborted && !early) early = new AirlockError(CODE, `loading ${names()} into ${where} failed: connection error: ${e.message}`, {cause: e})
          tar?.fail(e)
          reject(early ?? e)
        })
      })
      reply.catch(() => {}) // observed in commit()/guard
      // fail() destroys the stream with the cause; that error is reported by readArchive, not here.
      stream.on('error', () => {})
      stream.pipe(req!)
      await guard(() => tar!.begin(head, images))
    },
    async blob(digest, size, data) {
      if (!tar?.wants(digest)) return
      await guard(() => tar!.blob(digest, size, data))
      ctx.progress.advance(size)
    },
    async commit() {
      if (early) throw early
      finishing = true
      await guard(() => tar!.finish())
      let r: Reply
      try {
        r = await reply!
      } catch (error) {
        throw early ?? new AirlockError(CODE, `loading ${names()} into ${where} failed: ${(error as Error).message}`, {cause: error})
      }
      if (r.status !== 200) throw new AirlockError(CODE, `loading ${names()} into ${where} failed: ${errorMessage(r)}`)
      const {messages, error} = parseJsonStream(r.body.toString('utf8'))
      if (error) throw new AirlockError(CODE, `loading ${names()} into ${where} failed: ${error}`, {details: messages})
      for (const img of images) ctx.progress.note(`  loaded ${img.name} into docker (image ID ${configOf(img)})`)
    },
    async abort(error: unknown) {
      aborted = true
      // Break the connection first: dockerd must see a body without its end and load nothing.
      req?.socket?.destroy()
      req?.destroy()
      tar?.fail(error)
      await Promise.race([reply?.catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())])
    },
    async confirm(): Promise<InstalledImage[]> {
      const out: InstalledImage[] = []
      for (const img of images) {
        const config = configOf(img)
        const tag = dockerRepoTags(img.name)[0]
        const lookup = tag ?? config
        // eslint-disable-next-line no-await-in-loop
        const r = await request('GET', `${api}/images/${lookup}/json`)
        if (r.status !== 200) throw new AirlockError('install.confirm_failed', `${where}: ${lookup} (${img.name}) is not there after loading: ${errorMessage(r)}`)
        const id = (JSON.parse(r.body.toString('utf8')) as {Id?: string}).Id
        if (id !== config) throw new AirlockError('install.confirm_failed', `${where}: ${lookup} has image ID ${id}, expected ${config} (the signed config of ${img.name})`)
        out.push({name: img.name, digest: img.digest, confirmed: id})
      }
      return out
    },
  }
}
