import {PassThrough, Writable} from 'node:stream'
import {createGunzip} from 'node:zlib'

import {INFLATE_CHUNK} from '../../blob/sizes.js'
import {blobPath, Descriptor, MediaType} from '../../core/model.js'
import type {VerifiedHead} from '../archive/reader.js'
import {buildDockerManifestJson, buildIndexJson, dockerManifestOf, ENTRY, ImageRecord, OCI_LAYOUT_CONTENT, stableJson} from '../archive/metadata.js'
import {BLOCK, encodeHeader, paddingFor} from '../archive/tar.js'
import {AirlockError} from '../../core/errors.js'

const ZERO = Buffer.alloc(BLOCK * 2)
/** Bytes written and not yet passed on, beyond which a write waits (until half of them have gone). */
const WINDOW = 4 * 1024 * 1024

/**
 * A gzip layer inflated into the stream did not come out at the size its gzip trailer announced
 * (several gzip members, or 4 GiB or more): the entry header is already out, so the load must be
 * aborted and done again with the layer as it is.
 */
export class InflatedSizeError extends AirlockError {
  constructor(readonly digest: string, message: string) {
    super('install.inflated_size', message)
  }
}

/** The set of blob digests the given images need. */
export function blobsOf(images: ImageRecord[]): Set<string> {
  return new Set(images.flatMap((i) => i.blobs.map((b) => b.digest)))
}

/** The blobs a docker archive of these images needs: the config and layers of each docker manifest. */
export function dockerBlobsOf(images: ImageRecord[]): Set<string> {
  return new Set(images.flatMap((img) => {
    const m = dockerManifestOf(img)
    return [m.config, ...m.layers]
  }))
}

/**
 * A tar stream rebuilt from VERIFIED content for loaders that take a whole archive
 * (docker's /images/load, `podman load`, `ctr images import`): an OCI layout plus manifest.json
 * for the selected images only. Headers are our own; no byte of the input's headers is passed on.
 * The stream ends only in finish(); fail() destroys it so the loader sees a broken stream and
 * loads nothing.
 */
export class VerifiedTarStream {
  /** Bytes handed to `stream` whose write has not completed yet. */
  private inflight = 0
  private room?: {resolve: () => void; reject: (error: Error) => void}
  private wanted = new Set<string>()

  /**
   * `stream` defaults to a PassThrough for the caller to pipe on. A caller may instead give the
   * final writer itself (the HTTP request to dockerd) and `releasesChunks`: a write's callback
   * then means its bytes have left this process, and blob chunks are handed back to the reader
   * (see ArchiveSink.blob) to be read into again.
   */
  constructor(readonly stream: Writable = new PassThrough({highWaterMark: WINDOW}), private readonly releasesChunks = false) {
    stream.once('close', () => this.wake(new Error('load stream closed by the target')))
  }

  private wake(error?: Error): void {
    const r = this.room
    this.room = undefined
    if (error) r?.reject(error)
    else r?.resolve()
  }

  /** Write `buf`, waiting only while more than WINDOW bytes are still on their way out. */
  private async write(buf: Buffer, release?: (chunk: Buffer) => void): Promise<void> {
    if (this.stream.destroyed) throw new Error('load stream closed by the target')
    const n = buf.length
    this.inflight += n
    this.stream.write(buf, (error) => {
      this.inflight -= n
      if (error) return this.wake(error)
      if (release && this.releasesChunks) release(buf)
      if (this.inflight <= WINDOW / 2) this.wake()
    })
    if (this.inflight > WINDOW) await new Promise<void>((resolve, reject) => { this.room = {resolve, reject} })
  }

  private async entry(name: string, data: Buffer): Promise<void> {
    await this.write(encodeHeader(name, data.length, 0))
    await this.write(data)
    const pad = paddingFor(data.length)
    if (pad) await this.write(ZERO.subarray(0, pad))
  }

  /**
   * `ociLayout: false` leaves out oci-layout and index.json, and every blob but the configs and
   * layers that manifest.json names: a plain docker archive, for a loader that reads only
   * manifest.json (and may be sent inflated layers, whose content no longer matches the digests).
   * `zstd: true`: manifest.json lists the images with zstd layers too (their layers are sent
   * decompressed, see docker-daemon/zstd.ts).
   */
  async begin(_head: VerifiedHead, images: ImageRecord[], opts: {dockerManifest?: boolean; ociLayout?: boolean; zstd?: boolean} = {}): Promise<void> {
    this.wanted = opts.ociLayout === false ? dockerBlobsOf(images) : blobsOf(images)
    if (opts.ociLayout !== false) {
      await this.entry(ENTRY.OCI_LAYOUT, OCI_LAYOUT_CONTENT)
      await this.entry(ENTRY.INDEX, buildIndexJson(images))
    }
    if (opts.dockerManifest !== false) await this.entry(ENTRY.DOCKER_MANIFEST, buildDockerManifestJson(images, {zstd: opts.zstd}))
  }

  /**
   * Instead of begin(): an OCI archive of one image for `podman load`, whose index.json lists
   * `top` named `name` (podman names the image from that annotation), with the blobs `blobs`.
   */
  async beginOciArchive(top: Descriptor, name: string, blobs: Iterable<string>): Promise<void> {
    this.wanted = new Set(blobs)
    await this.entry(ENTRY.OCI_LAYOUT, OCI_LAYOUT_CONTENT)
    const annotations = {'org.opencontainers.image.ref.name': name}
    await this.entry(ENTRY.INDEX, stableJson({schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [{mediaType: top.mediaType, digest: top.digest, size: top.size, annotations}]}))
  }

  wants(digest: string): boolean {
    return this.wanted.has(digest)
  }

  async blob(digest: string, size: number, data: AsyncIterable<Buffer>, release?: (chunk: Buffer) => void): Promise<void> {
    if (!this.wanted.has(digest)) return
    await this.write(encodeHeader(blobPath(digest), size, 0))
    for await (const chunk of data) await this.write(chunk, release)
    const pad = paddingFor(size)
    if (pad) await this.write(ZERO.subarray(0, pad))
  }

  /**
   * A verified gzip blob, inflated on the way, as an entry of `untrustedInflatedSize` bytes (the
   * size read from the gzip trailer before the entry began). If the inflated bytes come out at
   * any other count, this throws InflatedSizeError as soon as that is known; the stream is then
   * unusable (the header announced the wrong size) and the load must be aborted.
   * `release` gets each chunk of `data` once zlib has read it, whatever `stream` is: only the
   * inflated bytes go on to the stream.
   */
  async inflatedBlob(digest: string, untrustedInflatedSize: number, data: AsyncIterable<Buffer>, release?: (chunk: Buffer) => void): Promise<void> {
    if (!this.wanted.has(digest)) return
    const declared = untrustedInflatedSize
    const mismatch = (what: string) => new InflatedSizeError(digest, `layer ${digest} ${what}, not to the ${declared} bytes its gzip trailer gives (several gzip members, or 4 GiB or more)`)
    await this.write(encodeHeader(blobPath(digest), declared, 0))
    const gunzip = createGunzip({chunkSize: INFLATE_CHUNK})
    // Fed by hand: zlib reads a chunk's memory until that write's callback, and only then may
    // the chunk go back to the reader. `drain`: the rest of the blob is still read (and so
    // verified) but no longer inflated; `quit`: stop reading.
    let sourceError: unknown
    let drain = false
    let quit = false
    const fed = (async () => {
      try {
        for await (const chunk of data) {
          if (quit) break
          if (drain) continue
          const more = gunzip.write(chunk, (error) => { if (!error) release?.(chunk) })
          if (!more) await new Promise<void>((resolve) => {
            const done = () => { gunzip.off('drain', done); gunzip.off('close', done); resolve() }
            gunzip.on('drain', done)
            gunzip.on('close', done)
          })
        }
        if (!drain && !quit) gunzip.end()
      } catch (error) {
        sourceError = error
        gunzip.destroy(error as Error)
      }
    })()
    let n = 0
    let failure: InflatedSizeError | undefined
    try {
      try {
        for await (const chunk of gunzip as AsyncIterable<Buffer>) {
          n += chunk.length
          if (n > declared) {
            failure = mismatch(`inflates to more than ${declared} bytes`)
            break
          }
          await this.write(chunk)
        }
      } catch (error) {
        // A verification error of the source comes through gunzip: report it as it is.
        if (sourceError !== undefined) throw sourceError as Error
        const code = (error as NodeJS.ErrnoException).code
        if (typeof code !== 'string' || !code.startsWith('Z_')) throw error
        failure = new InflatedSizeError(digest, `layer ${digest} cannot be inflated here (${(error as Error).message})`)
      }
      if (!failure && n !== declared) failure = mismatch(`inflates to ${n} bytes`)
      if (failure) {
        // Let the blob finish verifying first: a tampered layer is reported as tampered, and
        // is not loaded a second time.
        drain = true
        gunzip.destroy()
        await fed
        if (sourceError !== undefined) throw sourceError as Error
        throw failure
      }
      await fed
    } finally {
      quit = true
      gunzip.destroy()
    }
    const pad = paddingFor(declared)
    if (pad) await this.write(ZERO.subarray(0, pad))
  }

  async finish(): Promise<void> {
    await this.write(ZERO)
    this.stream.end()
  }

  fail(error: unknown): void {
    // The consumer sees the broken stream; the error itself is reported by the reader, not here.
    this.stream.on('error', () => {})
    this.stream.destroy(error instanceof Error ? error : new Error(String(error)))
  }
}
