/**
 * What one `podman load` gets for one image so that podman keeps its digests: an OCI archive
 * whose index.json lists exactly one descriptor (podman 4.x refuses an OCI archive of several
 * images, and a docker archive makes it record new manifest digests), named by its
 * `org.opencontainers.image.ref.name` annotation.
 *
 * The descriptor is the entry's index when podman would pick the bundled platform manifest from
 * it by itself: podman then records both the index digest and the platform manifest digest, and
 * `NAME@sha256:<either>` finds the image. It is the platform manifest itself when podman could
 * not: a nested index (podman chooses an instance only among the top index's own entries), or a
 * platform other than podman's own (`podman load` has no --platform). Only the platform manifest
 * digest is recorded then, and the name of a digest-only image must carry that digest (podman
 * refuses a name whose digest differs from what it loads).
 */
import {isIndexMediaType, type Descriptor} from '../../core/model.js'
import {dockerManifestOf, dockerRepoTags, kindOf, type ImageRecord, type ManifestRecord} from '../archive/metadata.js'

export interface PodmanLoadPlan {
  img: ImageRecord
  /** What index.json lists: the entry's index, or its platform manifest. */
  top: Descriptor
  /** The name podman gives the image: `REPO:TAG`, or `REPO@<top digest>` for a digest-only one. */
  loadName: string
  /** The repository, for `REPO@sha256:…` lookups. */
  repository: string
  /** The platform manifest podman loads. */
  manifest: ManifestRecord
  /** The blobs of the archive, top first. */
  blobs: string[]
  /** Why the index digest is not kept (only the platform manifest digest is), when it is not. */
  indexNotKept?: string
}

/** `os/arch` of a platform string `os/arch[/variant]`. */
function osArch(platform: string): string {
  return platform.split('/').slice(0, 2).join('/')
}

/** The repository of a full reference `REPO[:TAG][@DIGEST]`. */
export function repositoryOf(name: string): string {
  const at = name.indexOf('@')
  const base = at === -1 ? name : name.slice(0, at)
  const tag = dockerRepoTags(base)[0]
  return tag ? tag.slice(0, tag.lastIndexOf(':')) : base
}

/** The manifests the entry's own (top) index lists directly; undefined when the entry is no index. */
function topEntries(img: ImageRecord): string[] | undefined {
  if (!isIndexMediaType(img.mediaType)) return undefined
  // Formats 1 and 2 (no `indexes`): the entry is one index listing exactly `manifests`.
  if (!img.indexes) return img.manifests.map((m) => m.digest)
  return img.indexes.find((i) => i.digest === img.digest)?.manifests ?? []
}

/** Why podman would not pick `m` from the entry's index by itself, or undefined when it would. */
function notPickedFromIndex(img: ImageRecord, m: ManifestRecord, hostPlatform: string): string | undefined {
  const listed = topEntries(img)
  if (!listed) return undefined
  if (!listed.includes(m.digest)) return 'the platform manifest is in a nested index, and podman chooses only among the top index\'s own entries'
  if (osArch(m.platform) !== osArch(hostPlatform)) return `the platform is ${m.platform}, and podman load chooses its own (${hostPlatform}) from an index`
  const rivals = img.manifests.filter((x) => x.digest !== m.digest && listed.includes(x.digest) && kindOf(x) === 'image' && osArch(x.platform) === osArch(m.platform))
  if (rivals.length > 0) return `the index has ${rivals.length + 1} images for ${osArch(m.platform)}, and podman might choose another`
  return undefined
}

/** How one runnable image is loaded into podman on `hostPlatform` (`os/arch`, podman's). */
export function podmanLoadPlan(img: ImageRecord, hostPlatform: string): PodmanLoadPlan {
  const manifest = dockerManifestOf(img)
  const repository = repositoryOf(img.name)
  const tag = dockerRepoTags(img.name)[0]
  const isIndex = topEntries(img) !== undefined
  const why = isIndex ? notPickedFromIndex(img, manifest, hostPlatform) : undefined
  const viaIndex = isIndex && why === undefined
  const top: Descriptor = viaIndex
    ? {mediaType: img.mediaType, digest: img.digest, size: img.size}
    : {mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size}
  return {
    img, top, repository, manifest,
    loadName: tag ?? `${repository}@${top.digest}`,
    blobs: [...new Set([top.digest, manifest.digest, manifest.config, ...manifest.layers])],
    ...(why === undefined ? {} : {indexNotKept: why}),
  }
}

/** The references that must find the loaded image: its name, and its repository at each digest kept. */
export function podmanLookups(plan: PodmanLoadPlan): string[] {
  const digests = [...new Set([plan.top.digest, plan.manifest.digest])]
  return [plan.loadName, ...digests.map((d) => `${plan.repository}@${d}`)]
}
