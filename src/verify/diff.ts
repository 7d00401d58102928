/**
 * `airlock diff OLD NEW`: what changed between two bundles, from their signed metadata alone (no
 * blob is read): images added, removed and changed (per platform), the layers NEW brings, and the
 * size of the differential bundle `create --since OLD` would write for NEW.
 */
import {BlobRef, bundleLayers, ImageRecord, kindOf} from '../transports/archive/metadata.js'
import {readSignedHeads, SignedBundleHead, SignedHeadOptions} from './signed-head.js'

export interface BundleSide {
  archive: string
  name: string
  version: string
  signed: boolean
  signers: string[]
}

export interface PlatformChange {
  platform: string
  change: 'added' | 'removed' | 'changed'
  old?: string
  new?: string
}

export interface DiffResult {
  old: BundleSide
  new: BundleSide
  added: {name: string; digest: string; platforms: string[]}[]
  removed: {name: string; digest: string; platforms: string[]}[]
  /** Same name, another digest: old → new, and each platform that differs. */
  changed: {name: string; old: string; new: string; platforms: PlatformChange[]}[]
  unchanged: string[]
  /** Layers NEW's images use that OLD's did not, and those OLD used that NEW's do not. */
  layers: {added: BlobRef[]; addedBytes: number; removed: BlobRef[]; removedBytes: number}
  /**
   * What `create --since OLD` makes of NEW: the blobs it holds (new layers, and every manifest,
   * index and config) and those it leaves out (layers OLD shipped or expected).
   */
  differential: {blobs: number; bytes: number; leftOut: {blobs: number; bytes: number}}
}

function side(h: SignedBundleHead): BundleSide {
  return {archive: h.archive, name: h.metadata.bundle.name, version: h.metadata.bundle.version, signed: h.verified, signers: h.signers.map((s) => s.fingerprint)}
}

/** Every distinct blob of `images`, each once. */
function uniqueBlobs(images: ImageRecord[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const img of images) for (const b of img.blobs) out.set(b.digest, b.size)
  return out
}

function platformChanges(a: ImageRecord, b: ImageRecord): PlatformChange[] {
  // Runnable images only: attestations, signatures and artifacts have no platform to compare by.
  const runnable = (i: ImageRecord) => i.manifests.filter((m) => kindOf(m) === 'image').map((m) => [m.platform, m.digest] as const)
  const before = new Map(runnable(a))
  const after = new Map(runnable(b))
  const out: PlatformChange[] = []
  for (const [platform, digest] of after) {
    const was = before.get(platform)
    if (was === undefined) out.push({platform, change: 'added', new: digest})
    else if (was !== digest) out.push({platform, change: 'changed', old: was, new: digest})
  }
  for (const [platform, digest] of before) if (!after.has(platform)) out.push({platform, change: 'removed', old: digest})
  return out.sort((x, y) => (x.platform < y.platform ? -1 : 1))
}

const sum = (blobs: BlobRef[]) => blobs.reduce((n, b) => n + b.size, 0)
const refs = (m: Map<string, number>, keep: (d: string) => boolean) => [...m].filter(([d]) => keep(d)).map(([digest, size]) => ({digest, size})).sort((x, y) => (x.digest < y.digest ? -1 : 1))

/** The images and layers of two bundles compared (metadata only). */
export function diffHeads(oldHead: SignedBundleHead, newHead: SignedBundleHead): DiffResult {
  const oldImages = new Map(oldHead.metadata.images.map((i) => [i.name, i]))
  const newImages = new Map(newHead.metadata.images.map((i) => [i.name, i]))
  const brief = (i: ImageRecord) => ({name: i.name, digest: i.digest, platforms: i.platforms})
  const added = [...newImages.values()].filter((i) => !oldImages.has(i.name)).map(brief)
  const removed = [...oldImages.values()].filter((i) => !newImages.has(i.name)).map(brief)
  const changed: DiffResult['changed'] = []
  const unchanged: string[] = []
  for (const [name, b] of newImages) {
    const a = oldImages.get(name)
    if (!a) continue
    if (a.digest === b.digest) unchanged.push(name)
    else changed.push({name, old: a.digest, new: b.digest, platforms: platformChanges(a, b)})
  }
  const oldLayers = bundleLayers(oldHead.metadata)
  const newLayers = bundleLayers(newHead.metadata)
  const oldBlobs = uniqueBlobs(oldHead.metadata.images)
  const newBlobs = uniqueBlobs(newHead.metadata.images)
  const layersAdded = refs(newBlobs, (d) => newLayers.has(d) && !oldLayers.has(d))
  const layersRemoved = refs(oldBlobs, (d) => oldLayers.has(d) && !newLayers.has(d))
  // The same rule as create --since (src/create/plan.ts): OLD's layers stay out, everything else is shipped.
  const shipped = refs(newBlobs, (d) => !oldLayers.has(d))
  const leftOut = refs(newBlobs, (d) => oldLayers.has(d))
  return {
    old: side(oldHead), new: side(newHead), added, removed, changed, unchanged,
    layers: {added: layersAdded, addedBytes: sum(layersAdded), removed: layersRemoved, removedBytes: sum(layersRemoved)},
    differential: {blobs: shipped.length, bytes: sum(shipped), leftOut: {blobs: leftOut.length, bytes: sum(leftOut)}},
  }
}

/** `airlock diff`: both signatures checked with the same trusted keys, then the metadata compared. */
export async function diffArchives(oldArchive: string, newArchive: string, opts: SignedHeadOptions): Promise<DiffResult> {
  const [a, b] = await readSignedHeads([oldArchive, newArchive], opts)
  return diffHeads(a, b)
}
