/**
 * Manifests on a registry: fetched raw and verified (sha256 of the bytes against the digest asked
 * for and the one the registry claims, at most MAX_MANIFEST_BYTES, media type from Content-Type
 * and body agreeing), HEAD with a GET fallback, and pushed by tag or digest.
 */
import type http from 'node:http'

import {isSchema1MediaType, schema1Refusal} from '../../core/content.js'
import {sha256Digest} from '../../core/digest.js'
import {AirlockError, InputError, VerifyError} from '../../core/errors.js'
import {DIGEST_RE, MANIFEST_MEDIA_TYPES, MAX_MANIFEST_BYTES, MediaType} from '../../core/model.js'
import {checkReference, checkRepo, pullScope, pushScope, refString} from './names.js'
import {baseMediaType, drain, headerOne, readBody} from './transport/http.js'
import type {RegistryTransport} from './transport/request.js'

export interface ManifestResult {
  bytes: Buffer
  mediaType: string
  digest: string
}

export interface ManifestHead {
  digest: string
  mediaType: string
  size: number
}

const ACCEPT_MANIFESTS = MANIFEST_MEDIA_TYPES.join(', ')

export async function getManifest(t: RegistryTransport, repo: string, reference: string): Promise<ManifestResult> {
  checkRepo(repo)
  const byDigest = checkReference(reference)
  const what = refString(t.host, repo, reference)
  return t.request(
    {
      method: 'GET',
      url: `/v2/${repo}/manifests/${reference}`,
      headers: {Accept: ACCEPT_MANIFESTS},
      scopes: [pullScope(repo)],
      expect: [200],
      what: `manifest ${what}`,
    },
    (res) => readManifest(res, what, byDigest ? reference : undefined),
  )
}

/** Read and verify a manifest body: size cap, digest (asked for and claimed), media type. */
async function readManifest(res: http.IncomingMessage, what: string, wantDigest: string | undefined): Promise<ManifestResult> {
  const contentType = baseMediaType(res.headers['content-type'])
  if (isSchema1MediaType(contentType)) throw schema1Error(what)
  const bytes = await readBody(res, MAX_MANIFEST_BYTES, () => tooLarge(what))
  const digest = sha256Digest(bytes)
  if (wantDigest && digest !== wantDigest) {
    throw new VerifyError('registry.digest_mismatch', `manifest ${what} has digest ${digest}, expected ${wantDigest}`, {entry: what})
  }
  const headerDigest = headerOne(res.headers['docker-content-digest'])
  if (headerDigest && headerDigest.startsWith('sha256:') && headerDigest !== digest) {
    throw new VerifyError(
      'registry.digest_mismatch',
      `manifest ${what}: registry claims digest ${headerDigest} but the bytes hash to ${digest}`,
      {entry: what},
    )
  }
  const mediaType = manifestMediaType(bytes, contentType, what)
  return {bytes, mediaType, digest}
}

export async function headManifest(t: RegistryTransport, repo: string, reference: string): Promise<ManifestHead | undefined> {
  checkRepo(repo)
  const byDigest = checkReference(reference)
  const what = refString(t.host, repo, reference)
  const r = await t.request(
    {
      method: 'HEAD',
      url: `/v2/${repo}/manifests/${reference}`,
      headers: {Accept: ACCEPT_MANIFESTS},
      scopes: [pullScope(repo)],
      expect: [200, 404],
      what: `manifest ${what}`,
    },
    async (res) => {
      drain(res)
      if (res.statusCode === 404) return undefined
      return {
        digest: headerOne(res.headers['docker-content-digest']),
        mediaType: baseMediaType(res.headers['content-type']),
        size: Number(headerOne(res.headers['content-length'])),
      }
    },
  )
  if (!r) return undefined
  if (isSchema1MediaType(r.mediaType)) throw schema1Error(what)
  if (r.digest && DIGEST_RE.test(r.digest) && MANIFEST_MEDIA_TYPES.includes(r.mediaType) && Number.isFinite(r.size)) {
    if (byDigest && r.digest !== reference) {
      throw new VerifyError('registry.digest_mismatch', `manifest ${what}: registry answered digest ${r.digest}`, {entry: what})
    }
    if (r.size > MAX_MANIFEST_BYTES) throw tooLarge(what)
    return {digest: r.digest, mediaType: r.mediaType, size: r.size}
  }
  // Incomplete HEAD answer (no digest header, generic content type): fetch and compute.
  const m = await getManifest(t, repo, reference)
  return {digest: m.digest, mediaType: m.mediaType, size: m.bytes.length}
}

/** Push a manifest; returns its digest (checked against the reference and the registry's answer). */
export async function putManifest(t: RegistryTransport, repo: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
  checkRepo(repo)
  const byDigest = checkReference(reference)
  const what = refString(t.host, repo, reference)
  if (bytes.length > MAX_MANIFEST_BYTES) throw tooLarge(what)
  if (!MANIFEST_MEDIA_TYPES.includes(mediaType)) {
    throw new InputError('registry.unsupported_media_type', `cannot push manifest of media type ${mediaType}`)
  }
  const digest = sha256Digest(bytes)
  if (byDigest && digest !== reference) {
    throw new VerifyError('registry.digest_mismatch', `manifest bytes hash to ${digest}, not ${reference}`, {entry: what})
  }
  await t.request(
    {
      method: 'PUT',
      url: `/v2/${repo}/manifests/${reference}`,
      headers: {'Content-Type': mediaType},
      body: bytes,
      scopes: [pushScope(repo)],
      expect: [200, 201, 202, 204],
      what: `manifest ${what}`,
    },
    async (res) => {
      drain(res)
      const got = headerOne(res.headers['docker-content-digest'])
      if (got && got.startsWith('sha256:') && got !== digest) {
        throw new VerifyError('registry.digest_mismatch', `manifest ${what}: registry stored digest ${got}, expected ${digest}`, {entry: what})
      }
    },
  )
  return digest
}

function tooLarge(what: string): VerifyError {
  return new VerifyError('registry.manifest_too_large', `manifest ${what} is larger than ${MAX_MANIFEST_BYTES} bytes`, {entry: what})
}

function schema1Error(what: string): AirlockError {
  return new AirlockError(
    'registry.unsupported_manifest',
    schema1Refusal(`manifest ${what}`),
  )
}

/** Decide the manifest media type from Content-Type and the body's `mediaType`, rejecting disagreement. */
export function manifestMediaType(bytes: Buffer, contentType: string, what: string): string {
  let j: {mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown; config?: unknown; layers?: unknown}
  try {
    j = JSON.parse(bytes.toString('utf8')) as typeof j
  } catch {
    throw new VerifyError('registry.bad_manifest', `manifest ${what} is not valid JSON`, {entry: what})
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw new VerifyError('registry.bad_manifest', `manifest ${what} is not a JSON object`, {entry: what})
  if (j.schemaVersion === 1) throw schema1Error(what)
  const bodyType = typeof j.mediaType === 'string' ? j.mediaType : undefined
  if (bodyType && isSchema1MediaType(bodyType)) throw schema1Error(what)
  const ctKnown = MANIFEST_MEDIA_TYPES.includes(contentType)
  if (ctKnown && bodyType && bodyType !== contentType) {
    throw new VerifyError(
      'registry.media_type_mismatch',
      `manifest ${what}: Content-Type ${contentType} disagrees with the manifest's mediaType ${bodyType}`,
      {entry: what},
    )
  }
  let mt = ctKnown ? contentType : bodyType
  if (!mt) {
    // Generic Content-Type and no mediaType field: OCI allows that; infer from the shape.
    if (Array.isArray(j.manifests)) mt = MediaType.OCI_INDEX
    else if (j.config && Array.isArray(j.layers)) mt = MediaType.OCI_MANIFEST
  }
  if (!mt || !MANIFEST_MEDIA_TYPES.includes(mt)) {
    throw new AirlockError('registry.unsupported_media_type', `manifest ${what} has unsupported media type ${mt ?? contentType ?? 'unknown'}`)
  }
  return mt
}
