import {PassThrough} from 'node:stream'

import {blobPath} from '../core/model.js'
import type {VerifiedHead} from '../transports/archive/reader.js'
import {buildDockerManifestJson, buildIndexJson, ENTRY, ImageRecord, OCI_LAYOUT_CONTENT} from '../transports/archive/metadata.js'
import {BLOCK, encodeHeader, paddingFor} from '../transports/archive/tar.js'

const ZERO = Buffer.alloc(BLOCK * 2)

/** The set of blob digests the given images need. */
export function blobsOf(images: ImageRecord[]): Set<string> {
  return new Set(images.flatMap((i) => i.blobs.map((b) => b.digest)))
}

/**
 * A tar stream rebuilt from VERIFIED content for loaders that take a whole archive
 * (docker's /images/load, `podman load`, `ctr images import`): an OCI layout plus manifest.json
 * for the selected images only. Headers are our own; no byte of the input's headers is passed on.
 * The stream ends only in finish(); fail() destroys it so the loader sees a broken stream and
 * loads nothing.
 */
export class VerifiedTarStream {
  readonly stream = new PassThrough({highWaterMark: 4 * 1024 * 1024})
  private wanted = new Set<string>()

  private async write(buf: Buffer): Promise<void> {
    if (this.stream.destroyed) throw new Error('load stream closed by the target')
    if (!this.stream.write(buf)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => { cleanup(); resolve() }
        const onClose = () => { cleanup(); reject(new Error('load stream closed by the target')) }
        const cleanup = () => { this.stream.off('drain', onDrain); this.stream.off('close', onClose) }
        this.stream.once('drain', onDrain)
        this.stream.once('close', onClose)
      })
    }
  }

  private async entry(name: string, data: Buffer): Promise<void> {
    await this.write(encodeHeader(name, data.length, 0))
    await this.write(data)
    const pad = paddingFor(data.length)
    if (pad) await this.write(ZERO.subarray(0, pad))
  }

  async begin(_head: VerifiedHead, images: ImageRecord[], opts: {dockerManifest?: boolean} = {}): Promise<void> {
    this.wanted = blobsOf(images)
    await this.entry(ENTRY.OCI_LAYOUT, OCI_LAYOUT_CONTENT)
    await this.entry(ENTRY.INDEX, buildIndexJson(images))
    if (opts.dockerManifest !== false) await this.entry(ENTRY.DOCKER_MANIFEST, buildDockerManifestJson(images))
  }

  wants(digest: string): boolean {
    return this.wanted.has(digest)
  }

  async blob(digest: string, size: number, data: AsyncIterable<Buffer>): Promise<void> {
    if (!this.wanted.has(digest)) return
    await this.write(encodeHeader(blobPath(digest), size, 0))
    for await (const chunk of data) await this.write(chunk)
    const pad = paddingFor(size)
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
