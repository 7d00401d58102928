import {Descriptor, ImageManifest, MediaType} from './model.js'

/**
 * What a manifest is, for the targets that care: only `image` is runnable (docker load, podman,
 * a platform to select); the others are carried byte-exact and never asked for a platform.
 */
export const CONTENT_KINDS = ['image', 'attestation', 'signature', 'artifact'] as const
export type ContentKind = typeof CONTENT_KINDS[number]

const RUNNABLE_CONFIGS: readonly string[] = [MediaType.OCI_CONFIG, MediaType.DOCKER_CONFIG]

/** Layer media types an engine can unpack into a filesystem (OCI and Docker, any compression). */
const LAYER_RE = /^application\/vnd\.(?:oci\.image\.layer\.(?:nondistributable\.)?v1\.tar(?:\+gzip|\+zstd)?|docker\.image\.rootfs\.(?:foreign\.)?diff\.tar\.gzip)$/

const ATTESTATION_LAYERS: readonly string[] = [MediaType.IN_TOTO, MediaType.DSSE_ENVELOPE]

export function isLayerMediaType(mt: string | undefined): boolean {
  return typeof mt === 'string' && LAYER_RE.test(mt)
}

/** A foreign (non-distributable) layer: its manifest may name URLs outside the registry for it. */
export function isForeignLayer(l: Descriptor): boolean {
  return (l.urls?.length ?? 0) > 0 || /foreign|nondistributable/.test(l.mediaType)
}

export function isZstdLayer(mt: string | undefined): boolean {
  return typeof mt === 'string' && mt.endsWith('+zstd')
}

/** BuildKit marks its attestation manifests in the index entry that lists them (and gives them platform unknown/unknown). */
export function isAttestationEntry(d: Descriptor): boolean {
  return d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' || (d.platform?.os === 'unknown' && d.platform?.architecture === 'unknown')
}

/**
 * The kind of `m`. `entry` is the index entry that listed it, when it came from an index (BuildKit
 * says there which manifests are attestations).
 */
export function manifestKind(m: ImageManifest, entry?: Descriptor): ContentKind {
  const layers = Array.isArray(m.layers) ? m.layers : []
  if ((entry && isAttestationEntry(entry)) || layers.some((l) => ATTESTATION_LAYERS.includes(l?.mediaType))) return 'attestation'
  if (layers.some((l) => l?.mediaType === MediaType.COSIGN_SIMPLE_SIGNING)) return 'signature'
  if (m.artifactType || !RUNNABLE_CONFIGS.includes(m.config?.mediaType) || !layers.every((l) => isLayerMediaType(l?.mediaType))) return 'artifact'
  return 'image'
}

const SCHEMA1_TYPES: readonly string[] = [
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
]

export function isSchema1MediaType(mt: string | undefined): boolean {
  return typeof mt === 'string' && SCHEMA1_TYPES.includes(mt)
}

/** Why a Docker schema 1 manifest is refused, and what works instead. */
export function schema1Refusal(what: string): string {
  return `${what} is a Docker schema 1 manifest, which is deprecated and not supported (its layers have no content digests to keep). Hint: copy the image once to a schema 2 or OCI manifest (e.g. \`skopeo copy --format v2s2 docker://OLD docker://NEW\`) and bundle that copy`
}
