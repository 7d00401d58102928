/**
 * `--to docker`: the Docker Engine API over its unix socket (no docker CLI).
 *
 * begin() opens `POST /images/load?quiet=1` with a chunked application/x-tar body that a
 * VerifiedTarStream writes into directly, verified blobs as they arrive. dockerd unpacks the whole
 * body into a temporary directory and loads images only once the body has ended properly, so
 * commit() (which ends the tar and the chunked body) is the moment anything becomes visible.
 * abort() destroys the request socket and the stream: dockerd sees a body that breaks off
 * without its terminating chunk and loads nothing.
 *
 * With dockerd's classic image store (GET /info), the body is a plain docker archive: manifest.json
 * plus the configs and layers it names, and gzip layers that compress well are sent inflated (see
 * inflatedSizeFor). With the containerd image store, or when /info does not say, it is the full
 * OCI layout plus manifest.json, every blob as it is.
 *
 * The socket comes from `host`, else $DOCKER_HOST (`unix:///path`), else /var/run/docker.sock.
 */
import http from 'node:http'

import {AirlockError, InputError} from '../../core/errors.js'
import type {Destination, DestinationContext, InstalledImage} from '../../install/types.js'
import {blobsOf, VerifiedTarStream} from '../../install/tarstream.js'
import type {VerifiedHead} from '../archive/reader.js'
import {dockerManifestOf, dockerRepoTags, ImageRecord} from '../archive/metadata.js'
import {MultiFile} from '../../blob/multi-file.js'
import {blobPath} from '../../core/model.js'

export interface DockerOptions {
  /** `unix:///path/docker.sock` (or a plain socket path). Default $DOCKER_HOST, else /var/run/docker.sock. */
  host?: string
  /**
   * Send gzip layers inflated (default true; AIRLOCK_DOCKER_LAYERS=gzip turns it off). dockerd's
   * classic image store unpacks a load only after the whole body arrived, and inflates gzip
   * there with Go's gzip on one core; inflating here instead overlaps that work with the upload.
   * Used only with a classic store (not the containerd image store, which keeps the compressed
   * blobs) and an archive that can be read again by offset (to take each layer's size from its
   * gzip trailer before its tar header goes out).
   */
  inflate?: boolean
}

/** What decides whether a layer is sent inflated: its gzip magic and ISIZE trailer, read by offset. */
export interface GzipProbe {
  magic: boolean
  /** ISIZE: the inflated size modulo 2^32, as the (not yet verified) blob claims it. */
  untrustedIsize: number
}

const TWO_32 = 2 ** 32

/**
 * The size to announce for a gzip layer sent inflated, or undefined to send it as it is.
 *
 * Only layers that gzip made at least 10% smaller are worth it: inflating stored (incompressible)
 * data costs us CPU while streaming and saves dockerd next to nothing. ISIZE is only the size
 * modulo 4 GiB and only that of the last gzip member: it is also refused when a true size of
 * ISIZE + 4 GiB would still mean a compression ratio of 16 or less (a layer of 4 GiB or more must
 * not be mistaken for a small one). A wrong guess is caught while inflating (InflatedSizeError)
 * and the load is done again with the layer as it is.
 */
export function inflatedSizeFor(size: number, probe: GzipProbe): number | undefined {
  if (!probe.magic || size < 20) return undefined
  const isize = probe.untrustedIsize
  if (isize < size * 1.1) return undefined
  if (isize + TWO_32 <= 16 * size) return undefined
  return isize
}

async function probeGzip(archive: MultiFile, offset: number, size: number): Promise<GzipProbe> {
  const head = Buffer.alloc(3)
  const tail = Buffer.alloc(4)
  const [a, b] = await Promise.all([archive.read(head, 0, 3, offset), archive.read(tail, 0, 4, offset + size - 4)])
  return {magic: a.bytesRead === 3 && b.bytesRead === 4 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 8, untrustedIsize: tail.readUInt32LE(0)}
}

/** True for dockerd's classic (graphdriver) image store; false for the containerd image store or when unknown. */
export function classicImageStore(info: {Driver?: unknown; DriverStatus?: unknown}): boolean {
  if (typeof info.Driver !== 'string' || !info.Driver) return false
  const status = Array.isArray(info.DriverStatus) ? info.DriverStatus : []
  return !status.some((row) => Array.isArray(row) && row.some((v) => typeof v === 'string' && v.includes('containerd.snapshotter')))
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

export interface DockerDestination extends Destination {
  /**
   * Layers sent inflated, and sent as they are, in this load; blobs of the selected images not
   * sent at all (other platforms, manifests: the classic store reads manifest.json only).
   */
  readonly stats: {inflated: number; asIs: number; skipped: number}
}

export async function dockerDestination(ctx: DestinationContext & DockerOptions): Promise<DockerDestination> {
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
  const wantInflate = ctx.inflate ?? process.env.AIRLOCK_DOCKER_LAYERS !== 'gzip'
  const infoReply = request('GET', '/info').catch(() => undefined)
  let version: {ApiVersion?: string; Version?: string}
  try {
    const r = await request('GET', '/version')
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
  const canInflate = wantInflate && classic && ctx.parts !== undefined

  let images: ImageRecord[] = []
  let tar: VerifiedTarStream | undefined
  let verifiedHead: VerifiedHead | undefined
  /** The archive read again by offset, for the gzip trailers (only when layers are sent inflated). */
  let archive: MultiFile | undefined
  /** Layers of the docker manifests of the selected images. */
  let layers = new Set<string>()
  const stats = {inflated: 0, asIs: 0, skipped: 0}
  /** Every blob of the selected images (what the progress total counts). */
  let selectedBlobs = new Set<string>()
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
    stats,
    // Every chunk goes back to the reader once written out, or once zlib has read it.
    releasesChunks: true,
    async begin(head: VerifiedHead) {
      images = ctx.selected(head)
      verifiedHead = head
      selectedBlobs = blobsOf(images)
      layers = new Set(images.flatMap((img) => dockerManifestOf(img).layers))
      if (canInflate) archive = await MultiFile.open(ctx.parts!).catch(() => undefined)
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
      // The tar goes straight into the request: a chunk is handed back to the reader once it is
      // out of this process (no copy, no fresh memory for every MiB).
      tar = new VerifiedTarStream(req!, true)
      // dockerd's classic store reads manifest.json only: the OCI layout, the manifests and other
      // platforms' blobs are left out (and layers may be sent inflated).
      await guard(() => tar!.begin(head, images, {ociLayout: !classic}))
    },
    async blob(digest, size, data, release) {
      if (!tar?.wants(digest)) {
        if (selectedBlobs.has(digest)) {
          stats.skipped++
          ctx.progress.advance(size)
        }
        return
      }
      const at = archive && layers.has(digest) ? verifiedHead?.locations.get(blobPath(digest)) : undefined
      const inflated = at && at.size === size ? inflatedSizeFor(size, await probeGzip(archive!, at.offset, size)) : undefined
      if (layers.has(digest)) stats[inflated === undefined ? 'asIs' : 'inflated']++
      await guard(() => inflated === undefined ? tar!.blob(digest, size, data, release) : tar!.inflatedBlob(digest, inflated, data, release))
      ctx.progress.advance(size)
    },
    async commit() {
      if (early) throw early
      finishing = true
      await archive?.close()
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
      await archive?.close().catch(() => {})
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
