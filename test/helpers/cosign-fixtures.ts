/**
 * Upstream signatures in cosign's format, made with Node's crypto (no cosign binary): key pairs,
 * simple-signing signature manifests (`sha256-<hex>.sig`), DSSE attestations (`.att`), OCI 1.1
 * referrers with `subject` and their fallback index (`sha256-<hex>`), and a plain push to a registry.
 */
import {createHash, generateKeyPairSync, type KeyObject, sign as cryptoSign} from 'node:crypto'

import {OCI_CONFIG, OCI_INDEX, OCI_MANIFEST} from './images.js'
import {OCI_EMPTY} from './shapes.js'

export const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json'
export const DSSE = 'application/vnd.dsse.envelope.v1+json'
export {OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST}

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

export interface KeyPair {
  privateKey: KeyObject
  publicKey: KeyObject
  /** The public key as cosign.pub holds it (PEM SubjectPublicKeyInfo). */
  pem: string
}

export function ecKeyPair(): KeyPair {
  const {privateKey, publicKey} = generateKeyPairSync('ec', {namedCurve: 'P-256'})
  return {privateKey, publicKey, pem: publicKey.export({type: 'spki', format: 'pem'}).toString()}
}

/** A manifest (or index) and every blob it needs, ready to push. */
export interface Artifact {
  digest: string
  mediaType: string
  size: number
  bytes: Buffer
  blobs: Map<string, Buffer>
  artifactType?: string
}

function artifact(doc: object, mediaType: string, blobs: Buffer[], artifactType?: string): Artifact {
  const bytes = Buffer.from(JSON.stringify(doc))
  return {digest: sha256(bytes), mediaType, size: bytes.length, bytes, blobs: new Map(blobs.map((b) => [sha256(b), b])), ...(artifactType ? {artifactType} : {})}
}

/** cosign's simple-signing payload for `digest` in `reference`'s repository. */
export function simpleSigningPayload(digest: string, reference: string): Buffer {
  return Buffer.from(JSON.stringify({critical: {identity: {'docker-reference': reference}, image: {'docker-manifest-digest': digest}, type: 'cosign container image signature'}, optional: null}))
}

/** ECDSA (DER) or Ed25519 signature over `data`, base64. */
export function signB64(key: KeyObject, data: Buffer): string {
  return cryptoSign(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', data, key).toString('base64')
}

/** cosign's config blob of a signature or attestation manifest. */
function cosignConfig(layers: Buffer[]): Buffer {
  return Buffer.from(JSON.stringify({architecture: '', created: '0001-01-01T00:00:00Z', history: [{created: '0001-01-01T00:00:00Z'}], os: '', rootfs: {type: 'layers', diff_ids: layers.map(sha256)}, config: {}}))
}

/**
 * A `.sig` manifest as cosign pushes it. Overrides make hostile ones: another payload, a
 * signature string as given, or a payload layer declared bigger than it is.
 */
export function signatureManifest(o: {digest: string; reference: string; key: KeyObject; payload?: Buffer; signature?: string}): Artifact {
  const payload = o.payload ?? simpleSigningPayload(o.digest, o.reference)
  const config = cosignConfig([payload])
  return artifact({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: {mediaType: OCI_CONFIG, size: config.length, digest: sha256(config)},
    layers: [{mediaType: SIMPLE_SIGNING, size: payload.length, digest: sha256(payload), annotations: {'dev.cosignproject.cosign/signature': o.signature ?? signB64(o.key, payload)}}],
  }, OCI_MANIFEST, [config, payload])
}

export function pae(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${body.length} `), body])
}

/** An in-toto statement about `digest` in a DSSE envelope signed by `key`, as a `.att` manifest. */
export function attestationManifest(o: {digest: string; key: KeyObject; predicateType?: string}): Artifact {
  const predicateType = o.predicateType ?? 'https://slsa.dev/provenance/v0.2'
  const statement = Buffer.from(JSON.stringify({_type: 'https://in-toto.io/Statement/v0.1', predicateType, subject: [{name: 'image', digest: {sha256: o.digest.slice(7)}}], predicate: {builder: {id: 'airlock-test'}}}))
  const envelope = Buffer.from(JSON.stringify({payloadType: 'application/vnd.in-toto+json', payload: statement.toString('base64'), signatures: [{keyid: '', sig: signB64(o.key, pae('application/vnd.in-toto+json', statement))}]}))
  const config = cosignConfig([envelope])
  return artifact({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: {mediaType: OCI_CONFIG, size: config.length, digest: sha256(config)},
    layers: [{mediaType: DSSE, size: envelope.length, digest: sha256(envelope), annotations: {'dev.cosignproject.cosign/signature': '', predicateType}}],
  }, OCI_MANIFEST, [config, envelope])
}

/** An OCI 1.1 artifact referring to `subject` (an SBOM by default). */
export function referrerArtifact(subject: {digest: string; mediaType: string; size: number}, artifactType = 'application/spdx+json', content = '{"spdxVersion":"SPDX-2.3"}'): Artifact {
  const empty = Buffer.from('{}')
  const body = Buffer.from(content)
  return artifact({
    schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType,
    config: {mediaType: OCI_EMPTY, size: empty.length, digest: sha256(empty)},
    layers: [{mediaType: artifactType, size: body.length, digest: sha256(body)}],
    subject: {mediaType: subject.mediaType, size: subject.size, digest: subject.digest},
  }, OCI_MANIFEST, [empty, body], artifactType)
}

/** The referrers index of some artifacts (what the API answers, and the fallback tag holds). */
export function referrersIndex(referrers: Artifact[]): Artifact {
  const a = artifact({schemaVersion: 2, mediaType: OCI_INDEX, manifests: referrers.map((r) => ({mediaType: r.mediaType, digest: r.digest, size: r.size, ...(r.artifactType ? {artifactType: r.artifactType} : {})}))}, OCI_INDEX, [])
  for (const r of referrers) {
    for (const [d, b] of r.blobs) a.blobs.set(d, b)
    a.blobs.set(r.digest, r.bytes)
  }
  return a
}

async function pushBlob(host: string, repo: string, bytes: Buffer): Promise<void> {
  const digest = sha256(bytes)
  if ((await fetch(`http://${host}/v2/${repo}/blobs/${digest}`, {method: 'HEAD'})).ok) return
  const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, {method: 'POST'})
  if (start.status !== 202) throw new Error(`upload to ${host}/${repo}: ${start.status}`)
  const loc = new URL(start.headers.get('location')!, `http://${host}`)
  loc.searchParams.set('digest', digest)
  const put = await fetch(loc, {method: 'PUT', body: new Uint8Array(bytes), headers: {'Content-Type': 'application/octet-stream'}})
  if (put.status !== 201) throw new Error(`blob ${digest} to ${host}/${repo}: ${put.status} ${await put.text()}`)
}

export async function pushManifest(host: string, repo: string, reference: string, bytes: Buffer, mediaType: string): Promise<void> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${reference}`, {method: 'PUT', body: new Uint8Array(bytes), headers: {'Content-Type': mediaType}})
  if (res.status !== 201) throw new Error(`manifest ${host}/${repo}:${reference}: ${res.status} ${await res.text()}`)
}

/** Push `a` (blobs, then the manifests it lists, then itself) under `tag`. */
export async function pushArtifact(host: string, repo: string, tag: string, a: Artifact): Promise<void> {
  const manifests: [string, Buffer][] = []
  for (const [d, b] of a.blobs) {
    const doc = (() => { try { return JSON.parse(b.toString('utf8')) as {schemaVersion?: number; mediaType?: string} } catch { return undefined } })()
    if (doc?.schemaVersion === 2 && doc.mediaType === OCI_MANIFEST) manifests.push([d, b])
    else await pushBlob(host, repo, b)
  }
  for (const [d, b] of manifests) await pushManifest(host, repo, d, b, OCI_MANIFEST)
  await pushManifest(host, repo, tag, a.bytes, a.mediaType)
}

/** cosign's tag for `digest` with `suffix` (`sig`, `att`, `sbom`; none: the referrers fallback tag). */
export function cosignTag(digest: string, suffix?: string): string {
  return `sha256-${digest.slice(7)}${suffix ? `.${suffix}` : ''}`
}

/** GET a manifest's raw bytes (undefined on 404). */
export async function rawManifest(host: string, repo: string, reference: string): Promise<Buffer | undefined> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${reference}`, {headers: {Accept: [OCI_MANIFEST, OCI_INDEX, 'application/vnd.docker.distribution.manifest.v2+json'].join(', ')}})
  if (res.status === 404) return undefined
  if (!res.ok) throw new Error(`${host}/${repo}:${reference}: ${res.status}`)
  return Buffer.from(await res.arrayBuffer())
}
