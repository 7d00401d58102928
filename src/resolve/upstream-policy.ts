import {readFile} from 'node:fs/promises'

import {InputError, VerifyError} from '../core/errors.js'
import {checkDsseEnvelope, checkSignatureManifest, type CosignKey, dsseLayers, MAX_PAYLOAD_BYTES, parseCosignKey, simpleSigningLayers} from '../sign/cosign-verify.js'
import type {UpstreamPolicy} from '../spec/types.js'
import type {ResolvedImage, ResolvedManifest} from './resolve.js'
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

type Kind = 'signature' | 'attestation'

/** The manifests of `kind` among the image's referrers that are about its digest, with the entry they came in. */
function candidates(image: ResolvedImage, kind: Kind): {entry: ResolvedImage; m: ResolvedManifest}[] {
  const digest = image.top.digest
  return (image.referrers ?? []).flatMap((r) => r.manifests
    .filter((m) => m.kind === kind && r.referrerOf?.subject === digest && (r.referrerOf.kind === kind || m.subject === digest))
    .map((m) => ({entry: r, m})))
}

/** The layers `layersOf` names in `m` (at most 1 MiB each), fetched and verified by digest. */
async function smallLayers(sources: Sources, entry: ResolvedImage, m: ResolvedManifest, layersOf: (doc: unknown) => {digest: string; size: number}[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>()
  for (const l of layersOf(JSON.parse(m.bytes.toString('utf8')))) {
    if (l.size <= MAX_PAYLOAD_BYTES) out.set(l.digest, await sources.getSmallBlob(entry.spec.ref, l.digest, l.size))
  }
  return out
}

/** The digest of the first manifest of `kind` that checks, or why none did. */
async function firstValid(sources: Sources, image: ResolvedImage, key: CosignKey, kind: Kind): Promise<{digest: string} | {why: string}> {
  const subject = {digest: image.top.digest, reference: image.spec.refString}
  const reasons: string[] = []
  for (const {entry, m} of candidates(image, kind)) {
    const blobs = await smallLayers(sources, entry, m, kind === 'signature' ? simpleSigningLayers : dsseLayers)
    const r = kind === 'signature'
      ? checkSignatureManifest(m.bytes, (d) => blobs.get(d), subject, key.key)
      : [...blobs.values()].map((env) => checkDsseEnvelope(env, subject, key.key)).find((c) => c.ok) ?? {ok: false as const, reason: blobs.size === 0 ? 'no DSSE envelope of at most 1 MiB' : 'no envelope verifies with the key and names the digest'}
    if (r.ok) return {digest: m.digest}
    reasons.push(`${kind} ${m.digest} (${entry.spec.name}): ${r.reason}`)
  }
  if (reasons.length > 0) return {why: reasons.join('; ')}
  const subset = image.top.digest === image.sourceDigest ? '' : ` (a platform subset is a new index ${image.top.digest} that nobody signed: set \`platforms: all\` to carry the signed one)`
  const where = kind === 'signature' ? `tag sha256-${subject.digest.slice(7)}.sig, OCI referrers` : `tag sha256-${subject.digest.slice(7)}.att, OCI referrers`
  return {why: `no cosign ${kind} of ${subject.digest} found (${where})${subset}`}
}

/** Why `image` fails its policy; undefined (and `upstream.verifiedBy` set) when it passes. */
async function checkImage(sources: Sources, image: ResolvedImage, key: CosignKey, policy: UpstreamPolicy): Promise<string | undefined> {
  const sig = await firstValid(sources, image, key, 'signature')
  if ('why' in sig) return sig.why
  const att = policy.attestations ? await firstValid(sources, image, key, 'attestation') : undefined
  if (att && 'why' in att) return att.why
  image.upstream = {...image.upstream!, verifiedBy: {keyFingerprint: key.fingerprint, signature: sig.digest, ...(att ? {attestation: att.digest} : {})}}
  return undefined
}

/** Refuse (exit 3) when an image with a `verify:` policy lacks a valid signature by its key (referrer entries are not images). */
export async function checkUpstreamPolicies(sources: Sources, images: ResolvedImage[]): Promise<void> {
  const keys = new Map<string, CosignKey>()
  const failed: string[] = []
  for (const image of images) {
    if (!image.spec.verify || image.referrerOf) continue
    const why = await checkImage(sources, image, await loadKey(image.spec.verify.key, keys), image.spec.verify)
    if (why) failed.push(`${image.spec.refString}: ${why}`)
  }
  if (failed.length > 0) {
    throw new VerifyError('upstream.unverified', `${failed.length} image${failed.length === 1 ? '' : 's'} without a valid upstream signature (or attestation) by the key bundle.yaml's verify: names`, {details: failed})
  }
}
