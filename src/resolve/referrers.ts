import {sha256Digest} from '../core/digest.js'
import {AirlockError} from '../core/errors.js'
import {isIndexMediaType, MediaType, type Descriptor, type ImageIndex} from '../core/model.js'
import type {ImageSpec, ReferrerChoice} from '../spec/types.js'
import type {ReferrerKind, UpstreamRecord} from '../transports/archive/metadata.js'
import {fetchGraph, type ContentGraph, type FetchedNode, type GraphManifest} from './graph.js'
import {resolvedManifest, type ResolvedImage} from './resolve.js'
import type {Sources} from './sources.js'

/**
 * What refers to an image upstream, found at create: cosign's tags in the image's repository
 * (`sha256-<hex>.sig`, `.att`, `.sbom`) and OCI 1.1 referrers (the referrers API, else its fallback
 * tag `sha256-<hex>`), for the image's top digest and each runnable manifest it keeps. Each one
 * found becomes an entry of its own, named `NAME-REPOSITORY:<that tag>`, carried byte-exact with its
 * blobs: every target that takes tags (registry, oci, containerd) then serves the same lookups.
 */

const COSIGN_TAGS: {suffix: string; kind: ReferrerKind; choice: keyof ReferrerChoice}[] = [
  {suffix: 'sig', kind: 'signature', choice: 'signatures'},
  {suffix: 'att', kind: 'attestation', choice: 'attestations'},
  {suffix: 'sbom', kind: 'sbom', choice: 'sboms'},
]

const SBOM_TYPE = /spdx|cyclonedx|syft/i

/** Which `referrers:` choice an OCI 1.1 referrer falls under. */
function referrerChoice(m: GraphManifest): keyof ReferrerChoice {
  if (m.kind === 'signature') return 'signatures'
  if (m.kind === 'attestation') return 'attestations'
  const type = m.doc.artifactType ?? m.doc.config?.mediaType ?? ''
  if (SBOM_TYPE.test(type) || m.doc.layers.some((l) => SBOM_TYPE.test(l?.mediaType ?? ''))) return 'sboms'
  return 'artifacts'
}

/** `registry/repository:tag` of the image's target name, for a tag in the same repository. */
function targetWithTag(name: string, tag: string): string {
  let base = name.split('@')[0]
  const colon = base.lastIndexOf(':')
  if (colon > base.lastIndexOf('/')) base = base.slice(0, colon)
  return `${base}:${tag}`
}

function referrerSpec(img: ImageSpec, tag: string): ImageSpec {
  const ref = {registry: img.ref.registry, repository: img.ref.repository, tag}
  return {ref, refString: `${ref.registry}/${ref.repository}:${tag}`, name: targetWithTag(img.name, tag), platforms: 'all', platformsChosen: false, subset: false, line: img.line, col: img.col}
}

function referrerEntry(image: ResolvedImage, spec: ImageSpec, graph: ContentGraph, kind: ReferrerKind, via: 'tag' | 'referrers', subject: string): ResolvedImage {
  const t = graph.top
  return {
    spec, top: {digest: t.digest, mediaType: t.mediaType, size: t.size, bytes: t.bytes}, sourceDigest: t.digest,
    manifests: graph.manifests.map((m) => resolvedManifest(m, 'unknown')),
    indexes: graph.indexes.map((ix) => ({digest: ix.digest, mediaType: ix.mediaType, size: ix.size, bytes: ix.bytes, manifests: ix.doc.manifests.map((d) => d.digest)})),
    platforms: [],
    referrerOf: {subject, image: image.spec.name, kind, via},
  }
}

async function fetchReferrerGraph(sources: Sources, spec: ImageSpec, top: FetchedNode, what: string): Promise<ContentGraph> {
  try {
    const graph = await fetchGraph(sources, spec, top)
    if (graph.manifests.some((m) => m.kind === 'image')) throw new AirlockError('upstream.bad_referrer', `${spec.refString} holds a runnable image, not a signature or artifact`)
    return graph
  } catch (error) {
    if (!(error instanceof AirlockError)) throw error
    throw new AirlockError('upstream.bad_referrer', `${what} is not usable: ${error.message}`)
  }
}

/** cosign's `sha256-<hex>.<suffix>` tag of `subject`, when the repository has it. */
async function cosignTag(sources: Sources, image: ResolvedImage, subject: string, t: (typeof COSIGN_TAGS)[number]): Promise<ResolvedImage | undefined> {
  const tag = `sha256-${subject.slice(7)}.${t.suffix}`
  const spec = referrerSpec(image.spec, tag)
  const what = `${image.spec.refString}: its cosign tag ${tag}`
  let got: {bytes: Buffer; mediaType: string; digest: string}
  try {
    const head = await sources.headManifest(spec.ref, tag)
    if (!head) return undefined
    got = await sources.getManifest(spec.ref, head.digest)
  } catch (error) {
    if (error instanceof AirlockError && error.code === 'registry.not_found') return undefined
    if (error instanceof AirlockError) throw new AirlockError('upstream.bad_referrer', `${what} is not usable: ${error.message}`)
    throw error
  }
  const graph = await fetchReferrerGraph(sources, spec, {digest: got.digest, mediaType: got.mediaType, size: got.bytes.length, bytes: got.bytes}, what)
  return referrerEntry(image, spec, graph, t.kind, 'tag', subject)
}

/** The OCI 1.1 referrers index of `subject`: from the API, else from the fallback tag; undefined when none. */
async function referrersIndex(sources: Sources, image: ResolvedImage, subject: string, choice: ReferrerChoice): Promise<ResolvedImage | undefined> {
  const tag = `sha256-${subject.slice(7)}`
  const spec = referrerSpec(image.spec, tag)
  const what = `${image.spec.refString}: the referrers of ${subject}`
  let found: {bytes: Buffer; mediaType: string; digest: string} | undefined
  let via: 'tag' | 'referrers' = 'referrers'
  try {
    // A registry that answers the referrers path with any error has no usable API: the fallback tag
    // decides (and reports a registry that is really unreachable).
    found = await sources.getReferrers(spec.ref, subject).catch((error: unknown) => {
      if (error instanceof AirlockError) return undefined
      throw error
    })
    if (!found) {
      via = 'tag'
      const head = await sources.headManifest(spec.ref, tag)
      if (head) found = await sources.getManifest(spec.ref, head.digest)
    }
  } catch (error) {
    if (error instanceof AirlockError && error.code === 'registry.not_found') return undefined
    if (error instanceof AirlockError) throw new AirlockError('upstream.bad_referrer', `${what} are not usable: ${error.message}`)
    throw error
  }
  if (!found) return undefined
  if (!isIndexMediaType(found.mediaType)) throw new AirlockError('upstream.bad_referrer', `${what}: tag ${tag} is a ${found.mediaType}, not an index of referrers`)
  const graph = await fetchReferrerGraph(sources, spec, {digest: found.digest, mediaType: found.mediaType, size: found.bytes.length, bytes: found.bytes}, what)
  const wanted = graph.manifests.filter((m) => choice[referrerChoice(m)])
  if (wanted.length === 0) return undefined
  return referrerEntry(image, spec, wanted.length === graph.manifests.length ? graph : narrowed(graph, wanted), 'referrers', via, subject)
}

/** The referrers index with only the wanted manifests (a new index: its bytes and digest change). */
function narrowed(graph: ContentGraph, wanted: GraphManifest[]): ContentGraph {
  const top = graph.top as ContentGraph['indexes'][number]
  const keep = new Set(wanted.map((m) => m.digest))
  const doc: ImageIndex = {...top.doc, manifests: top.doc.manifests.filter((d: Descriptor) => keep.has(d.digest))}
  const bytes = Buffer.from(JSON.stringify(doc))
  const index = {digest: sha256Digest(bytes), mediaType: top.mediaType || MediaType.OCI_INDEX, size: bytes.length, bytes, doc}
  return {top: index, manifests: wanted, indexes: [index]}
}

/** Look for every referrer `choice` wants, of the image's top digest and each runnable manifest. */
export async function discoverReferrers(sources: Sources, image: ResolvedImage, choice: ReferrerChoice): Promise<{referrers: ResolvedImage[]; upstream: UpstreamRecord}> {
  const subjects = [...new Set([image.top.digest, ...image.manifests.filter((m) => m.kind === 'image').map((m) => m.digest)])]
  const tags = COSIGN_TAGS.filter((t) => choice[t.choice])
  const anyReferrer = Object.values(choice).some(Boolean)
  const found = await Promise.all(subjects.flatMap((s) => [
    ...tags.map((t) => cosignTag(sources, image, s, t)),
    ...(anyReferrer ? [referrersIndex(sources, image, s, choice)] : []),
  ]))
  const referrers = found.filter((r): r is ResolvedImage => r !== undefined)
  const digests = (kind: ReferrerKind) => referrers.filter((r) => r.referrerOf!.kind === kind).map((r) => r.top.digest)
  return {referrers, upstream: {signatures: digests('signature'), attestations: digests('attestation'), sboms: digests('sbom'), referrers: digests('referrers')}}
}
