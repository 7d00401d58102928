/** The normalised, validated form of a bundle.yaml (apiVersion airlock/v1, kind Bundle). */
import type {ErrorCode} from '../core/errors.js'
import type {Reference} from './reference.js'

export type {Reference} from './reference.js'

export interface BundleMetadata {
  name: string
  version: string
  description?: string
  /** As written: an RFC 3339 date/time or a duration after creation (`90d`, `12w`, `1y`, `48h`). See resolveExpiry(). */
  expires?: string
}

export interface BundleSpec {
  /** Absolute path of the bundle.yaml. */
  file: string
  /** Absolute directory of the bundle.yaml (relative paths in the spec are resolved against it). */
  dir: string
  metadata: BundleMetadata
  /** Top-level default platforms, normalised (`linux/arm64/v8`), or 'all'. Default ['linux/amd64']. */
  platforms: string[] | 'all'
  images: ImageSpec[]
  /** `files:` items (absent or empty: none). */
  files?: FileSpec[]
  /** `charts:` from classic Helm repositories; `chart: oci://…` items are in `images` (with `chart`). */
  charts?: RepoChartSpec[]
  /** Keyed by normalised registry host[:port] (`index.docker.io` → `docker.io`). */
  registries: Record<string, RegistryOptions>
  signing?: {key?: string /* absolute path */; fingerprint?: string /* uppercase hex, no 0x */}
}

export interface ImageSpec {
  ref: Reference
  /** Full normalised source reference, e.g. `docker.io/library/nginx:latest`. */
  refString: string
  /** Full target reference: the spec's `name`, else ref without digest (tag kept; digest-only refs keep the digest). */
  name: string
  /** Normalised platforms for this image (its own, else the top-level ones), or 'all'. */
  platforms: string[] | 'all'
  /** `platforms` was written in bundle.yaml (for this image or at the top), not the default. */
  platformsChosen: boolean
  /** `subset: true`: a platform subset of an index pinned by digest may be rewritten to a new index. */
  subset: boolean
  /**
   * What refers to the image that comes along (cosign tags, OCI 1.1 referrers). Absent: nothing is
   * looked for (bundle.yaml always sets it; the default carries signatures only).
   */
  referrers?: ReferrerChoice
  /** Upstream signatures the image must carry, checked at create (`verify:` in bundle.yaml). */
  verify?: UpstreamPolicy
  /** A `charts:` item in an OCI registry (`chart: oci://…`): resolved like an image, read as a Helm chart. */
  chart?: true
  /** Position of the image entry in bundle.yaml (1-based). */
  line: number
  col: number
}

/** `referrers:` in bundle.yaml: which kinds of referrers of an image are carried. */
export interface ReferrerChoice {
  signatures: boolean
  attestations: boolean
  sboms: boolean
  /** OCI 1.1 referrers of any other artifact type. */
  artifacts: boolean
}

export const DEFAULT_REFERRERS: Readonly<ReferrerChoice> = {signatures: true, attestations: false, sboms: false, artifacts: false}

/** `verify:` in bundle.yaml: a cosign public key (PEM, absolute path) that must have signed the image. */
export interface UpstreamPolicy {
  key: string
  /** Also an in-toto attestation (DSSE envelope) by the key about the image's digest. */
  attestations?: boolean
}

export interface RegistryOptions {
  insecure?: boolean
  /** Absolute path of a PEM CA file. */
  ca?: string
  /** Names of the environment variables holding the credentials (never the credentials). */
  auth?: {usernameEnv: string; passwordEnv: string}
  mirrors?: string[]
}

/** One problem found in a bundle.yaml, with a 1-based position. */
export interface Problem {
  file: string
  line: number
  col: number
  message: string
  /** Stable machine-readable identifier, e.g. `schema.unknown_key`, `reference.invalid`. */
  code: ErrorCode
}

export const API_VERSION = 'airlock/v1'
export const KIND = 'Bundle'
export const DEFAULT_PLATFORMS: readonly string[] = ['linux/amd64']

/** One `files:` item: a local file or directory tree, or a URL, and where it goes on the target. */
export interface FileSpec {
  /** Absolute local path, or the http(s) URL as written. */
  source: string
  url: boolean
  /** Relative, normalised (`a/b`), no `..`. For a directory source: the directory its tree goes to. */
  dest: string
  /** Octal mode of every file of the item, e.g. `0644`. */
  mode: string
  /** Expected sha256 hex of a URL's content (else pinned in the lock file). */
  sha256?: string
  /** Target name of the entry in the archive (`airlock.local/files/…:VERSION`). */
  name: string
  line: number
  col: number
}

/** One `charts:` item from a classic Helm repository (OCI charts become image entries). */
export interface RepoChartSpec {
  /** Base URL of the repository (index.yaml lies under it), without a trailing slash. */
  repo: string
  /** Registry options key for this repository: its host[:port]. */
  host: string
  name: string
  /** A version or a semver range. */
  version: string
  line: number
  col: number
}
