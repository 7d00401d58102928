import {sha256Digest} from '../core/digest.js'
import {InputError} from '../core/errors.js'
import {type Descriptor, type ImageIndex, platformString} from '../core/model.js'
import {platformMatches} from '../spec/platform.js'
import type {ImageSpec} from '../spec/types.js'
import type {OmittedRecord} from '../transports/archive/metadata.js'
import {ContentGraph, GraphIndex, GraphManifest, isIndexNode} from './graph.js'

/**
 * Platform selection over a content graph. It applies to runnable images only: artifacts,
 * signatures and attestations are never asked for a platform. The whole graph is kept byte-exact
 * unless the wanted platforms leave out a runnable image; then one new index lists the chosen
 * images (each manifest's digest kept) and the attestations that refer to them, and says what it
 * left out. A reference pinned by digest is never rewritten unless the entry says `subset: true`.
 */

/** An index the archive holds, and the digests it lists. */
export interface ResolvedIndex {
  digest: string
  mediaType: string
  size: number
  bytes: Buffer
  manifests: string[]
}

export interface Selection {
  top: {digest: string; mediaType: string; size: number; bytes: Buffer}
  manifests: GraphManifest[]
  /** The top one first when the top is an index. */
  indexes: ResolvedIndex[]
  /** Set when a new index replaced the source's. */
  omitted?: OmittedRecord[]
}

/** A runnable manifest of the graph and the platform it runs on. */
export interface Runnable {
  manifest: GraphManifest
  platform: string
}

function indexRecord(ix: GraphIndex): ResolvedIndex {
  return {digest: ix.digest, mediaType: ix.mediaType, size: ix.size, bytes: ix.bytes, manifests: ix.doc.manifests.map((d) => d.digest)}
}

function whole(graph: ContentGraph): Selection {
  const t = graph.top
  return {top: {digest: t.digest, mediaType: t.mediaType, size: t.size, bytes: t.bytes}, manifests: graph.manifests, indexes: graph.indexes.map(indexRecord)}
}

/** The runnable image wanted for platform `w`: the first in the graph's order. */
function pick(img: ImageSpec, runnables: Runnable[], w: string): Runnable {
  const hit = runnables.find((r) => (r.manifest.entry?.platform && platformMatches(w, {...r.manifest.entry.platform})) || platformMatches(w, r.platform))
  if (hit) return hit
  const have = [...new Set(runnables.map((r) => r.platform))]
  throw new InputError('resolve.platform_missing', `${img.refString} has no ${w} image; it has: ${have.join(', ')} (set platforms to some of these, or all)`)
}

export function selectPlatforms(img: ImageSpec, graph: ContentGraph, runnables: Runnable[]): Selection {
  const want = img.platforms
  if (want === 'all' || runnables.length === 0) return whole(graph)
  // A pinned index with platforms left at the default is kept whole: the digest is what was asked for.
  if (img.ref.digest && !img.platformsChosen && isIndexNode(graph.top)) return whole(graph)
  // A single-platform image needs to be one of the wanted platforms; an index needs them all.
  if (!isIndexNode(graph.top)) {
    const have = runnables[0].platform
    if (want.some((w) => platformMatches(w, have))) return whole(graph)
    throw new InputError('resolve.platform_missing', `${img.refString} is a single-platform image for ${have}; wanted ${want.join(', ')} (set platforms: [${have}] or all for this image)`)
  }
  const chosen = new Set(want.map((w) => pick(img, runnables, w).manifest.digest))
  if (runnables.every((r) => chosen.has(r.manifest.digest))) return whole(graph)
  if (img.ref.digest && !img.subset) {
    const kept = runnables.filter((r) => chosen.has(r.manifest.digest)).map((r) => r.platform)
    throw new InputError('resolve.pinned_subset', `${img.refString} is pinned to index ${img.ref.digest}; platforms ${want.join(', ')} would keep ${kept.join(', ')} of its ${runnables.length} images and rewrite the index to a new digest. Set \`platforms: all\` for this image to keep it byte-exact, or \`subset: true\` to accept the new index`)
  }
  return subsetIndex(graph, chosen)
}

/** One new index of the chosen images and the attestations that refer to them, in graph order. */
function subsetIndex(graph: ContentGraph, chosen: Set<string>): Selection {
  const top = graph.top as GraphIndex
  const refersToChosen = (m: GraphManifest) => m.kind === 'attestation' && chosen.has(m.entry?.annotations?.['vnd.docker.reference.digest'] ?? '')
  const manifests = graph.manifests.filter((m) => chosen.has(m.digest) || refersToChosen(m))
  const entries: Descriptor[] = manifests.map((m) => m.entry!)
  const doc: ImageIndex = {...top.doc, manifests: entries}
  const bytes = Buffer.from(JSON.stringify(doc))
  const keep = new Set(manifests.map((m) => m.digest))
  const omitted: OmittedRecord[] = [
    ...graph.indexes.filter((ix) => ix !== top).map((ix) => ({digest: ix.digest, mediaType: ix.mediaType, platform: 'unknown', kind: 'index' as const})),
    ...graph.manifests.filter((m) => !keep.has(m.digest)).map((m) => ({digest: m.digest, mediaType: m.mediaType, platform: platformOf(m), kind: m.kind})),
  ]
  const newTop = {digest: sha256Digest(bytes), mediaType: top.mediaType, size: bytes.length, bytes}
  return {top: newTop, manifests, indexes: [{...newTop, manifests: entries.map((d) => d.digest)}], omitted}
}

function platformOf(m: GraphManifest): string {
  const p = m.entry?.platform
  return m.kind === 'image' && p?.os && p.architecture ? platformString(p) : 'unknown'
}
