import {lstat, mkdir, rm, stat} from 'node:fs/promises'
import path from 'node:path'

import {AirlockError} from '../../core/errors.js'
import {Descriptor, hexOf, ImageIndex, MediaType} from '../../core/model.js'
import type {Destination, DestinationContext, InstalledImage} from '../types.js'
import {blobsOf} from '../docker-archive/tarstream.js'
import type {VerifiedHead} from '../archive/reader.js'
import {ImageRecord, OCI_LAYOUT_CONTENT, stableJson} from '../archive/metadata.js'
import {lstatNoLink, readSmallNoFollow, syncDir, writeFileAtomic} from './files.js'

const NAME_ANNOTATION = 'org.opencontainers.image.ref.name'

/** Largest index.json of an existing layout that airlock reads to merge into. */
const MAX_INDEX_BYTES = 64 * 1024 * 1024

/**
 * `oci:DIR`: an OCI image layout directory, merged into if it exists. Blobs are written under
 * temp names and renamed once verified; index.json is replaced atomically at commit, which is
 * the moment the images become visible. On abort, blobs added by this run are removed again.
 */
export async function ociDestination(ctx: DestinationContext & {dir: string}): Promise<Destination> {
  const dir = path.resolve(ctx.dir)
  const blobsDir = path.join(dir, 'blobs', 'sha256')
  const indexFile = path.join(dir, 'index.json')
  const layoutFile = path.join(dir, 'oci-layout')
  const added: string[] = []
  let images: ImageRecord[] = []
  let wanted = new Set<string>()
  let createdDir = false

  const blobFile = (digest: string) => path.join(blobsDir, hexOf(digest))
  const hasBlob = async (digest: string) => (await lstatNoLink(blobFile(digest), 'file')) === 'present'

  async function readIndex(): Promise<ImageIndex> {
    const data = await readSmallNoFollow(indexFile, MAX_INDEX_BYTES)
    if (!data) return {schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: []}
    let idx: ImageIndex | undefined
    try {
      idx = JSON.parse(data.toString('utf8')) as ImageIndex
    } catch {
      // JSON.parse's message quotes the text: never show what a file we did not write holds.
    }
    if (!idx || !Array.isArray(idx.manifests)) throw new AirlockError('install.oci_bad_index', `${indexFile} is not an OCI index (not JSON with a manifests array); refusing to merge into it`)
    return idx
  }

  async function checkLayout(): Promise<void> {
    const data = await readSmallNoFollow(layoutFile, 64 * 1024)
    if (!data) return
    let version: unknown
    try {
      version = (JSON.parse(data.toString('utf8')) as {imageLayoutVersion?: unknown}).imageLayoutVersion
    } catch { /* reported below, without quoting the file */ }
    if (version !== '1.0.0') throw new AirlockError('install.oci_layout', `${layoutFile}: not an OCI layout file of imageLayoutVersion 1.0.0`)
  }

  /** blobs/ and blobs/sha256/ exist as real directories when this returns (made here if missing). */
  async function ensureBlobDirs(): Promise<void> {
    for (const d of [path.join(dir, 'blobs'), blobsDir]) {
       
      if ((await lstatNoLink(d, 'directory')) === 'missing') await mkdir(d).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error
      })
       
      await lstatNoLink(d, 'directory') // made by another process meanwhile: still no link
    }
  }

  return {
    kind: 'oci',
    async begin(head: VerifiedHead) {
      images = ctx.selected(head)
      wanted = blobsOf(images)
      // DIR itself is the user's to name, link or not; below it nothing is followed.
      const st = await stat(dir).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined
        throw error
      })
      if (!st) {
        createdDir = true
        await mkdir(dir, {recursive: true})
      } else if (!st.isDirectory()) {
        throw new AirlockError('install.oci_unexpected_type', `${dir} is not a directory`)
      } else {
        await checkLayout()
        await readIndex() // fail early on a broken index, before any blob is written
      }
      await ensureBlobDirs()
    },
    async blob(digest, size, data) {
      if (!wanted.has(digest)) return
      const final = blobFile(digest)
      if (await hasBlob(digest) && (await lstat(final)).size === size) return // content-addressed: already there
      await writeFileAtomic(final, data)
      added.push(final)
      ctx.progress.advance(size)
    },
    async commit() {
      const index = await readIndex()
      const mine = new Set(images.map((i) => i.name))
      const kept = index.manifests.filter((d) => !mine.has(d.annotations?.[NAME_ANNOTATION] ?? ''))
      const fresh: Descriptor[] = images.map((img) => ({
        mediaType: img.mediaType,
        digest: img.digest,
        size: img.size,
        annotations: {'io.containerd.image.name': img.name, [NAME_ANNOTATION]: img.name},
      }))
      const out = {...index, schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [...kept, ...fresh]}
      await syncDir(blobsDir)
      await writeFileAtomic(layoutFile, OCI_LAYOUT_CONTENT)
      await writeFileAtomic(indexFile, stableJson(out))
      await syncDir(dir)
      for (const img of images) ctx.progress.note(`  installed ${img.name} → oci:${dir}`)
    },
    async abort() {
      await Promise.all(added.map((f) => rm(f, {force: true})))
      if (createdDir) await rm(dir, {recursive: true, force: true})
    },
    async missing(digests: string[]): Promise<string[]> {
      const out: string[] = []
      for (const d of digests) {
         
        if (!(await hasBlob(d))) out.push(d)
      }
      return out
    },
    async confirm(): Promise<InstalledImage[]> {
      const index = await readIndex()
      return Promise.all(images.map(async (img) => {
        const d = index.manifests.find((m) => m.annotations?.[NAME_ANNOTATION] === img.name)
        if (!d || d.digest !== img.digest) throw new AirlockError('install.confirm_failed', `oci:${dir}: ${img.name} is ${d?.digest ?? 'missing'}, expected ${img.digest}`)
        for (const b of img.blobs) {
           
          if (!(await hasBlob(b.digest))) throw new AirlockError('install.confirm_failed', `oci:${dir}: blob ${b.digest} of ${img.name} is missing`)
        }
        return {name: img.name, digest: img.digest, confirmed: d.digest}
      }))
    },
  }
}
