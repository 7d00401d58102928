import {readFile} from 'node:fs/promises'

import {InputError, VerifyError} from '../core/errors.js'
import {checkSignatureManifest, type CosignKey, MAX_PAYLOAD_BYTES, parseCosignKey, simpleSigningLayers} from '../sign/cosign-verify.js'
import type {ResolvedImage} from './resolve.js'
import type {Sources} from './sources.js'

/**
 * bundle.yaml's `verify:` at create: an image with a policy must carry a cosign signature, by the
 * policy's key, over its own digest and naming its repository. Checked on what discovery fetched
 * (the signature manifests) and their payloads (fetched here, verified by digest, at most 1 MiB).
 */

/** A cosign public key file (PEM), read once per path. */
async function loadKey(file: string, cache: Map<string, CosignKey>): Promise<CosignKey> {
  const have = cache.get(file)
  if (have) return have
  let pem: Buffer
  try {
    pem = await readFile(file)
  } catch (error) {
    throw new InputError('upstream.bad_key', `cannot read the cosign key ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
  const key = parseCosignKey(pem, file)
  cache.set(file, key)
  return key
}

/** Why `image` has no valid signature by `key`; undefined (and `upstream.verifiedBy` set) when it has one. */
async function checkImage(sources: Sources, image: ResolvedImage, key: CosignKey): Promise<string | undefined> {
  const subject = {digest: image.top.digest, reference: image.spec.refString}
  const candidates = (image.referrers ?? []).flatMap((r) => r.manifests.filter((m) => m.kind === 'signature' && (r.referrerOf?.subject === subject.digest && (r.referrerOf.kind === 'signature' || m.subject === subject.digest))).map((m) => ({entry: r, m})))
  const reasons: string[] = []
  for (const {entry, m} of candidates) {
    const payloads = new Map<string, Buffer>()
    for (const l of simpleSigningLayers(JSON.parse(m.bytes.toString('utf8')))) {
      if (l.size <= MAX_PAYLOAD_BYTES) payloads.set(l.digest, await sources.getSmallBlob(entry.spec.ref, l.digest, l.size))
    }
    const r = checkSignatureManifest(m.bytes, (d) => payloads.get(d), subject, key.key)
    if (r.ok) {
      image.upstream = {...image.upstream!, verifiedBy: {keyFingerprint: key.fingerprint, signature: m.digest}}
      return undefined
    }
    reasons.push(`signature ${m.digest} (${entry.spec.name}): ${r.reason}`)
  }
  if (reasons.length > 0) return reasons.join('; ')
  const subset = image.top.digest === image.sourceDigest ? '' : ` (a platform subset is a new index ${image.top.digest} that nobody signed: set \`platforms: all\` to carry the signed one)`
  return `no cosign signature of ${subject.digest} found (tag sha256-${subject.digest.slice(7)}.sig, OCI referrers)${subset}`
}

/** Refuse (exit 3) when an image with a `verify:` policy lacks a valid signature by its key (referrer entries are not images). */
export async function checkUpstreamPolicies(sources: Sources, images: ResolvedImage[]): Promise<void> {
  const keys = new Map<string, CosignKey>()
  const failed: string[] = []
  for (const image of images) {
    if (!image.spec.verify || image.referrerOf) continue
    const why = await checkImage(sources, image, await loadKey(image.spec.verify.key, keys))
    if (why) failed.push(`${image.spec.refString}: ${why}`)
  }
  if (failed.length > 0) {
    throw new VerifyError('upstream.unverified', `${failed.length} image${failed.length === 1 ? '' : 's'} without a valid upstream signature by the key bundle.yaml's verify: names`, {details: failed})
  }
}
