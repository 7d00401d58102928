import {stat} from 'node:fs/promises'

import * as openpgp from 'openpgp'

import {STDIN} from '../blob/multi-file.js'
import {loadTrustedKeys} from '../sign/keys.js'
import {warnOnStderr} from './verify.js'
import {readArchive} from '../transports/archive/reader.js'
import {resolveArchiveParts} from '../transports/archive/parts.js'
import type {ContentKind} from '../core/content.js'
import {ContentCounts, contentCounts, ENTRY, entryKind, OmittedRecord, ReferrerOf, UpstreamRecord} from '../transports/archive/metadata.js'

export type {ContentCounts} from '../transports/archive/metadata.js'

export interface InspectResult {
  archive: string
  formatVersion: number
  tool: string
  bundle: {name: string; version: string; description?: string; created: string; expires?: string}
  signature: {status: 'verified' | 'unverified' | 'unsigned'; fingerprint?: string; keyId?: string; userId?: string}
  /** Every signature in the archive (a co-signed bundle has several): its key ID, and who it is when a trusted key verified it. */
  signers: {keyId: string; verified: boolean; fingerprint?: string; userId?: string}[]
  images: {
    ref: string; name: string; digest: string; sourceDigest: string; platforms: string[]; size: number; blobs: number; sharedBlobs: number
    /** An index, or the kind of its one manifest. */
    kind: ContentKind | 'index'
    content: ContentCounts
    /** A `files:` entry: its dest paths and modes; a `charts:` entry: the chart's name and version. */
    files?: {path: string; mode: string; size: number}[]
    chart?: {name: string; version: string}
    /** A platform subset: the source index's digest is `sourceDigest`; these were left out. */
    omitted?: OmittedRecord[]
    /** An entry that refers to another entry's image (its cosign signature, attestation, SBOM, referrers). */
    referrerOf?: ReferrerOf
    /** What the image carries from upstream, and the key that verified it at create. */
    upstream?: UpstreamRecord
  }[]
  blobs: {count: number; bytes: number; referencedBytes: number; saved: number; shared: number}
  /** The files of a split archive, in order (one entry for a single file; for `-`, the bytes read from standard input). */
  parts: {file: string; bytes: number}[]
  partSize?: number
  /** Differential bundle: the bundle whose blobs it leaves out, and how many. */
  base?: {name: string; version: string; blobs: number; bytes: number}
}

/**
 * `created` for a person: an archive made without SOURCE_DATE_EPOCH records the epoch itself
 * (1970-01-01, so that it stays reproducible), which is no time at all: "not recorded".
 */
export function describeCreated(created: string): string {
  return Date.parse(created) === 0 ? 'not recorded (made without SOURCE_DATE_EPOCH)' : created
}

/** `airlock inspect`: the metadata entries only (from standard input too: it stops reading after them). */
export async function inspectArchive(opts: {archive: string; keys: string[]}): Promise<InspectResult> {
  const trustedKeys = await loadTrustedKeys(opts.keys, {warn: warnOnStderr})
  const parts = await resolveArchiveParts(opts.archive)
  const {head, signed, bytes} = await readArchive(parts, {trustedKeys, allowUnsigned: trustedKeys.length === 0, headOnly: true, checkExpiry: false})
  const meta = head.metadata
  let signature: InspectResult['signature'] = {status: 'unsigned'}
  const sig = signed ? await openpgp.readSignature({armoredSignature: head.raw.get(ENTRY.SIGNATURE)!.toString('utf8').trimEnd()}).catch(() => undefined) : undefined
  const keyIds = Array.from(sig?.getSigningKeyIDs() ?? [], (k) => k.toHex().toUpperCase())
  if (signed && head.signer) {
    signature = {status: 'verified', fingerprint: head.signer.fingerprint, userId: head.signer.userId}
  } else if (signed) {
    signature = {status: 'unverified', keyId: keyIds[0]}
  }
  const signers = keyIds.map((keyId) => {
    const who = head.signers.find((s) => s.keyId === keyId)
    return who ? {keyId, verified: true, fingerprint: who.fingerprint, ...(who.userId ? {userId: who.userId} : {})} : {keyId, verified: false}
  })
  const uses = new Map<string, number>()
  for (const img of meta.images) for (const b of img.blobs) uses.set(b.digest, (uses.get(b.digest) ?? 0) + 1)
  return {
    archive: opts.archive,
    formatVersion: meta.formatVersion,
    tool: meta.tool?.version ?? 'unknown',
    bundle: meta.bundle,
    signature,
    signers,
    images: meta.images.map((img) => ({
      ref: img.ref, name: img.name, digest: img.digest, sourceDigest: img.sourceDigest, platforms: img.platforms,
      size: img.blobs.reduce((a, b) => a + b.size, 0), blobs: img.blobs.length,
      sharedBlobs: img.blobs.filter((b) => (uses.get(b.digest) ?? 0) > 1).length,
      kind: entryKind(img), content: contentCounts(img),
      ...(img.content?.type === 'files' ? {files: img.content.files.map((f) => ({path: f.path, mode: f.mode, size: f.size}))} : {}),
      ...(img.content?.type === 'chart' ? {chart: {name: img.content.name, version: img.content.version}} : {}),
      ...(img.omitted ? {omitted: img.omitted} : {}),
      ...(img.referrerOf ? {referrerOf: img.referrerOf} : {}),
      ...(img.upstream ? {upstream: img.upstream} : {}),
    })),
    parts: await Promise.all(parts.map(async (file) => ({file, bytes: file === STDIN ? bytes : (await stat(file)).size}))),
    ...(meta.split ? {partSize: meta.split.partSize} : {}),
    ...(meta.base ? {base: {name: meta.base.name, version: meta.base.version, blobs: meta.base.blobs.length, bytes: meta.base.blobs.reduce((a, b) => a + b.size, 0)}} : {}),
    blobs: {
      count: meta.blobs.count, bytes: meta.blobs.bytes, referencedBytes: meta.blobs.referencedBytes,
      saved: meta.blobs.referencedBytes - meta.blobs.bytes, shared: [...uses.values()].filter((n) => n > 1).length,
    },
  }
}
