/**
 * Undoing a load into an engine that loads the images of one archive one after the other (docker,
 * podman): when image 2 fails, image 1 is already there. What each selected image's name held is
 * recorded before the load; undoLoad removes every image the load added and points a name it
 * moved back at its old image. An image something else still uses is refused by the engine, and
 * stays, as it should.
 */
import type {Progress} from '../core/progress.js'
import {dockerRepoTags, type ImageRecord} from './archive/metadata.js'

/** The few operations on an engine's image store that undoing a load needs. */
export interface ImageStore {
  /** The image ID `ref` names, undefined when none (or when the engine does not say). */
  imageId(ref: string): Promise<string | undefined>
  /** Point the name `ref` at image `id`. */
  tag(id: string, ref: string): Promise<void>
  /** Remove `ref` (a name or an image ID); false when the engine refuses. */
  remove(ref: string): Promise<boolean>
}

/** One selected image, the name (or ID) it is found by, and what that held before the load. */
export interface RecordedName {
  img: ImageRecord
  ref: string
  was?: string
}

export async function recordNames(store: ImageStore, images: ImageRecord[], refOf: (img: ImageRecord) => string): Promise<RecordedName[]> {
  const out: RecordedName[] = []
  for (const img of images) {
    const ref = refOf(img)
    const was = await store.imageId(ref)
    out.push({img, ref, ...(was === undefined ? {} : {was})})
  }
  return out
}

export async function undoLoad(store: ImageStore, recorded: RecordedName[], progress: Progress): Promise<void> {
  for (const {img, ref, was} of recorded) {
    const now = await store.imageId(ref)
    if (now === undefined || now === was) continue
    if (was !== undefined && dockerRepoTags(img.name)[0]) await store.tag(was, ref).catch(() => undefined)
    if (await store.remove(was === undefined ? ref : now).catch(() => false)) progress.note(`  removed ${img.name} again: the load did not complete`)
  }
}
