/**
 * The small read-only image model shared by every transport (after go-containerregistry):
 * descriptors, manifests, indexes and the media types we accept.
 */
export const MediaType = {
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  /** OCI 1.1: the config of an artifact that has none, and the content of an empty blob ("{}"). */
  OCI_EMPTY: 'application/vnd.oci.empty.v1+json',
  HELM_CONFIG: 'application/vnd.cncf.helm.config.v1+json',
  HELM_CHART: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip',
  COSIGN_SIMPLE_SIGNING: 'application/vnd.dev.cosign.simplesigning.v1+json',
  IN_TOTO: 'application/vnd.in-toto+json',
  DSSE_ENVELOPE: 'application/vnd.dsse.envelope.v1+json',
} as const

export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaType.OCI_MANIFEST,
  MediaType.OCI_INDEX,
  MediaType.DOCKER_MANIFEST,
  MediaType.DOCKER_LIST,
]

export function isIndexMediaType(mt: string | undefined): boolean {
  return mt === MediaType.OCI_INDEX || mt === MediaType.DOCKER_LIST
}

export function isManifestMediaType(mt: string | undefined): boolean {
  return mt === MediaType.OCI_MANIFEST || mt === MediaType.DOCKER_MANIFEST
}

/** Largest manifest or index we accept from anywhere (registry or archive). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

export interface Platform {
  os: string
  architecture: string
  variant?: string
  'os.version'?: string
  'os.features'?: string[]
}

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  platform?: Platform
  annotations?: Record<string, string>
  urls?: string[]
  artifactType?: string
}

/** An image manifest, or (OCI 1.1) an artifact manifest: same shape, `artifactType` and `subject` optional. */
export interface ImageManifest {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  config: Descriptor
  layers: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

/** An index: its entries may be manifests or indexes (nested), to any depth. */
export interface ImageIndex {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  manifests: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/

export function hexOf(digest: string): string {
  if (!DIGEST_RE.test(digest)) throw new Error(`not a sha256 digest: ${digest}`)
  return digest.slice(7)
}

export function blobPath(digest: string): string {
  return `blobs/sha256/${hexOf(digest)}`
}

export function platformString(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/')
}
