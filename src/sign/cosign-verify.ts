/**
 * Upstream signatures in cosign's format, checked without any network: the simple-signing payload
 * of a `sha256-<hex>.sig` manifest and the DSSE envelope of a `.att` one, against a public key
 * given by the user. Pure functions over bytes: every input is untrusted, bounded, and a problem is
 * a reason in the result, never an exception (docs/format.md says which parts of the format count).
 */
import {createHash, createPublicKey, KeyObject, verify as cryptoVerify} from 'node:crypto'

import {InputError} from '../core/errors.js'
import {MediaType} from '../core/model.js'

/** Largest payload (simple-signing JSON or DSSE envelope) read; cosign's are a few hundred bytes. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024
/** Largest base64 signature annotation (an RSA-8192 signature is under 1.5 KiB). */
export const MAX_SIGNATURE_B64 = 64 * 1024
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature'
const SIMPLE_SIGNING_TYPE = 'cosign container image signature'
const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json'

export interface CosignKey {
  key: KeyObject
  /** `sha256:<hex>` of the key's SubjectPublicKeyInfo DER. */
  fingerprint: string
}

/** A public key in PEM (ECDSA P-256/384, Ed25519, RSA), as `cosign generate-key-pair` writes cosign.pub. */
export function parseCosignKey(pem: string | Buffer, file: string): CosignKey {
  let key: KeyObject
  try {
    key = createPublicKey({key: pem, format: 'pem'})
  } catch (error) {
    throw new InputError('upstream.bad_key', `${file} is not a PEM public key (${(error as Error).message}); give the cosign.pub that \`cosign generate-key-pair\` wrote`)
  }
  const type = key.asymmetricKeyType
  if (type !== 'ec' && type !== 'ed25519' && type !== 'rsa') throw new InputError('upstream.bad_key', `${file}: a ${type} key cannot check cosign signatures (ECDSA, Ed25519 or RSA only)`)
  const der = key.export({type: 'spki', format: 'der'})
  return {key, fingerprint: `sha256:${createHash('sha256').update(der).digest('hex')}`}
}

export type Check = {ok: true} | {ok: false; reason: string}

const bad = (reason: string): Check => ({ok: false, reason})

/** Strict base64 (RFC 4648, padding optional), bounded; undefined when it is not. */
export function decodeBase64(untrusted: unknown, max = MAX_SIGNATURE_B64): Buffer | undefined {
  if (typeof untrusted !== 'string' || untrusted.length === 0 || untrusted.length > max) return undefined
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(untrusted) || untrusted.replace(/=+$/, '').length % 4 === 1) return undefined
  return Buffer.from(untrusted, 'base64')
}

/** The signature `sig` over `data` by `key`; false for any malformed signature (bad DER and the like). */
export function signatureVerifies(key: KeyObject, data: Buffer, sig: Buffer): boolean {
  try {
    if (key.asymmetricKeyType === 'ed25519') return cryptoVerify(null, data, key, sig)
    return cryptoVerify('sha256', data, key.asymmetricKeyType === 'ec' ? {key, dsaEncoding: 'der'} : key, sig)
  } catch {
    return false
  }
}

function parseObject(untrusted: Buffer, what: string): Record<string, unknown> | string {
  if (untrusted.length > MAX_PAYLOAD_BYTES) return `${what} is ${untrusted.length} bytes, more than the ${MAX_PAYLOAD_BYTES} allowed`
  try {
    const v = JSON.parse(untrusted.toString('utf8')) as unknown
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : `${what} is not a JSON object`
  } catch {
    return `${what} is not JSON`
  }
}

const field = (o: unknown, ...path: string[]): unknown => path.reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o)

/** `registry/repository` of a reference (tag and digest dropped; docker.io spelled as Docker does). */
export function repositoryOf(reference: string): string {
  let s = reference.split('@')[0]
  const colon = s.lastIndexOf(':')
  if (colon > s.lastIndexOf('/')) s = s.slice(0, colon)
  const slash = s.indexOf('/')
  const first = slash === -1 ? '' : s.slice(0, slash)
  const hasHost = first.includes('.') || first.includes(':') || first === 'localhost'
  let host = hasHost ? first : 'docker.io'
  let repo = hasHost ? s.slice(slash + 1) : s
  if (host === 'index.docker.io') host = 'docker.io'
  if (host === 'docker.io' && !repo.includes('/')) repo = `library/${repo}`
  return `${host}/${repo}`
}

/** What a signature must be about: the manifest digest, and the repository it was signed for. */
export interface Subject {
  digest: string
  /** The source reference (any tag or digest is ignored). */
  reference: string
}

/**
 * One simple-signing layer: `payload` (the layer's bytes, already checked against its digest) and
 * the base64 signature annotation. The signature must verify over the exact payload bytes, and the
 * payload must name `subject`'s digest and repository.
 */
export function checkSimpleSigning(payload: Buffer, untrustedSignatureB64: unknown, subject: Subject, key: KeyObject): Check {
  const sig = decodeBase64(untrustedSignatureB64)
  if (!sig) return bad(`its ${SIGNATURE_ANNOTATION} annotation is not base64 of at most ${MAX_SIGNATURE_B64} characters`)
  if (payload.length > MAX_PAYLOAD_BYTES) return bad(`its payload is ${payload.length} bytes, more than the ${MAX_PAYLOAD_BYTES} allowed`)
  if (!signatureVerifies(key, payload, sig)) return bad('its signature does not verify with the key')
  const doc = parseObject(payload, 'its payload')
  if (typeof doc === 'string') return bad(doc)
  const type = field(doc, 'critical', 'type')
  if (typeof type !== 'string' || type.toLowerCase() !== SIMPLE_SIGNING_TYPE) return bad(`its payload's critical.type is ${JSON.stringify(type)}, not "${SIMPLE_SIGNING_TYPE}"`)
  const digest = field(doc, 'critical', 'image', 'docker-manifest-digest')
  if (digest !== subject.digest) return bad(`its payload signs ${JSON.stringify(digest)}, not ${subject.digest}`)
  const ref = field(doc, 'critical', 'identity', 'docker-reference')
  if (typeof ref !== 'string' || repositoryOf(ref) !== repositoryOf(subject.reference)) {
    return bad(`its payload names repository ${JSON.stringify(ref)}, not ${repositoryOf(subject.reference)}`)
  }
  return {ok: true}
}

/** DSSE's pre-authentication encoding: what a DSSE signature signs. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType)
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload])
}

/**
 * A DSSE envelope (a `.att` layer): some signature verifies over PAE(payloadType, payload), the
 * payload is an in-toto statement, and one of its subjects is `subject.digest`.
 */
export function checkDsseEnvelope(untrustedEnvelope: Buffer, subject: Subject, key: KeyObject): Check {
  const env = parseObject(untrustedEnvelope, 'the envelope')
  if (typeof env === 'string') return bad(env)
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) return bad(`its payloadType is ${JSON.stringify(env.payloadType)}, not ${IN_TOTO_PAYLOAD_TYPE}`)
  const payload = decodeBase64(env.payload, Math.ceil((MAX_PAYLOAD_BYTES * 4) / 3) + 4)
  if (!payload) return bad('its payload is not base64 (or too large)')
  const sigs = Array.isArray(env.signatures) ? env.signatures.slice(0, 16) : []
  const data = pae(IN_TOTO_PAYLOAD_TYPE, payload)
  if (!sigs.some((s) => {
    const sig = decodeBase64(field(s, 'sig'))
    return sig !== undefined && signatureVerifies(key, data, sig)
  })) return bad('no signature of the envelope verifies with the key')
  const statement = parseObject(payload, 'its in-toto statement')
  if (typeof statement === 'string') return bad(statement)
  const hex = subject.digest.replace(/^sha256:/, '')
  const subjects = Array.isArray(statement.subject) ? statement.subject : []
  if (!subjects.some((s) => field(s, 'digest', 'sha256') === hex)) return bad(`its statement's subjects do not name ${subject.digest}`)
  return {ok: true}
}

/** The layers of an untrusted signature manifest that carry a simple-signing payload. */
export function simpleSigningLayers(untrustedManifest: unknown): {digest: string; size: number; signature: unknown}[] {
  const layers = field(untrustedManifest, 'layers')
  if (!Array.isArray(layers)) return []
  return layers.slice(0, 64).filter((l) => field(l, 'mediaType') === MediaType.COSIGN_SIMPLE_SIGNING && typeof field(l, 'digest') === 'string' && Number.isSafeInteger(field(l, 'size')))
    .map((l) => ({digest: field(l, 'digest') as string, size: field(l, 'size') as number, signature: field(l, 'annotations', SIGNATURE_ANNOTATION)}))
}

/** The layers of an untrusted attestation manifest that carry a DSSE envelope. */
export function dsseLayers(untrustedManifest: unknown): {digest: string; size: number}[] {
  const layers = field(untrustedManifest, 'layers')
  if (!Array.isArray(layers)) return []
  return layers.slice(0, 64).filter((l) => field(l, 'mediaType') === MediaType.DSSE_ENVELOPE && typeof field(l, 'digest') === 'string' && Number.isSafeInteger(field(l, 'size')))
    .map((l) => ({digest: field(l, 'digest') as string, size: field(l, 'size') as number}))
}

/**
 * A signature manifest (bytes from the registry or the archive) against `subject`: valid when one
 * of its simple-signing layers checks. `payloadOf` gives a layer's verified bytes, or undefined
 * when they are not at hand (too large, missing). Returns why not, layer by layer.
 */
export function checkSignatureManifest(untrustedManifest: Buffer, payloadOf: (digest: string, size: number) => Buffer | undefined, subject: Subject, key: KeyObject): Check {
  const doc = parseObject(untrustedManifest, 'the signature manifest')
  if (typeof doc === 'string') return bad(doc)
  const layers = simpleSigningLayers(doc)
  if (layers.length === 0) return bad(`the signature manifest has no ${MediaType.COSIGN_SIMPLE_SIGNING} layer`)
  const reasons: string[] = []
  for (const l of layers) {
    if (l.size > MAX_PAYLOAD_BYTES) {
      reasons.push(`layer ${l.digest}: its payload is ${l.size} bytes, more than the ${MAX_PAYLOAD_BYTES} allowed`)
      continue
    }
    const payload = payloadOf(l.digest, l.size)
    if (!payload) {
      reasons.push(`layer ${l.digest}: its payload is not in the bundle`)
      continue
    }
    const r = checkSimpleSigning(payload, l.signature, subject, key)
    if (r.ok) return r
    reasons.push(`layer ${l.digest}: ${r.reason}`)
  }
  return bad(reasons.join('; '))
}
