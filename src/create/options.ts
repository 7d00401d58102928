import type {SigningKeyOptions} from '../sign/find.js'
import type {Progress} from '../core/progress.js'
import {InputError} from '../core/errors.js'
import type {ContentKind} from '../core/content.js'
import type {ContentCounts, OmittedRecord} from '../transports/archive/metadata.js'

export interface CreateOptions {
  specFile: string
  output?: string
  signKey?: string
  /** Keys directory, passphrase and prompt for the signing key (passed in by the command). */
  signing?: SigningKeyOptions
  unsigned?: boolean
  jobs?: number
  /** Blob cache directory (opt-in): blobs are taken from it and pulled ones kept in it. */
  cacheDir?: string
  locked?: boolean
  dockerPlatform?: string
  registryConfig?: string
  /**
   * Seconds since the epoch for every timestamp in the archive (default 0). When given (the
   * command passes SOURCE_DATE_EPOCH), a relative `expires` counts from it too, so the archive is
   * reproducible; otherwise it counts from now.
   */
  epoch?: number
  progress?: Progress
  retries?: number
  retryBaseDelayMs?: number
  /**
   * Build an archive of the images that could be fetched instead of failing on the first image
   * that cannot be resolved or pulled; the others are reported in `failed` (and the lock file is
   * not rewritten, since it would describe only part of bundle.yaml).
   */
  keepGoing?: boolean
  /** Write the archive as parts of at most this many bytes (OUT.000, OUT.001, …). */
  splitSize?: number
  /** A previous bundle (archive or first part): write a differential bundle without the layers it shipped. */
  since?: string
}

const SIZE_UNITS: Record<string, number> = {'': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4}

/** `700M`, `4480M`, `4G`, `1.5G`, `123456` (bytes); K/M/G/T are powers of 1024. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(s.trim())
  if (!m) throw new InputError('create.bad_size', `invalid size ${JSON.stringify(s)}: use e.g. 700M, 4480M or 4G`)
  const n = Math.floor(Number(m[1]) * SIZE_UNITS[m[2].toUpperCase()])
  if (n < 64 * 1024) throw new InputError('create.bad_size', `--split ${s} is too small (at least 64K)`)
  return n
}

/** An image left out of a --keep-going archive, and why. */
export interface FailedImage {
  ref: string
  name: string
  stage: 'resolve' | 'pull'
  error: string
}

export interface CreateResult {
  /** The archive, or the first part of a split archive. */
  archive: string
  /** Every file written (the parts of a split archive, in order). */
  files: string[]
  /** --since: the previous bundle and what this one leaves out. */
  base?: {name: string; version: string; blobsLeftOut: number; bytesLeftOut: number}
  bundle: {name: string; version: string}
  images: {
    ref: string; name: string; digest: string; sourceDigest: string; platforms: string[]
    /** An index, or the kind of its one manifest (image, attestation, signature, artifact). */
    kind: ContentKind | 'index'
    content: ContentCounts
    /** A platform subset rewrote the index: `sourceDigest` was the source's, `digest` is the new one; this was left out. */
    omitted?: OmittedRecord[]
  }[]
  blobs: number
  bytesPulled: number
  /** Bytes taken from the blob cache (--cache-dir). */
  bytesCached: number
  /** Bytes an interrupted run had already written to OUT.partial, re-hashed and kept. */
  bytesResumed: number
  bytesWritten: number
  bytesReferenced: number
  dedupeSaved: number
  signed: boolean
  signer?: {fingerprint: string; userId?: string}
  lockFile: string
  /** Only with --keep-going: images NOT in the archive. */
  failed?: FailedImage[]
}

/**
 * The `epoch` option from SOURCE_DATE_EPOCH in `env` (which the command passes): undefined when
 * it is unset or empty.
 */
export function epochFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const v = env.SOURCE_DATE_EPOCH
  if (v === undefined || v === '') return undefined
  if (!/^\d+$/.test(v)) throw new InputError('env.source_date_epoch', `SOURCE_DATE_EPOCH must be a whole number of seconds, got ${JSON.stringify(v)}`)
  return Number(v)
}
