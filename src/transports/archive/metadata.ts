import type {ContentKind} from '../../core/content.js'
import {blobPath, Descriptor, MediaType} from '../../core/model.js'
import {sha256Hex} from '../../core/digest.js'

/**
 * The format this airlock writes. Version 2: the signature entry, when there is one, is a slot of
 * SIGNATURE_SLOT bytes (the armored signature, then newlines), so that another signature can be
 * added in place (`airlock sign`) without moving a byte of what follows. Version 3: an entry is a
 * graph (nested indexes, attestations, signatures, artifacts: `indexes`, `kind`, `subject`), it may
 * have nothing runnable (no `dockerManifest`), and a platform subset names what it left out
 * (`omitted`). Versions 1 and 2 are still read.
 */
export const FORMAT_VERSION = 3
export const READABLE_FORMATS: readonly number[] = [1, 2, 3]

/** Size of the signature entry in format 2: room for some twenty signatures by RSA-4096 keys, fifty by Ed25519 ones. */
export const SIGNATURE_SLOT = 16 * 1024

/** The signature entry's content for format 2: the armored signature(s), padded with newlines to SIGNATURE_SLOT. */
export function signatureSlot(armored: string): Buffer {
  const text = Buffer.from(`${armored.trimEnd()}\n`)
  if (text.length > SIGNATURE_SLOT) throw new Error(`the signatures take ${text.length} bytes, more than the ${SIGNATURE_SLOT}-byte slot`)
  return Buffer.concat([text, Buffer.alloc(SIGNATURE_SLOT - text.length, 0x0a)])
}

export const ENTRY = {
  METADATA: 'airlock.json',
  CHECKSUMS: 'checksums.sha256',
  SIGNATURE: 'checksums.sha256.asc',
  OCI_LAYOUT: 'oci-layout',
  INDEX: 'index.json',
  DOCKER_MANIFEST: 'manifest.json',
} as const

/** Fixed order of the entries that precede the blobs. */
export const HEAD_ENTRIES = [ENTRY.METADATA, ENTRY.CHECKSUMS, ENTRY.SIGNATURE, ENTRY.OCI_LAYOUT, ENTRY.INDEX, ENTRY.DOCKER_MANIFEST] as const

export const LIMITS = {
  [ENTRY.METADATA]: 16 * 1024 * 1024,
  [ENTRY.CHECKSUMS]: 16 * 1024 * 1024,
  [ENTRY.SIGNATURE]: 64 * 1024,
  [ENTRY.OCI_LAYOUT]: 4 * 1024,
  [ENTRY.INDEX]: 4 * 1024 * 1024,
  [ENTRY.DOCKER_MANIFEST]: 4 * 1024 * 1024,
} as Record<string, number>

export const BLOB_NAME_RE = /^blobs\/sha256\/([a-f0-9]{64})$/

export interface BlobRef {
  digest: string
  size: number
}

/** A manifest in an entry's graph: a runnable image, an attestation, a signature or another artifact. */
export interface ManifestRecord {
  digest: string
  mediaType: string
  size: number
  /** `os/arch[/variant]` of a runnable image; `unknown` for everything else. */
  platform: string
  config: string
  layers: string[]
  /** Absent (formats 1 and 2): `image`. */
  kind?: ContentKind
  artifactType?: string
  /** OCI 1.1 `subject`: the manifest this one refers to (a signature's image, say). */
  subject?: string
  /** Some layer is zstd-compressed: left out of manifest.json (docker 20.10 cannot load it). */
  zstd?: true
}

/** An index in an entry's graph and the digests it lists, in its order. */
export interface IndexRecord {
  digest: string
  mediaType: string
  size: number
  manifests: string[]
}

/** What a platform subset left out of the source index (format 3). */
export interface OmittedRecord {
  digest: string
  mediaType: string
  platform: string
  kind: ContentKind | 'index'
}

/** What a referrer entry is to its image: a cosign tag's content, or an OCI 1.1 referrers index. */
export type ReferrerKind = 'signature' | 'attestation' | 'sbom' | 'referrers'
export const REFERRER_KINDS: readonly ReferrerKind[] = ['signature', 'attestation', 'sbom', 'referrers']

/**
 * An entry that refers to another entry's image (format 3): `sha256-<hex>.sig` / `.att` / `.sbom`
 * (cosign's tags) or `sha256-<hex>` (the OCI 1.1 referrers index, found by the API or its fallback tag).
 */
export interface ReferrerOf {
  /** The digest referred to: the image's top digest or one of its runnable manifests. */
  subject: string
  /** The name of the entry whose image that is. */
  image: string
  kind: ReferrerKind
  via: 'tag' | 'referrers'
}

/** What an image carries from upstream, and which policy checked it at create (format 3). */
export interface UpstreamRecord {
  /** Digests of the referrer entries of each kind. */
  signatures: string[]
  attestations: string[]
  sboms: string[]
  referrers: string[]
  /** bundle.yaml's `verify:` key checked a signature over the image's digest at create. */
  verifiedBy?: {keyFingerprint: string; signature: string; attestation?: string}
}

/** A file of a `files:` entry: where it goes on a `dir:` target, its mode and its blob. */
export interface FileRecord {
  path: string
  mode: string
  digest: string
  size: number
}

/**
 * What a `files:` or `charts:` entry is, for the targets that place it by name (`dir:`, `serve`'s
 * /files/, `--only`). The same facts are in its OCI manifest (title and mode annotations, Helm config).
 */
export type ArtifactContent =
  | {type: 'files'; files: FileRecord[]}
  | {type: 'chart'; name: string; version: string; chart: {digest: string; size: number}}

/** One entry of bundle.yaml, resolved: the graph under `digest` and every blob it uses. */
export interface ImageRecord {
  ref: string
  name: string
  mediaType: string
  digest: string
  size: number
  /** What the source's tag or digest pointed at; differs from `digest` only for a platform subset. */
  sourceDigest: string
  /** Platforms of the runnable images. */
  platforms: string[]
  /** Every manifest reachable from `digest` (the entry itself when it is a manifest). */
  manifests: ManifestRecord[]
  /**
   * Every index reachable from `digest`, the top one first (format 3). Absent (formats 1 and 2): the
   * entry is a manifest, or one index listing exactly `manifests`.
   */
  indexes?: IndexRecord[]
  /** The runnable manifest `docker load` and the engines get; absent when the entry has none. */
  dockerManifest?: string
  /** A platform subset: what the source index held that this entry does not. */
  omitted?: OmittedRecord[]
  /** Set on an entry that refers to another entry's image (its signature, attestation, SBOM, referrers). */
  referrerOf?: ReferrerOf
  /** Set on an image whose referrers were looked for. */
  upstream?: UpstreamRecord
  /** A `files:` or `charts:` entry (format 3, optional). */
  content?: ArtifactContent
  blobs: BlobRef[]
}

export interface AirlockMetadata {
  formatVersion: number
  tool: {name: string; version: string}
  bundle: {name: string; version: string; description?: string; created: string; expires?: string}
  images: ImageRecord[]
  blobs: {count: number; bytes: number; referencedBytes: number}
  /** Present when the archive was written as parts of at most partSize bytes (NAME.000, NAME.001, …). */
  split?: {partSize: number}
  /**
   * Differential bundle: blobs the images use that this archive does NOT contain, because the
   * base bundle already shipped them; the target must hold them (or `install --base` supplies them).
   */
  base?: {name: string; version: string; sha256?: string; blobs: BlobRef[]}
}

export const OCI_LAYOUT_CONTENT = Buffer.from('{"imageLayoutVersion":"1.0.0"}')

export function stableJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, null, 2) + '\n')
}

export function buildIndexJson(images: ImageRecord[]): Buffer {
  const manifests: Descriptor[] = images.map((img) => ({
    mediaType: img.mediaType,
    digest: img.digest,
    size: img.size,
    annotations: {
      'io.containerd.image.name': img.name,
      'org.opencontainers.image.ref.name': img.name,
    },
  }))
  return stableJson({schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests})
}

/** Docker's load manifest: tags only for references that carry a tag (digest-only images load untagged). */
export function dockerRepoTags(name: string): string[] {
  const at = name.indexOf('@')
  const base = at === -1 ? name : name.slice(0, at)
  const lastSlash = base.lastIndexOf('/')
  return base.indexOf(':', lastSlash + 1) === -1 ? [] : [base]
}

/** The kind of a manifest record (formats 1 and 2 hold runnable images only). */
export function kindOf(m: ManifestRecord): ContentKind {
  return m.kind ?? 'image'
}

/** How many manifests of each kind, and nested indexes, an entry's graph holds. */
export interface ContentCounts {
  images: number
  attestations: number
  signatures: number
  artifacts: number
  /** Indexes below the top one. */
  nestedIndexes: number
}

export function contentCounts(img: ImageRecord): ContentCounts {
  const n = (k: ContentKind) => img.manifests.filter((m) => kindOf(m) === k).length
  const nestedIndexes = (img.indexes ?? []).filter((ix) => ix.digest !== img.digest).length
  return {images: n('image'), attestations: n('attestation'), signatures: n('signature'), artifacts: n('artifact'), nestedIndexes}
}

/** What an entry is at the top: an index, or the kind of its one manifest. */
export function entryKind(img: ImageRecord): ContentKind | 'index' {
  const top = img.manifests.find((m) => m.digest === img.digest)
  return top ? kindOf(top) : 'index'
}

/** The platform manifest of `img` that the engines load (`img.dockerManifest`); undefined when it has none. */
export function runnableManifestOf(img: ImageRecord): ManifestRecord | undefined {
  if (img.dockerManifest === undefined) return undefined
  const m = img.manifests.find((x) => x.digest === img.dockerManifest)
  if (!m || kindOf(m) !== 'image') throw new Error(`dockerManifest ${img.dockerManifest} is not a runnable manifest of ${img.name}`)
  return m
}

/** The platform manifest of `img` that the engines load; throws for an entry with nothing runnable. */
export function dockerManifestOf(img: ImageRecord): ManifestRecord {
  const m = runnableManifestOf(img)
  if (!m) throw new Error(`${img.name} has no runnable image`)
  return m
}

/**
 * The entries `docker load` of the whole archive can load: runnable, and no zstd layer (Docker
 * Engine before 23 cannot unpack zstd; `install --to docker` decompresses those instead).
 */
export function dockerLoadable(images: ImageRecord[]): ImageRecord[] {
  return images.filter((img) => {
    const m = runnableManifestOf(img)
    return m !== undefined && !m.zstd
  })
}

/**
 * `zstd: true` (a loader that gets zstd layers decompressed: `install --to docker`) lists every
 * runnable entry, zstd or not.
 */
export function buildDockerManifestJson(images: ImageRecord[], opts: {zstd?: boolean} = {}): Buffer {
  const loadable = opts.zstd ? images.filter((img) => runnableManifestOf(img) !== undefined) : dockerLoadable(images)
  const entries = loadable.map((img) => {
    const m = dockerManifestOf(img)
    return {Config: blobPath(m.config), RepoTags: dockerRepoTags(img.name), Layers: m.layers.map((l) => blobPath(l))}
  })
  return stableJson(entries)
}

/** `sha256sum` format: "HEX  PATH\n", sorted by path in byte order. */
export function buildChecksums(files: Map<string, string>): Buffer {
  const names = [...files.keys()].sort(byteOrder)
  return Buffer.from(names.map((n) => `${files.get(n)}  ${n}\n`).join(''))
}

export function byteOrder(a: string, b: string): number {
  const ba = Buffer.from(a)
  const bb = Buffer.from(b)
  return Buffer.compare(ba, bb)
}

export function fileHashes(meta: Buffer, index: Buffer, dockerManifest: Buffer, blobDigests: string[]): Map<string, string> {
  const files = new Map<string, string>()
  files.set(ENTRY.METADATA, sha256Hex(meta))
  files.set(ENTRY.OCI_LAYOUT, sha256Hex(OCI_LAYOUT_CONTENT))
  files.set(ENTRY.INDEX, sha256Hex(index))
  files.set(ENTRY.DOCKER_MANIFEST, sha256Hex(dockerManifest))
  for (const d of blobDigests) files.set(blobPath(d), d.slice(7))
  return files
}

/**
 * The layers a bundle shipped or expected (every layer its images' manifests name): what a
 * differential bundle made against it (`create --since`) leaves out.
 */
export function bundleLayers(metadata: Pick<AirlockMetadata, 'images'>): Set<string> {
  return new Set(metadata.images.flatMap((i) => i.manifests.flatMap((m) => m.layers)))
}
