import {AirlockError, InputError} from '../core/errors.js'
import {sha256Digest} from '../core/digest.js'
import {
  Descriptor, ImageIndex, ImageManifest, isIndexMediaType, isManifestMediaType, Platform,
} from '../core/model.js'
import {formatPlatform, normalizePlatform, platformMatches} from '../spec/platform.js'
import type {BundleSpec, ImageSpec} from '../spec/types.js'
import type {Sources} from './sources.js'

export interface ResolvedManifest {
  digest: string
  mediaType: string
  size: number
  bytes: Buffer
  platform: string
  config: Descriptor
  layers: Descriptor[]
}

export interface ResolvedImage {
  spec: ImageSpec
  /** The top-level manifest or index stored in the archive. */
  top: {digest: string; mediaType: string; size: number; bytes: Buffer}
  /** What the registry's tag/digest pointed at (differs from top.digest when a platform subset was taken). */
  sourceDigest: string
  manifests: ResolvedManifest[]
  platforms: string[]
  dockerManifest: string
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch {
    throw new AirlockError('registry.bad_manifest', `${what}: manifest is not valid JSON`)
  }
}

function describePlatform(p: Platform | undefined): string {
  return p ? formatPlatform(normalizePlatform(p)) : 'unknown'
}

function isAttestation(d: Descriptor): boolean {
  return d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' || (d.platform?.os === 'unknown' && d.platform?.architecture === 'unknown')
}

async function resolveManifest(sources: Sources, img: ImageSpec, desc: {digest: string; mediaType: string}, bytes?: Buffer): Promise<ResolvedManifest> {
  const what = img.refString
  const got = bytes ? {bytes, mediaType: desc.mediaType, digest: desc.digest} : await sources.getManifest(img.ref, desc.digest)
  if (!isManifestMediaType(got.mediaType)) throw new AirlockError('registry.bad_manifest', `${what}: ${desc.digest} is a ${got.mediaType}, expected an image manifest`)
  const m = parseJson<ImageManifest>(got.bytes, what)
  if (!m.config?.digest || !Array.isArray(m.layers)) throw new AirlockError('registry.bad_manifest', `${what}: manifest ${desc.digest} has no config or layers`)
  // The config tells the platform; it is small and needed anyway, so fetch it now (verified, cached).
  const configBytes = await sources.getSmallBlob(img.ref, m.config.digest, m.config.size)
  const config = parseJson<{os?: string; architecture?: string; variant?: string}>(configBytes, `${what} config`)
  const platform = config.os && config.architecture ? describePlatform({os: config.os, architecture: config.architecture, variant: config.variant}) : 'unknown'
  return {digest: got.digest, mediaType: got.mediaType, size: got.bytes.length, bytes: got.bytes, platform, config: m.config, layers: m.layers}
}

async function resolveImage(sources: Sources, img: ImageSpec, dockerPlatform?: string): Promise<ResolvedImage> {
  const reference = img.ref.digest ?? img.ref.tag ?? 'latest'
  const top = await sources.getManifest(img.ref, reference)
  if (img.ref.digest && top.digest !== img.ref.digest) {
    throw new AirlockError('registry.digest_mismatch', `${img.refString}: registry served ${top.digest}`)
  }
  const want = img.platforms
  if (isManifestMediaType(top.mediaType)) {
    const m = await resolveManifest(sources, img, top, top.bytes)
    if (want !== 'all' && !want.some((w) => platformMatches(w, m.platform))) {
      throw new InputError('resolve.platform_missing', `${img.refString} is a single-platform image for ${m.platform}; wanted ${want.join(', ')} (set platforms: [${m.platform}] or all for this image)`)
    }
    return {spec: img, top: {digest: top.digest, mediaType: top.mediaType, size: top.bytes.length, bytes: top.bytes}, sourceDigest: top.digest, manifests: [m], platforms: [m.platform], dockerManifest: m.digest}
  }
  if (!isIndexMediaType(top.mediaType)) throw new AirlockError('registry.bad_manifest', `${img.refString}: unsupported media type ${top.mediaType}`)
  const index = parseJson<ImageIndex>(top.bytes, img.refString)
  const children = (index.manifests ?? []).filter((d) => isManifestMediaType(d.mediaType))
  let chosen: Descriptor[]
  if (want === 'all') {
    chosen = children.filter((d) => !isAttestation(d))
  } else {
    chosen = []
    for (const w of want) {
      const hit = children.find((d) => d.platform && platformMatches(w, {...d.platform}))
      if (!hit) {
        const have = children.filter((d) => !isAttestation(d)).map((d) => describePlatform(d.platform))
        throw new InputError('resolve.platform_missing', `${img.refString} has no ${w} image; it has: ${have.join(', ') || 'none'}`)
      }
      if (!chosen.includes(hit)) chosen.push(hit)
    }
    // Keep the registry's order so the new index is stable whatever order the spec lists.
    chosen.sort((a, b) => children.indexOf(a) - children.indexOf(b))
  }
  if (chosen.length === 0) throw new InputError('resolve.platform_missing', `${img.refString}: the index lists no image manifests`)
  const manifests = await Promise.all(chosen.map((d) => resolveManifest(sources, img, d)))
  let topOut = {digest: top.digest, mediaType: top.mediaType, size: top.bytes.length, bytes: top.bytes}
  const whole = chosen.length === (index.manifests ?? []).length
  if (!whole) {
    const subset: ImageIndex = {schemaVersion: 2, mediaType: top.mediaType, manifests: chosen}
    if (index.annotations) subset.annotations = index.annotations
    const bytes = Buffer.from(JSON.stringify(subset))
    topOut = {digest: sha256Digest(bytes), mediaType: top.mediaType, size: bytes.length, bytes}
  }
  const platforms = manifests.map((m) => m.platform)
  const dockerWant = dockerPlatform ?? (want === 'all' ? 'linux/amd64' : want[0])
  const docker = manifests.find((m) => platformMatches(dockerWant, m.platform)) ?? manifests[0]
  return {spec: img, top: topOut, sourceDigest: top.digest, manifests, platforms, dockerManifest: docker.digest}
}

/** Resolve every image to digests before any layer moves. */
export async function resolveImages(spec: BundleSpec, sources: Sources, opts: {dockerPlatform?: string; concurrency?: number} = {}): Promise<ResolvedImage[]> {
  const out: ResolvedImage[] = []
  const errors: string[] = []
  await Promise.all(spec.images.map(async (img, i) => {
    try {
      out[i] = await resolveImage(sources, img, opts.dockerPlatform)
    } catch (error) {
      if (!(error instanceof AirlockError)) throw error
      errors[i] = error.message.includes(img.refString) ? error.message : `${img.refString}: ${error.message}`
    }
  }))
  const failed = errors.filter(Boolean)
  if (failed.length > 0) {
    throw new AirlockError('resolve.failed', `could not resolve ${failed.length} of ${spec.images.length} images`, {details: failed})
  }
  return out
}

/** Every blob of a resolved image: top index/manifest, platform manifests, configs, layers. */
export function imageBlobs(img: ResolvedImage): {digest: string; size: number; mediaType: string}[] {
  const map = new Map<string, {digest: string; size: number; mediaType: string}>()
  const add = (d: {digest: string; size: number; mediaType: string}) => {
    if (!map.has(d.digest)) map.set(d.digest, {digest: d.digest, size: d.size, mediaType: d.mediaType})
  }
  add(img.top)
  for (const m of img.manifests) {
    add(m)
    add(m.config)
    for (const l of m.layers) add(l)
  }
  return [...map.values()]
}

