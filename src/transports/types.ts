import type {ArchiveSink, VerifiedHead} from './archive/reader.js'
import type {ImageRecord} from './archive/metadata.js'
import type {Progress} from '../core/progress.js'
import type {ContentKind} from '../core/content.js'

/** One image as it ends up on the target, confirmed there after loading. */
export interface InstalledImage {
  /** Name on the target (after any prefix rewrite). */
  name: string
  /** The signed digest (index or manifest) from airlock.json. */
  digest: string
  /** What the target reports for it (image ID = config digest for docker/podman, manifest/index digest for containerd/registry/oci). */
  confirmed: string
}

/** A selected entry an engine target (docker, podman) did not load: it holds nothing runnable. */
export interface SkippedEntry {
  name: string
  digest: string
  /** What it holds: a chart or other OCI artifact, a signature, an attestation. */
  kind: ContentKind
  reason: string
}

/**
 * Manifests of a loaded entry that an engine does not get, counted by kind: `image` counts the
 * other platforms, the others the attestations, signatures and artifacts the entry's index lists.
 */
export interface LeftOutManifests {
  name: string
  digest: string
  counts: Partial<Record<ContentKind, number>>
}

/** What an engine target left out of the selected entries. */
export interface LeftOut {
  skipped: SkippedEntry[]
  manifests: LeftOutManifests[]
}

/**
 * An install target. It receives verified content through the ArchiveSink calls, in the same
 * streaming pass as the verification, and must make NOTHING visible before commit(); abort()
 * must leave the target exactly as before. After commit, confirm() checks on the target that
 * every selected image has its signed digest / image ID.
 */
export interface Destination extends ArchiveSink {
  readonly kind: string
  confirm(): Promise<InstalledImage[]>
  /**
   * Which of these blobs the target does NOT hold (differential bundles). Targets that cannot
   * take a partial archive (docker, podman) leave it undefined.
   */
  missing?(digests: string[]): Promise<string[]>
  /**
   * Engines (docker, podman) load runnable images only: what they left out of the selected
   * entries (known from begin() on). Targets that take everything leave it undefined.
   */
  leftOut?(): LeftOut
}

export interface DestinationContext {
  /** The images selected for installation (all, or those named by --only). */
  selected: (head: VerifiedHead) => ImageRecord[]
  progress: Progress
  /**
   * The archive's parts, when they are regular files that can be read again by offset (a
   * destination may then re-read a verified blob instead of keeping a copy of it).
   */
  parts?: string[]
}
