/**
 * One `POST /images/load` into dockerd: the tar goes straight into the request as blobs verify,
 * and nothing is loaded before commit() ends the body (see destination.ts).
 */
import http from 'node:http'

import {AirlockError} from '../../core/errors.js'
import {blobPath} from '../../core/model.js'
import type {DestinationContext, InstalledImage, LeftOut} from '../types.js'
import {blobsOf, VerifiedTarStream} from '../docker-archive/tarstream.js'
import type {VerifiedHead} from '../archive/reader.js'
import {dockerManifestOf, dockerRepoTags, ImageRecord} from '../archive/metadata.js'
import {MultiFile} from '../../blob/multi-file.js'
import {collectReply, DockerEngine, errorMessage, parseJsonStream, Reply} from './engine.js'
import {inflatedSizeFor, probeGzip} from './inflate.js'
import {type ImageStore, recordNames, type RecordedName, undoLoad} from '../undo-load.js'
import {describeLeftOut, engineContent} from '../engine-content.js'
import {hasZstdMagic, peek, ZstdSpool} from './zstd.js'

const CODE = 'install.docker_failed'

export interface LoadStats {
  /** Layers sent decompressed: gzip inflated, zstd decompressed. */
  inflated: number
  asIs: number
  skipped: number
}

export class DockerLoad {
  /**
   * Layers sent inflated, and sent as they are, in this load; blobs of the selected images not
   * sent at all (other platforms, manifests: the classic store reads manifest.json only).
   */
  readonly stats: LoadStats = {inflated: 0, asIs: 0, skipped: 0}
  /** The selected entries with a runnable image: what is loaded. */
  private images: ImageRecord[] = []
  /** What the selection holds that docker does not get (entries with nothing runnable, other manifests). */
  leftOut: LeftOut = {skipped: [], manifests: []}
  /** zstd layers (classic store only): kept as they stream, decompressed once verified, sent at the end. */
  private readonly zstd = new ZstdSpool()
  private tar?: VerifiedTarStream
  private head?: VerifiedHead
  /** The archive read again by offset, for the gzip trailers (only when layers are sent inflated). */
  private archive?: MultiFile
  /** Layers of the docker manifests of the selected images. */
  private layers = new Set<string>()
  /** Every blob of the selected images (what the progress total counts). */
  private selectedBlobs = new Set<string>()
  private req?: http.ClientRequest
  private reply?: Promise<Reply>
  /** Set when dockerd answered or the connection broke before we finished the body. */
  private early?: AirlockError
  private finishing = false
  private aborted = false
  /** What each selected image's name (its image ID for a digest-only one) held before this load. */
  private before: RecordedName[] = []

  constructor(private readonly engine: DockerEngine, private readonly ctx: DestinationContext, private readonly canInflate: boolean) {}

  private names(): string {
    return this.images.map((i) => i.name).join(', ')
  }

  private failure(reason: string, opts: {cause?: unknown; details?: string[]} = {}): AirlockError {
    return new AirlockError(CODE, `loading ${this.names()} into ${this.engine.where} failed: ${reason}`, opts)
  }

  /** Writes failing because dockerd went away are reported with dockerd's reason. */
  private async guard(fn: () => Promise<void>): Promise<void> {
    try {
      await fn()
    } catch (error) {
      if (this.tar?.stream.destroyed && !this.aborted) {
        if (!this.early && this.reply) await Promise.race([this.reply.catch(() => {}), new Promise((r) => setTimeout(r, 2000))])
        if (this.early) throw this.early
      }
      throw error
    }
  }

  async begin(head: VerifiedHead): Promise<void> {
    const selected = this.ctx.selected(head)
    const {runnable, leftOut} = engineContent(selected, 'docker')
    this.images = runnable
    this.leftOut = leftOut
    for (const line of describeLeftOut(leftOut)) this.ctx.progress.note(line)
    this.head = head
    this.selectedBlobs = blobsOf(selected)
    // Nothing runnable selected: no load at all (dockerd refuses an archive without images).
    if (runnable.length === 0) return
    this.layers = new Set(this.images.flatMap((img) => dockerManifestOf(img).layers))
    this.before = await recordNames(this.store, this.images, lookupOf)
    if (this.canInflate) this.archive = await MultiFile.open(this.ctx.parts!).catch(() => undefined)
    const req = this.openRequest()
    // The tar goes straight into the request: a chunk is handed back to the reader once it is
    // out of this process (no copy, no fresh memory for every MiB).
    this.tar = new VerifiedTarStream(req, true)
    // dockerd's classic store reads manifest.json only: the OCI layout, the manifests and other
    // platforms' blobs are left out (and layers may be sent inflated).
    // The classic store gets zstd layers decompressed, so manifest.json lists those images too.
    await this.guard(() => this.tar!.begin(head, this.images, {ociLayout: !this.engine.classic, zstd: this.engine.classic}))
  }

  private openRequest(): http.ClientRequest {
    const req = http.request({
      socketPath: this.engine.socketPath, method: 'POST', path: `${this.engine.api}/images/load?quiet=1`,
      headers: {Host: 'docker', 'Content-Type': 'application/x-tar', 'Transfer-Encoding': 'chunked'},
    })
    this.req = req
    this.reply = new Promise<Reply>((resolve, reject) => {
      req.on('response', (res) => {
        collectReply(res, (r) => {
          if (!this.finishing && !this.aborted) {
            // dockerd answered before the body was complete: it refused the load.
            this.early = this.failure(r.status === 200 ? parseJsonStream(r.body.toString('utf8')).error ?? 'dockerd ended the upload early' : errorMessage(r))
            this.tar?.fail(this.early)
          }
          resolve(r)
        })
        res.on('error', reject)
        res.on('close', () => { if (!res.complete) reject(new Error('connection closed during the response')) })
      })
      req.on('error', (e) => {
        if (!this.aborted && !this.early) this.early = this.failure(`connection error: ${e.message}`, {cause: e})
        this.tar?.fail(e)
        reject(this.early ?? e)
      })
    })
    this.reply.catch(() => {}) // observed in commit()/guard
    return req
  }

  async blob(digest: string, size: number, data: AsyncIterable<Buffer>, release?: (chunk: Buffer) => void): Promise<void> {
    if (!this.tar?.wants(digest)) {
      if (this.selectedBlobs.has(digest)) {
        this.stats.skipped++
        this.ctx.progress.advance(size)
      }
      return
    }
    const isLayer = this.layers.has(digest)
    const at = this.archive && isLayer ? this.head?.locations.get(blobPath(digest)) : undefined
    const inflated = at && at.size === size ? inflatedSizeFor(size, await probeGzip(this.archive!, at.offset, size)) : undefined
    const tar = this.tar
    if (inflated === undefined && isLayer && this.engine.classic) {
      // Sniffed, not taken from the media type: a zstd layer is one that starts like zstd.
      const {first, all} = await peek(data)
      if (first && hasZstdMagic(first)) {
        this.stats.inflated++
        await this.zstd.add(digest, all)
      } else {
        this.stats.asIs++
        await this.guard(() => tar.blob(digest, size, all, release))
      }
    } else {
      if (isLayer) this.stats[inflated === undefined ? 'asIs' : 'inflated']++
      await this.guard(() => inflated === undefined ? tar.blob(digest, size, data, release) : tar.inflatedBlob(digest, inflated, data, release))
    }
    this.ctx.progress.advance(size)
  }

  /** A load that fails after some images were loaded is undone (undo-load.ts). */
  async commit(): Promise<void> {
    if (this.images.length === 0) return
    try {
      await this.finish()
    } catch (error) {
      if (this.finishing) await undoLoad(this.store, this.before, this.ctx.progress)
      throw error
    } finally {
      await this.zstd.close()
    }
  }

  private async finish(): Promise<void> {
    if (this.early) throw this.early
    this.finishing = true
    await this.archive?.close()
    // The decompressed zstd layers, verified as stored (compressed) before the load can end.
    for (const layer of await this.zstd.layers()) await this.guard(() => this.tar!.blob(layer.digest, layer.size, ZstdSpool.read(layer)))
    await this.guard(() => this.tar!.finish())
    let r: Reply
    try {
      r = await this.reply!
    } catch (error) {
      throw this.early ?? this.failure((error as Error).message, {cause: error})
    }
    if (r.status !== 200) throw this.failure(errorMessage(r))
    const {messages, error} = parseJsonStream(r.body.toString('utf8'))
    if (error) throw this.failure(error, {details: messages})
    for (const img of this.images) this.ctx.progress.note(`  loaded ${img.name} into docker (image ID ${configOf(img)})`)
  }

  async abort(error: unknown): Promise<void> {
    this.aborted = true
    await this.archive?.close().catch(() => {})
    // Break the connection first: dockerd must see a body without its end and load nothing.
    this.req?.socket?.destroy()
    this.req?.destroy()
    this.tar?.fail(error)
    await this.zstd.close()
    await Promise.race([this.reply?.catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())])
  }

  /** dockerd's image store, as undoing a load needs it. */
  private readonly store: ImageStore = {
    imageId: async (ref) => {
      const r = await this.engine.request('GET', `/images/${ref}/json`).catch(() => undefined)
      return r?.status === 200 ? (JSON.parse(r.body.toString('utf8')) as {Id?: string}).Id : undefined
    },
    tag: async (id, ref) => {
      const colon = ref.lastIndexOf(':')
      await this.engine.request('POST', `/images/${id}/tag?repo=${encodeURIComponent(ref.slice(0, colon))}&tag=${encodeURIComponent(ref.slice(colon + 1))}`)
    },
    remove: async (ref) => (await this.engine.request('DELETE', `/images/${ref}`)).status === 200,
  }

  async confirm(): Promise<InstalledImage[]> {
    const out: InstalledImage[] = []
    for (const img of this.images) {
      const config = configOf(img)
      const lookup = lookupOf(img)
      const r = await this.engine.request('GET', `/images/${lookup}/json`)
      if (r.status !== 200) throw new AirlockError('install.confirm_failed', `${this.engine.where}: ${lookup} (${img.name}) is not there after loading: ${errorMessage(r)}`)
      const id = (JSON.parse(r.body.toString('utf8')) as {Id?: string}).Id
      if (id !== config) throw new AirlockError('install.confirm_failed', `${this.engine.where}: ${lookup} has image ID ${id}, expected ${config} (the signed config of ${img.name})`)
      out.push({name: img.name, digest: img.digest, confirmed: id})
    }
    return out
  }
}

/** How an image is found in dockerd: its tag, or for a digest-only name its image ID (the config digest). */
function lookupOf(img: ImageRecord): string {
  return dockerRepoTags(img.name)[0] ?? configOf(img)
}

function configOf(img: ImageRecord): string {
  const m = img.manifests.find((x) => x.digest === img.dockerManifest)
  if (!m) throw new AirlockError('install.confirm_failed', `${img.name}: docker manifest ${img.dockerManifest} is not among its manifests`)
  return m.config
}
