/**
 * `airlock serve`: a read-only OCI distribution registry served straight out of a verified archive.
 *
 * Integrity model. The archive is opened ONCE; the verification pass reads that same open file
 * (through /proc/self/fd/N on Linux, so a file renamed over the path afterwards changes nothing),
 * and every response is read through that descriptor by byte offset — nothing is extracted.
 * Because the bytes could still be changed in place after verification, every manifest and blob
 * is hashed AGAIN while it is served: a manifest is checked before it is sent; a blob streams
 * with its last chunk held back until the whole blob has hashed to its digest (for a Range
 * request the whole blob is hashed too), otherwise the connection is cut, so a client never
 * receives a complete response with bytes other than the verified ones.
 */
import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import type {AddressInfo} from 'node:net'
import process from 'node:process'

import {AirlockError, InputError} from '../core/errors.js'
import {DIGEST_RE} from '../core/model.js'
import {loadTrustedKeys} from '../sign/keys.js'
import type {SignerInfo} from '../sign/signature.js'
import {readArchive} from '../transports/archive/reader.js'
import {MultiFile, STDIN} from '../blob/multi-file.js'
import {BlobWant, digestChunks, verifiedChunks} from '../blob/verified.js'
import {resolveArchiveParts} from '../transports/archive/parts.js'
import type {AirlockMetadata} from '../transports/archive/metadata.js'
import {buildCatalog, Catalog, ServedEntry, ServedImage} from './catalog.js'

export interface ServeOptions {
  archive: string
  keys: string[]
  allowUnsigned?: boolean
  /** HOST:PORT, [V6]:PORT or PORT (default 127.0.0.1:5000); port 0 picks a free port. */
  listen?: string
  tlsCert?: string
  tlsKey?: string
  now?: Date
  /** Hashing threads for the verification at start, the main one included (default: the cores, at most 8). */
  hashThreads?: number
  /** At least this many distinct trusted keys must have signed (default 1). */
  threshold?: number
  /** In-flight requests get this long to finish after close() before their connections are cut. */
  shutdownTimeoutMs?: number
  /** One line per notable event (integrity failure, served-while-closing); default stderr. */
  log?: (line: string) => void
}

export interface ServeStats {
  requests: number
  blobBytes: number
  manifestsServed: number
  blobsServed: number
  /** responses cut off because the archive no longer matched its verified content */
  integrityFailures: number
}

export interface ServeHandle {
  archive: string
  /** e.g. http://127.0.0.1:5000 */
  url: string
  /** host:port as clients use it in image references */
  address: string
  bundle: AirlockMetadata['bundle']
  signed: boolean
  signer?: SignerInfo
  images: ServedImage[]
  catalog: Catalog
  warnings: string[]
  stats: ServeStats
  /** Stop accepting, let in-flight requests finish (up to shutdownTimeoutMs), close the archive. */
  close(): Promise<ServeStats>
  /** Cut every open connection now (a second signal while draining). */
  closeAll(): void
}

const API_HEADER = ['Docker-Distribution-API-Version', 'registry/2.0'] as const

export function parseListen(s: string): {host: string; port: number} {
  const bad = () => new InputError('serve.bad_listen', `--listen must be HOST:PORT, [IPV6]:PORT or PORT, got ${JSON.stringify(s)}`)
  let host = '127.0.0.1'
  let port: string
  const m6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(s)
  const m4 = /^([^:[\]]*):(\d+)$/.exec(s)
  if (m6) [, host, port] = m6
  else if (m4) {
    port = m4[2]
    if (m4[1] !== '') host = m4[1]
  } else if (/^\d+$/.test(s)) port = s
  else throw bad()
  const n = Number(port)
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw bad()
  return {host, port: n}
}

async function readOptional(file: string | undefined, what: string): Promise<Buffer | undefined> {
  if (!file) return undefined
  try {
    return await readFile(file)
  } catch (error) {
    throw new InputError('serve.tls_file', `cannot read ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
}

/** The parts to serve: files, which are read again for every pull (standard input cannot be). */
async function servedParts(archive: string): Promise<string[]> {
  if (archive === STDIN) throw new InputError('archive.stdin_unsupported', 'serve reads the archive again for every pull: give it a file, not standard input ("-")')
  return resolveArchiveParts(archive)
}

export async function startServe(opts: ServeOptions): Promise<ServeHandle> {
  const {host, port} = parseListen(opts.listen ?? '127.0.0.1:5000')
  if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) throw new InputError('serve.tls_pair', '--tls-cert and --tls-key must be given together')
  const cert = await readOptional(opts.tlsCert, 'TLS certificate')
  const key = await readOptional(opts.tlsKey, 'TLS key')
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'))
  const trustedKeys = await loadTrustedKeys(opts.keys, {warn: log})

  // A split archive is served from its parts as they are (offsets count across parts).
  const parts = await servedParts(opts.archive)
  const fh = await MultiFile.open(parts)
  let server: http.Server | undefined
  try {
    // Verify through the descriptor we keep: the served bytes are the verified file, not whatever the path names later.
    const viaFd = fh.fdPaths()
    const source = process.platform === 'linux' && viaFd.every((p) => existsSync(p)) ? viaFd : parts
    const report = await readArchive(source, {trustedKeys, allowUnsigned: opts.allowUnsigned, now: opts.now, hashThreads: opts.hashThreads, threshold: opts.threshold})
    const catalog = buildCatalog(report.head)
    for (const w of catalog.warnings) log(`warning: ${w}`)
    const stats: ServeStats = {requests: 0, blobBytes: 0, manifestsServed: 0, blobsServed: 0, integrityFailures: 0}
    const state = {closing: false}
    const inFlight = new Set<http.ServerResponse>()

    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      stats.requests++
      inFlight.add(res)
      res.on('close', () => {
        inFlight.delete(res)
        if (state.closing) server?.closeIdleConnections()
      })
      if (state.closing) res.setHeader('Connection', 'close')
      handle(req, res, {fh, catalog, stats, log}).catch((error: unknown) => {
        log(`error: ${req.method} ${req.url}: ${(error as Error).message}`)
        if (!res.headersSent) sendError(res, 500, 'UNKNOWN', 'internal error')
        else res.destroy()
      })
    }
    server = cert && key ? https.createServer({cert, key}, handler) : http.createServer(handler)
    server.keepAliveTimeout = 5000
    const srv = server
    await new Promise<void>((resolve, reject) => {
      srv.once('error', (error: NodeJS.ErrnoException) => {
        reject(new AirlockError('serve.listen', `cannot listen on ${host}:${port}: ${error.code ?? error.message}`))
      })
      srv.listen(port, host, () => resolve())
    })
    const addr = srv.address() as AddressInfo
    const address = addr.family === 'IPv6' ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`
    let closing: Promise<ServeStats> | undefined
    return {
      archive: opts.archive,
      url: `${cert ? 'https' : 'http'}://${address}`,
      address,
      bundle: report.bundle,
      signed: report.signed,
      ...(report.signer ? {signer: report.signer} : {}),
      images: catalog.images,
      catalog,
      warnings: catalog.warnings,
      stats,
      close() {
        closing ??= (async () => {
          state.closing = true
          for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close')
          const done = new Promise<void>((resolve) => srv.close(() => resolve()))
          srv.closeIdleConnections()
          const timer = setTimeout(() => srv.closeAllConnections(), opts.shutdownTimeoutMs ?? 30_000)
          await done
          clearTimeout(timer)
          await fh.close()
          return stats
        })()
        return closing
      },
      closeAll() {
        srv.closeAllConnections()
      },
    }
  } catch (error) {
    server?.close()
    await fh.close()
    throw error
  }
}

// ------------------------------------------------------------------------------- protocol

interface Ctx {
  fh: MultiFile
  catalog: Catalog
  stats: ServeStats
  log: (line: string) => void
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body))
  res.writeHead(status, {[API_HEADER[0]]: API_HEADER[1], 'Content-Type': 'application/json', 'Content-Length': String(data.length), ...headers})
  res.end(res.req.method === 'HEAD' ? undefined : data)
}

function sendError(res: http.ServerResponse, status: number, code: string, message: string, detail?: unknown, headers: Record<string, string> = {}): void {
  sendJson(res, status, {errors: [{code, message, ...(detail === undefined ? {} : {detail})}]}, headers)
}

/** `n`/`last` pagination of a sorted list (distribution spec), with a Link header to the next page. */
function paginate(list: string[], url: URL, base: string): {items: string[]; headers: Record<string, string>} | undefined {
  const nRaw = url.searchParams.get('n')
  const last = url.searchParams.get('last')
  let items = last ? list.filter((x) => x > last) : list
  const headers: Record<string, string> = {}
  if (nRaw !== null) {
    if (!/^\d+$/.test(nRaw)) return undefined
    const n = Number(nRaw)
    if (items.length > n) {
      items = items.slice(0, n)
      if (n > 0) headers.Link = `<${base}?last=${encodeURIComponent(items[n - 1])}&n=${n}>; rel="next"`
    }
  }
  return {items, headers}
}

const MANIFEST_RE = /^\/v2\/(.+)\/manifests\/([^/]+)$/
const BLOB_RE = /^\/v2\/(.+)\/blobs\/([^/]+)$/
/** The repository part of any request under a repository (manifests, blobs, tags). */
const NAMED_RE = /^\/v2\/(.+)\/(?:manifests\/[^/]+|blobs\/[^/]+|tags\/list)$/
const TAGS_RE = /^\/v2\/(.+)\/tags\/list$/

async function handle(req: http.IncomingMessage, res: http.ServerResponse, ctx: Ctx): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://airlock.invalid')
  const p = url.pathname
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    req.resume()
    sendError(res, 405, 'UNSUPPORTED', 'this registry is read-only (served from a verified airlock archive)', undefined, {Allow: 'GET, HEAD'})
    return
  }
  if (plainPath(req.url ?? '/') === undefined) return sendError(res, 400, 'NAME_INVALID', 'invalid repository name: "." and ".." segments are not allowed')
  if (p.startsWith('/files/')) return serveFile(req, res, ctx, p.slice('/files/'.length))
  if (p === '/v2/' || p === '/v2') {
    sendJson(res, 200, {})
    return
  }
  const named = NAMED_RE.exec(p)
  if (named && !isRepositoryName(named[1])) return sendError(res, 400, 'NAME_INVALID', 'invalid repository name', {name: named[1]})
  if (p === '/v2/_catalog') {
    const page = paginate([...ctx.catalog.repositories.keys()].sort(), url, '/v2/_catalog')
    if (!page) return sendError(res, 400, 'PAGINATION_NUMBER_INVALID', 'invalid number of results requested')
    sendJson(res, 200, {repositories: page.items}, page.headers)
    return
  }
  let m = TAGS_RE.exec(p)
  if (m) {
    const repo = ctx.catalog.repositories.get(m[1])
    if (!repo) return sendError(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry', {name: m[1]})
    const page = paginate([...repo.tags.keys()].sort(), url, `/v2/${repo.name}/tags/list`)
    if (!page) return sendError(res, 400, 'PAGINATION_NUMBER_INVALID', 'invalid number of results requested')
    sendJson(res, 200, {name: repo.name, tags: page.items}, page.headers)
    return
  }
  m = MANIFEST_RE.exec(p)
  if (m) return serveManifest(res, ctx, m[1], decodeURIComponent(m[2]))
  m = BLOB_RE.exec(p)
  if (m) return serveBlob(req, res, ctx, m[1], decodeURIComponent(m[2]))
  sendError(res, 404, 'NOT_FOUND', 'no such endpoint')
}

async function serveManifest(res: http.ServerResponse, ctx: Ctx, name: string, ref: string): Promise<void> {
  const repo = ctx.catalog.repositories.get(name)
  const digest = DIGEST_RE.test(ref) ? ref : repo?.tags.get(ref)
  const entry = digest ? ctx.catalog.entries.get(digest) : undefined
  if (!repo || !digest || !repo.manifests.has(digest) || !entry?.mediaType) {
    return sendError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown to registry', {name, reference: ref})
  }
  const headers = {
    [API_HEADER[0]]: API_HEADER[1], 'Content-Type': entry.mediaType, 'Docker-Content-Digest': digest,
    'Content-Length': String(entry.size), ETag: `"${digest}"`,
  }
  if (res.req.method === 'HEAD') {
    res.writeHead(200, headers)
    res.end()
    return
  }
  const data = await readVerified(ctx.fh, entry.offset, {digest, size: entry.size})
  if (!data) {
    ctx.stats.integrityFailures++
    ctx.log(`INTEGRITY: manifest ${digest} no longer matches the verified archive; refused`)
    return sendError(res, 500, 'UNKNOWN', 'the archive changed after it was verified; refusing to serve this manifest', {digest})
  }
  ctx.stats.manifestsServed++
  res.writeHead(200, headers)
  res.end(data)
}

/**
 * The byte range a GET asks for (RFC 9110 §14): undefined to send the whole body (no Range
 * header; one with bad syntax, another unit or several ranges, which a server may ignore), null
 * when the one range asked for cannot be satisfied (416 with `Content-Range: bytes *\/SIZE`).
 */
export function parseRange(header: string | undefined, size: number): {start: number; end: number} | undefined | null {
  if (header === undefined) return undefined
  const m = /^bytes=(\d*)-(\d*)$/i.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) return undefined
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0 || size === 0) return null
    return {start: Math.max(0, size - suffix), end: size - 1}
  }
  const start = Number(m[1])
  if (m[2] !== '' && Number(m[2]) < start) return undefined // last before first: not a valid range-spec
  if (start >= size) return null
  return {start, end: m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)}
}

/** A repository name of the distribution spec: lower-case components separated by `/`. */
const REPOSITORY_NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/

/**
 * The request path, refused (undefined) when it has `.` or `..` segments, written plainly or
 * percent-encoded: URL parsing would resolve them into another repository's path.
 */
export function plainPath(rawUrl: string): string | undefined {
  const raw = rawUrl.split('?')[0]
  const segments = raw.split('/').map((s) => s.replace(/%2e/gi, '.'))
  return segments.some((s) => s === '.' || s === '..') ? undefined : raw
}

export function isRepositoryName(name: string): boolean {
  return name.length <= 255 && REPOSITORY_NAME.test(name)
}

async function serveBlob(req: http.IncomingMessage, res: http.ServerResponse, ctx: Ctx, name: string, digest: string): Promise<void> {
  const repo = ctx.catalog.repositories.get(name)
  const entry = DIGEST_RE.test(digest) ? ctx.catalog.entries.get(digest) : undefined
  if (!repo || !entry || !repo.blobs.has(digest)) {
    return sendError(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry', {name, digest})
  }
  return sendBlob(req, res, ctx, entry)
}

/** GET /files/<dest>: a file of a `files:` entry by its dest path, from the archive like any blob (Range too). */
async function serveFile(req: http.IncomingMessage, res: http.ServerResponse, ctx: Ctx, rawDest: string): Promise<void> {
  let dest: string
  try {
    dest = rawDest.split('/').map((s) => decodeURIComponent(s)).join('/')
  } catch {
    return sendError(res, 400, 'NAME_INVALID', 'invalid file path')
  }
  const digest = ctx.catalog.files.get(dest)
  const entry = digest ? ctx.catalog.entries.get(digest) : undefined
  if (!entry) return sendError(res, 404, 'NOT_FOUND', 'no such file in the bundle', {path: dest})
  return sendBlob(req, res, ctx, entry)
}

async function sendBlob(req: http.IncomingMessage, res: http.ServerResponse, ctx: Ctx, entry: ServedEntry): Promise<void> {
  const digest = entry.digest
  const range = parseRange(req.headers.range, entry.size)
  if (range === null) {
    return sendError(res, 416, 'RANGE_INVALID', 'requested range not satisfiable', {range: req.headers.range}, {'Content-Range': `bytes */${entry.size}`})
  }
  const start = range?.start ?? 0
  const end = range?.end ?? entry.size - 1
  const headers: Record<string, string> = {
    [API_HEADER[0]]: API_HEADER[1], 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': digest,
    'Accept-Ranges': 'bytes', ETag: `"${digest}"`, 'Content-Length': String(end - start + 1),
  }
  if (range) headers['Content-Range'] = `bytes ${start}-${end}/${entry.size}`
  res.writeHead(range ? 206 : 200, headers)
  if (req.method === 'HEAD' || entry.size === 0) {
    res.end()
    return
  }
  const outcome = await streamVerified(ctx.fh, entry, start, end, res)
  if (outcome === 'mismatch') {
    ctx.stats.integrityFailures++
    ctx.log(`INTEGRITY: blob ${digest} no longer matches the verified archive; response cut off`)
    res.destroy()
  } else if (outcome === 'ok') {
    ctx.stats.blobsServed++
    ctx.stats.blobBytes += end - start + 1
  }
}

function write(res: http.ServerResponse, b: Buffer): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false)
  if (res.write(b)) return Promise.resolve(true)
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      res.off('drain', onDrain)
      res.off('close', onClose)
      resolve(ok)
    }
    const onDrain = () => done(true)
    const onClose = () => done(false)
    res.on('drain', onDrain)
    res.on('close', onClose)
  })
}

/** The `size` bytes at `offset`, whole, if they still hash to `digest`; undefined if not (the archive changed). */
async function readVerified(fh: MultiFile, offset: number, want: BlobWant): Promise<Buffer | undefined> {
  const data = Buffer.allocUnsafe(want.size)
  const {bytesRead} = await fh.read(data, 0, want.size, offset)
  if (bytesRead !== want.size) return undefined
  return (await digestChunks([data])).digest === want.digest ? data : undefined
}

/** The chunks of `chunks` until the response is closed. */
async function* whileOpen(chunks: AsyncIterable<Buffer>, res: http.ServerResponse): AsyncGenerator<Buffer> {
  for await (const c of chunks) {
    if (res.destroyed) return
    yield c
  }
}

/**
 * Send bytes [start, end] of the entry while hashing ALL of it; the last piece goes out only once
 * the hash matched, so a changed archive never yields a complete response.
 */
async function streamVerified(fh: MultiFile, entry: ServedEntry, start: number, end: number, res: http.ServerResponse): Promise<'ok' | 'mismatch' | 'aborted'> {
  const untrusted = whileOpen(fh.range(entry.offset, entry.size), res)
  const verified = verifiedChunks(untrusted, {digest: entry.digest, size: entry.size}, {fail: () => new Error('mismatch'), pick: {from: start, to: end + 1}})
  try {
    for await (const piece of verified) {
      if (!(await write(res, piece))) return 'aborted'
    }
  } catch {
    // The file changed or was cut short (or the client left while the rest was being hashed).
    return res.destroyed ? 'aborted' : 'mismatch'
  }
  res.end()
  return 'ok'
}
