import {createWriteStream} from 'node:fs'
import {mkdir, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {AirlockError} from '../../core/errors.js'
import {Descriptor, hexOf, ImageIndex, MediaType} from '../../core/model.js'
import type {Destination, DestinationContext, InstalledImage} from '../../install/types.js'
import {blobsOf} from '../../install/tarstream.js'
import type {VerifiedHead} from '../archive/reader.js'
import {ImageRecord, OCI_LAYOUT_CONTENT, stableJson} from '../archive/metadata.js'
import {pathExists as exists} from '../../core/fs.js'

const NAME_ANNOTATION = 'org.opencontainers.image.ref.name'

/**
 * `oci:DIR`: an OCI image layout directory, merged into if it exists. Blobs are written under
 * temp names and renamed once verified; index.json is replaced atomically at commit, which is
 * the moment the images become visible. On abort, blobs added by this run are removed again.
 */
export async function ociDestination(ctx: DestinationContext & {dir: string}): Promise<Destination> {
  const dir = path.resolve(ctx.dir)
  const blobsDir = path.join(dir, 'blobs', 'sha256')
  const added: string[] = []
  let images: ImageRecord[] = []
  let wanted = new Set<string>()
  let createdDir = false

  const blobFile = (digest: string) => path.join(blobsDir, hexOf(digest))

  async function readIndex(): Promise<ImageIndex> {
    const file = path.join(dir, 'index.json')
    if (!(await exists(file))) return {schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: []}
    try {
      const idx = JSON.parse(await readFile(file, 'utf8')) as ImageIndex
      if (!Array.isArray(idx.manifests)) throw new Error('no manifests array')
      return idx
    } catch (error) {
      throw new AirlockError('install.oci_bad_index', `${file} is not an OCI index (${(error as Error).message}); refusing to merge into it`)
    }
  }

  return {
    kind: 'oci',
    async begin(head: VerifiedHead) {
      images = ctx.selected(head)
      wanted = blobsOf(images)
      if (await exists(dir)) {
        const layout = path.join(dir, 'oci-layout')
        if (await exists(layout)) {
          const v = JSON.parse(await readFile(layout, 'utf8')) as {imageLayoutVersion?: string}
          if (v.imageLayoutVersion !== '1.0.0') throw new AirlockError('install.oci_layout', `${layout}: unsupported imageLayoutVersion ${v.imageLayoutVersion}`)
        }
        await readIndex() // fail early on a broken index, before any blob is written
      } else {
        createdDir = true
      }
      await mkdir(blobsDir, {recursive: true})
    },
    async blob(digest, size, data) {
      if (!wanted.has(digest)) return
      const final = blobFile(digest)
      if (await exists(final)) {
        const st = await stat(final)
        if (st.size === size) return // content-addressed: already there
      }
      const tmp = `${final}.airlock-partial`
      try {
        await pipeline(Readable.from(data), createWriteStream(tmp))
        await rename(tmp, final)
        added.push(final)
        ctx.progress.advance(size)
      } catch (error) {
        await rm(tmp, {force: true})
        throw error
      }
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
      await writeFile(path.join(dir, 'oci-layout.airlock-partial'), OCI_LAYOUT_CONTENT)
      await rename(path.join(dir, 'oci-layout.airlock-partial'), path.join(dir, 'oci-layout'))
      await writeFile(path.join(dir, 'index.json.airlock-partial'), stableJson(out))
      await rename(path.join(dir, 'index.json.airlock-partial'), path.join(dir, 'index.json'))
      for (const img of images) ctx.progress.note(`  installed ${img.name} → oci:${dir}`)
    },
    async abort() {
      await Promise.all(added.map((f) => rm(f, {force: true})))
      if (createdDir) await rm(dir, {recursive: true, force: true})
    },
    async missing(digests: string[]): Promise<string[]> {
      const out: string[] = []
      for (const d of digests) {
        if (!(await exists(blobFile(d)))) out.push(d)
      }
      return out
    },
    async confirm(): Promise<InstalledImage[]> {
      const index = await readIndex()
      return Promise.all(images.map(async (img) => {
        const d = index.manifests.find((m) => m.annotations?.[NAME_ANNOTATION] === img.name)
        if (!d || d.digest !== img.digest) throw new AirlockError('install.confirm_failed', `oci:${dir}: ${img.name} is ${d?.digest ?? 'missing'}, expected ${img.digest}`)
        for (const b of img.blobs) {
          if (!(await exists(blobFile(b.digest)))) throw new AirlockError('install.confirm_failed', `oci:${dir}: blob ${b.digest} of ${img.name} is missing`)
        }
        return {name: img.name, digest: img.digest, confirmed: d.digest}
      }))
    },
  }
}
