import type {ContentKind} from '../core/content.js'
import {isZstdLayer} from '../core/content.js'
import {AirlockError, InputError} from '../core/errors.js'
import {Descriptor, Platform} from '../core/model.js'
import {formatPlatform, normalizePlatform, platformMatches} from '../spec/platform.js'
import type {BundleSpec, ImageSpec} from '../spec/types.js'
import type {ArtifactContent, OmittedRecord, ReferrerOf, UpstreamRecord} from '../transports/archive/metadata.js'
import {fetchGraph, GraphManifest} from './graph.js'
import {discoverReferrers} from './referrers.js'
import {ResolvedIndex, Runnable, selectPlatforms} from './select.js'
import type {Sources} from './sources.js'

export type {ResolvedIndex} from './select.js'

export interface ResolvedManifest {
  digest: string
  mediaType: string
  size: number
  bytes: Buffer
  /** `os/arch[/variant]` of a runnable image (from its config); `unknown` for everything else. */
  platform: string
  kind: ContentKind
  artifactType?: string
  subject?: string
  zstd: boolean
  config: Descriptor
  layers: Descriptor[]
}

export interface ResolvedImage {
  spec: ImageSpec
  /** The top-level manifest or index stored in the archive. */
  top: {digest: string; mediaType: string; size: number; bytes: Buffer}
  /** What the registry's tag/digest pointed at (differs from top.digest when a platform subset was taken). */
  sourceDigest: string
  /** Every manifest of the entry's graph: images, attestations, signatures, artifacts. */
  manifests: ResolvedManifest[]
  /** Every index of the entry's graph, the top one first (empty when the top is a manifest). */
  indexes: ResolvedIndex[]
  /** Platforms of the runnable images. */
  platforms: string[]
  /** The runnable manifest for docker load and the engines; undefined when there is none. */
  dockerManifest?: string
  /** A platform subset: what the source index held that the new one does not. */
  omitted?: OmittedRecord[]
  /** Entries that refer to this image (cosign tags, OCI 1.1 referrers), found as bundle.yaml asks. */
  referrers?: ResolvedImage[]
  /** Set on such an entry: what it refers to. */
  referrerOf?: ReferrerOf
  /** Set on an image whose referrers were looked for. */
  upstream?: UpstreamRecord
  /** A `files:` or `charts:` entry. */
  content?: ArtifactContent
}

function parseConfig(bytes: Buffer, what: string): {os?: string; architecture?: string; variant?: string} {
  try {
    return JSON.parse(bytes.toString('utf8')) as {os?: string; architecture?: string; variant?: string}
  } catch {
    throw new AirlockError('registry.bad_manifest', `${what}: image config is not valid JSON`)
  }
}

function describePlatform(p: Platform | undefined): string {
  return p ? formatPlatform(normalizePlatform(p)) : 'unknown'
}

/** A runnable image's platform, from its config (small, and written into the archive anyway). */
async function runnablePlatform(sources: Sources, img: ImageSpec, m: GraphManifest): Promise<string> {
  const c = m.doc.config
  const config = parseConfig(await sources.getSmallBlob(img.ref, c.digest, c.size), `${img.refString} ${m.digest}`)
  return config.os && config.architecture ? describePlatform({os: config.os, architecture: config.architecture, variant: config.variant}) : 'unknown'
}

export function resolvedManifest(m: GraphManifest, platform: string): ResolvedManifest {
  const subject = m.doc.subject?.digest
  return {
    digest: m.digest, mediaType: m.mediaType, size: m.size, bytes: m.bytes, platform, kind: m.kind,
    ...(m.doc.artifactType ? {artifactType: m.doc.artifactType} : {}),
    ...(typeof subject === 'string' ? {subject} : {}),
    zstd: m.kind === 'image' && m.doc.layers.some((l) => isZstdLayer(l.mediaType)),
    config: m.doc.config, layers: m.doc.layers,
  }
}

async function resolveImage(sources: Sources, img: ImageSpec, dockerPlatform?: string): Promise<ResolvedImage> {
  const reference = img.ref.digest ?? img.ref.tag ?? 'latest'
  const got = await sources.getManifest(img.ref, reference)
  if (img.ref.digest && got.digest !== img.ref.digest) {
    throw new AirlockError('registry.digest_mismatch', `${img.refString}: registry served ${got.digest}`)
  }
  const graph = await fetchGraph(sources, img, {digest: got.digest, mediaType: got.mediaType, size: got.bytes.length, bytes: got.bytes})
  const runnables: Runnable[] = await Promise.all(graph.manifests.filter((m) => m.kind === 'image').map(async (m) => ({manifest: m, platform: await runnablePlatform(sources, img, m)})))
  const sel = selectPlatforms(img, graph, runnables)
  const platformOf = new Map(runnables.map((r) => [r.manifest.digest, r.platform]))
  const manifests = sel.manifests.map((m) => resolvedManifest(m, platformOf.get(m.digest) ?? 'unknown'))
  const kept = manifests.filter((m) => m.kind === 'image')
  const want = img.platforms
  const dockerWant = dockerPlatform ?? (want === 'all' ? 'linux/amd64' : want[0])
  const docker = kept.find((m) => platformMatches(dockerWant, m.platform)) ?? kept[0]
  const resolved: ResolvedImage = {
    spec: img, top: sel.top, sourceDigest: got.digest, manifests, indexes: sel.indexes,
    platforms: kept.map((m) => m.platform),
    ...(docker ? {dockerManifest: docker.digest} : {}),
    ...(sel.omitted ? {omitted: sel.omitted} : {}),
  }
  return img.referrers ? {...resolved, ...(await discoverReferrers(sources, resolved, img.referrers))} : resolved
}

/**
 * The entries of the archive: each image, then the entries that refer to it. A referrer whose name
 * bundle.yaml already lists (`api:sha256-….sig` as an image of its own) with the same digest makes
 * that entry the referrer; with another digest it is left out (the listed entry wins). Each image's
 * `upstream` then lists exactly the referrer entries the archive holds.
 */
export function withReferrers(images: ResolvedImage[]): ResolvedImage[] {
  const byName = new Map(images.map((img) => [img.spec.name, img]))
  const out: ResolvedImage[] = []
  for (const img of images) {
    out.push(img)
    if (!img.referrers || img.referrerOf) continue
    const kept: ResolvedImage[] = []
    for (const r of img.referrers) {
      const listed = byName.get(r.spec.name)
      if (!listed) {
        byName.set(r.spec.name, r)
        out.push(r)
        kept.push(r)
      } else if (listed !== img && listed.top.digest === r.top.digest && !listed.referrerOf && !listed.referrers?.length) {
        listed.referrerOf = r.referrerOf
        delete listed.upstream
        kept.push(listed)
      }
    }
    img.referrers = kept
    const digests = (kind: string) => kept.filter((r) => r.referrerOf!.kind === kind).map((r) => r.top.digest)
    img.upstream = {...img.upstream, signatures: digests('signature'), attestations: digests('attestation'), sboms: digests('sbom'), referrers: digests('referrers')}
  }
  return out
}

/**
 * The entries left when some were dropped (--keep-going): a referrer goes with its image, and each
 * image's `upstream` lists only the referrer entries still there.
 */
export function keepReferrersConsistent(entries: ResolvedImage[]): ResolvedImage[] {
  const names = new Set(entries.filter((e) => !e.referrerOf).map((e) => e.spec.name))
  const kept = entries.filter((e) => !e.referrerOf || names.has(e.referrerOf.image))
  const present = new Set(kept.map((e) => e.top.digest))
  for (const img of kept) {
    const u = img.upstream
    if (!u) continue
    const only = (list: string[]) => list.filter((d) => present.has(d))
    img.upstream = {...u, signatures: only(u.signatures), attestations: only(u.attestations), sboms: only(u.sboms), referrers: only(u.referrers)}
  }
  return kept
}

/** Resolve every image to digests before any layer moves. */
export async function resolveImages(spec: BundleSpec, sources: Sources, opts: {dockerPlatform?: string; concurrency?: number} = {}): Promise<ResolvedImage[]> {
  const out: ResolvedImage[] = []
  const errors: string[] = []
  let allInput = true
  await Promise.all(spec.images.map(async (img, i) => {
    try {
      out[i] = await resolveImage(sources, img, opts.dockerPlatform)
    } catch (error) {
      if (!(error instanceof AirlockError)) throw error
      allInput &&= error instanceof InputError
      errors[i] = error.message.includes(img.refString) ? error.message : `${img.refString}: ${error.message}`
    }
  }))
  const failed = errors.filter(Boolean)
  if (failed.length > 0) {
    // What bundle.yaml asks for that cannot be had (a platform, a pinned subset) is the user's to fix: exit 2.
    const Failure = allInput ? InputError : AirlockError
    throw new Failure('resolve.failed', `could not resolve ${failed.length} of ${spec.images.length} images`, {details: failed})
  }
  return out
}

/** Every blob of a resolved image: its indexes, manifests, configs and layers. */
export function imageBlobs(img: ResolvedImage): {digest: string; size: number; mediaType: string}[] {
  const map = new Map<string, {digest: string; size: number; mediaType: string}>()
  const add = (d: {digest: string; size: number; mediaType: string}) => {
    if (!map.has(d.digest)) map.set(d.digest, {digest: d.digest, size: d.size, mediaType: d.mediaType})
  }
  add(img.top)
  for (const ix of img.indexes) add(ix)
  for (const m of img.manifests) {
    add(m)
    add(m.config)
    for (const l of m.layers) add(l)
  }
  return [...map.values()]
}

