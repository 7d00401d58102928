import {lstat, mkdir, rm, stat} from 'node:fs/promises'
import path from 'node:path'

import {AirlockError} from '../../core/errors.js'
import {withFileLock} from '../../core/lock.js'
import {Descriptor, hexOf, ImageIndex, MediaType} from '../../core/model.js'
import type {Destination, DestinationContext, InstalledImage} from '../types.js'
import {blobsOf} from '../docker-archive/tarstream.js'
import type {VerifiedHead} from '../archive/reader.js'
import {ImageRecord, OCI_LAYOUT_CONTENT, stableJson} from '../archive/metadata.js'
import {syncDir, writeFileAtomic} from '../../core/fs.js'
import {lstatNoLink, readSmallNoFollow, removeStaleTemps} from './files.js'

const NAME_ANNOTATION = 'org.opencontainers.image.ref.name'

/** Largest index.json of an existing layout that airlock reads to merge into. */
const MAX_INDEX_BYTES = 64 * 1024 * 1024

/**
 * `oci:DIR`: an OCI image layout directory, merged into if it exists. Blobs are written under
 * temp names and renamed once verified; index.json is replaced atomically at commit, which is
 * the moment the images become visible. On abort, blobs added by this run are removed again.
 */
export async function ociDestination(ctx: DestinationContext & {dir: string}): Promise<Destination> {
  const layout = new OciLayout(ctx, path.resolve(ctx.dir))
  // A plain object: wrappers (differential installs) copy a destination with `...dest`.
  return {
    kind: 'oci',
    begin: (head) => layout.begin(head),
    blob: (digest, size, data) => layout.blob(digest, size, data),
    commit: () => layout.commit(),
    abort: () => layout.abort(),
    missing: (digests) => layout.missing(digests),
    confirm: () => layout.confirm(),
  }
}

class OciLayout {
  private readonly blobsDir: string
  private readonly indexFile: string
  private readonly layoutFile: string
  private readonly added: string[] = []
  private images: ImageRecord[] = []
  private wanted = new Set<string>()
  private createdDir = false

  constructor(private readonly ctx: DestinationContext, private readonly dir: string) {
    this.blobsDir = path.join(dir, 'blobs', 'sha256')
    this.indexFile = path.join(dir, 'index.json')
    this.layoutFile = path.join(dir, 'oci-layout')
  }

  private blobFile(digest: string): string {
    return path.join(this.blobsDir, hexOf(digest))
  }

  private async hasBlob(digest: string): Promise<boolean> {
    return (await lstatNoLink(this.blobFile(digest), 'file')) === 'present'
  }

  private async readIndex(): Promise<ImageIndex> {
    const data = await readSmallNoFollow(this.indexFile, MAX_INDEX_BYTES)
    if (!data) return {schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: []}
    let idx: ImageIndex | undefined
    try {
      idx = JSON.parse(data.toString('utf8')) as ImageIndex
    } catch {
      // JSON.parse's message quotes the text: never show what a file we did not write holds.
    }
    if (!idx || !Array.isArray(idx.manifests)) throw new AirlockError('install.oci_bad_index', `${this.indexFile} is not an OCI index (not JSON with a manifests array); refusing to merge into it`)
    return idx
  }

  private async checkLayout(): Promise<void> {
    const data = await readSmallNoFollow(this.layoutFile, 64 * 1024)
    if (!data) return
    let version: unknown
    try {
      version = (JSON.parse(data.toString('utf8')) as {imageLayoutVersion?: unknown}).imageLayoutVersion
    } catch { /* reported below, without quoting the file */ }
    if (version !== '1.0.0') throw new AirlockError('install.oci_layout', `${this.layoutFile}: not an OCI layout file of imageLayoutVersion 1.0.0`)
  }

  /** blobs/ and blobs/sha256/ exist as real directories when this returns (made here if missing). */
  private async ensureBlobDirs(): Promise<void> {
    for (const d of [path.join(this.dir, 'blobs'), this.blobsDir]) {
      if ((await lstatNoLink(d, 'directory')) === 'missing') {
        await mkdir(d).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'EEXIST') throw error
        })
      }
      await lstatNoLink(d, 'directory') // made by another process meanwhile: still no link
    }
  }

  async begin(head: VerifiedHead): Promise<void> {
    this.images = this.ctx.selected(head)
    this.wanted = blobsOf(this.images)
    // DIR itself is the user's to name, link or not; below it nothing is followed.
    const st = await stat(this.dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined
      throw error
    })
    if (!st) {
      this.createdDir = true
      await mkdir(this.dir, {recursive: true})
    } else if (!st.isDirectory()) {
      throw new AirlockError('install.oci_unexpected_type', `${this.dir} is not a directory`)
    } else {
      await this.checkLayout()
      await this.readIndex() // fail early on a broken index, before any blob is written
    }
    await this.ensureBlobDirs()
    await Promise.all([removeStaleTemps(this.dir), removeStaleTemps(this.blobsDir)])
  }

  async blob(digest: string, size: number, data: AsyncIterable<Buffer>): Promise<void> {
    if (!this.wanted.has(digest)) return
    const final = this.blobFile(digest)
    if (await this.hasBlob(digest) && (await lstat(final)).size === size) return // content-addressed: already there
    await writeFileAtomic(final, data)
    this.added.push(final)
    this.ctx.progress.advance(size)
  }

  /** index.json is read, merged and written under a lock: two installs into one layout keep both their images. */
  async commit(): Promise<void> {
    await syncDir(this.blobsDir)
    await withFileLock(path.join(this.dir, '.airlock-index.lock'), `the OCI layout ${this.dir}`, () => this.mergeIndex(), {waitMs: 30_000})
    for (const img of this.images) this.ctx.progress.note(`  installed ${img.name} → oci:${this.dir}`)
  }

  private async mergeIndex(): Promise<void> {
    const index = await this.readIndex()
    const mine = new Set(this.images.map((i) => i.name))
    const kept = index.manifests.filter((d) => !mine.has(d.annotations?.[NAME_ANNOTATION] ?? ''))
    const fresh: Descriptor[] = this.images.map((img) => ({
      mediaType: img.mediaType,
      digest: img.digest,
      size: img.size,
      annotations: {'io.containerd.image.name': img.name, [NAME_ANNOTATION]: img.name},
    }))
    const out = {...index, schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [...kept, ...fresh]}
    await writeFileAtomic(this.layoutFile, OCI_LAYOUT_CONTENT)
    await writeFileAtomic(this.indexFile, stableJson(out))
    await syncDir(this.dir)
  }

  async abort(): Promise<void> {
    await Promise.all(this.added.map((f) => rm(f, {force: true})))
    if (this.createdDir) await rm(this.dir, {recursive: true, force: true})
  }

  async missing(digests: string[]): Promise<string[]> {
    const out: string[] = []
    for (const d of digests) if (!(await this.hasBlob(d))) out.push(d)
    return out
  }

  async confirm(): Promise<InstalledImage[]> {
    const index = await this.readIndex()
    return Promise.all(this.images.map(async (img) => {
      const d = index.manifests.find((m) => m.annotations?.[NAME_ANNOTATION] === img.name)
      if (!d || d.digest !== img.digest) throw new AirlockError('install.confirm_failed', `oci:${this.dir}: ${img.name} is ${d?.digest ?? 'missing'}, expected ${img.digest}`)
      for (const b of img.blobs) {
        if (!(await this.hasBlob(b.digest))) throw new AirlockError('install.confirm_failed', `oci:${this.dir}: blob ${b.digest} of ${img.name} is missing`)
      }
      return {name: img.name, digest: img.digest, confirmed: d.digest}
    }))
  }
}
