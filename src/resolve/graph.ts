import {ContentKind, isSchema1MediaType, manifestKind, schema1Refusal} from '../core/content.js'
import {AirlockError} from '../core/errors.js'
import {Descriptor, ImageIndex, ImageManifest, isIndexMediaType, isManifestMediaType} from '../core/model.js'
import type {ImageSpec} from '../spec/types.js'
import type {Sources} from './sources.js'

/**
 * The graph of OCI content under one reference: every index (nested to any depth) and every
 * manifest it reaches, fetched by digest and kept byte-exact. Nothing is selected here.
 */

/** The OCI specs set no depth; real indexes nest two or three levels. This bounds hostile ones. */
const MAX_DEPTH = 8
/** Manifests and indexes in one graph (a multi-arch image with attestations has about a dozen). */
const MAX_NODES = 4096

export interface FetchedNode {
  digest: string
  mediaType: string
  size: number
  bytes: Buffer
  /** The index entry that listed this node (its platform and annotations); undefined for the top. */
  entry?: Descriptor
}

export interface GraphManifest extends FetchedNode {
  doc: ImageManifest
  kind: ContentKind
}

export interface GraphIndex extends FetchedNode {
  doc: ImageIndex
}

export interface ContentGraph {
  top: GraphManifest | GraphIndex
  /** Depth-first, in each index's order; each digest once. */
  manifests: GraphManifest[]
  indexes: GraphIndex[]
}

function parseJson<T>(bytes: Buffer, what: string, digest: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch {
    throw new AirlockError('registry.bad_manifest', `${what}: ${digest} is not valid JSON`)
  }
}

function refuseSchema1(what: string, mediaType: string, doc?: {schemaVersion?: unknown}): void {
  if (isSchema1MediaType(mediaType) || doc?.schemaVersion === 1) {
    throw new AirlockError('registry.unsupported_manifest', schema1Refusal(what))
  }
}

export function isIndexNode(n: GraphManifest | GraphIndex): n is GraphIndex {
  return isIndexMediaType(n.mediaType)
}

/** Turn fetched bytes into a node of the graph, or refuse them with a reason. */
export function parseNode(img: ImageSpec, got: FetchedNode): GraphManifest | GraphIndex {
  const what = img.refString
  refuseSchema1(what, got.mediaType)
  if (isIndexMediaType(got.mediaType)) {
    const doc = parseJson<ImageIndex>(got.bytes, what, got.digest)
    if (!Array.isArray(doc?.manifests)) throw new AirlockError('registry.bad_manifest', `${what}: index ${got.digest} has no manifests list`)
    return {...got, doc}
  }
  if (!isManifestMediaType(got.mediaType)) {
    throw new AirlockError('registry.bad_manifest', `${what}: ${got.digest} has media type ${got.mediaType}, which is neither an image manifest nor an index`)
  }
  const doc = parseJson<ImageManifest>(got.bytes, what, got.digest)
  refuseSchema1(what, got.mediaType, doc)
  if (!doc?.config?.digest || !Array.isArray(doc.layers)) throw new AirlockError('registry.bad_manifest', `${what}: manifest ${got.digest} has no config or layers`)
  return {...got, doc, kind: manifestKind(doc, got.entry)}
}

/** Fetch every node under `top` (already fetched), breadth by breadth, children in parallel. */
export async function fetchGraph(sources: Sources, img: ImageSpec, top: FetchedNode): Promise<ContentGraph> {
  const root = parseNode(img, top)
  const seen = new Map<string, GraphManifest | GraphIndex>([[root.digest, root]])
  let level: (GraphManifest | GraphIndex)[] = [root]
  for (let depth = 0; level.some(isIndexNode); depth++) {
    if (depth >= MAX_DEPTH) throw new AirlockError('registry.bad_manifest', `${img.refString}: indexes nest deeper than ${MAX_DEPTH} levels`)
    const entries = level.filter(isIndexNode).flatMap((ix) => ix.doc.manifests.map((d) => ({d, parent: ix.digest})))
    const fresh = entries.filter(({d}, i) => !seen.has(d?.digest) && entries.findIndex((e) => e.d?.digest === d?.digest) === i)
    if (seen.size + fresh.length > MAX_NODES) throw new AirlockError('registry.bad_manifest', `${img.refString}: more than ${MAX_NODES} manifests and indexes under one reference`)
    level = await Promise.all(fresh.map(({d, parent}) => fetchChild(sources, img, d, parent)))
    for (const n of level) seen.set(n.digest, n)
  }
  const manifests: GraphManifest[] = []
  const indexes: GraphIndex[] = []
  const visit = (n: GraphManifest | GraphIndex, placed: Set<string>): void => {
    if (placed.has(n.digest)) return
    placed.add(n.digest)
    if (!isIndexNode(n)) return void manifests.push(n)
    indexes.push(n)
    for (const d of n.doc.manifests) visit(seen.get(d.digest)!, placed)
  }
  visit(root, new Set())
  return {top: root, manifests, indexes}
}

async function fetchChild(sources: Sources, img: ImageSpec, d: Descriptor, parent: string): Promise<GraphManifest | GraphIndex> {
  if (typeof d?.digest !== 'string' || typeof d.mediaType !== 'string') {
    throw new AirlockError('registry.bad_manifest', `${img.refString}: index ${parent} has an entry without digest or media type`)
  }
  if (!isIndexMediaType(d.mediaType) && !isManifestMediaType(d.mediaType)) {
    refuseSchema1(img.refString, d.mediaType)
    throw new AirlockError('registry.bad_manifest', `${img.refString}: index ${parent} lists ${d.digest} as ${d.mediaType}, which is neither an image manifest nor an index`)
  }
  const got = await sources.getManifest(img.ref, d.digest)
  if (got.digest !== d.digest || (Number.isSafeInteger(d.size) && got.bytes.length !== d.size)) {
    throw new AirlockError('registry.digest_mismatch', `${img.refString}: index ${parent} lists ${d.digest} (${d.size} bytes); the registry served ${got.digest} (${got.bytes.length} bytes)`)
  }
  return parseNode(img, {digest: got.digest, mediaType: got.mediaType, size: got.bytes.length, bytes: got.bytes, entry: d})
}
