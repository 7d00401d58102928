/**
 * Push a graph of OCI content to a registry byte for byte, over the distribution API (plain HTTP
 * on the testbed's loopback registries). skopeo (pushImage in images.ts) re-reads and may refuse
 * what it does not know (an index of indexes, in-toto or simple-signing layers, Helm configs); this
 * sends exactly the bytes given: every blob, then every manifest and index by digest with its own
 * media type (children before the indexes that list them), then the tags.
 *
 *   await pushContent('127.0.0.1:5301', 'shapes/app', content, {'1': content.root})
 */
import {createHash} from 'node:crypto'

/** A manifest or an index: its exact bytes and the media type it is served with. */
export interface ManifestBytes {
  mediaType: string
  data: Buffer
}

/** A graph of content: manifests and indexes, and the other blobs (configs, layers) they use. */
export interface Content {
  manifests: Map<string, ManifestBytes>
  blobs: Map<string, Buffer>
}

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ')

export const digestOf = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

export function emptyContent(): Content {
  return {manifests: new Map(), blobs: new Map()}
}

/** Add `more` to `into` (same digest, same bytes: content addressing). */
export function mergeContent(into: Content, ...more: Content[]): Content {
  for (const c of more) {
    for (const [d, m] of c.manifests) into.manifests.set(d, m)
    for (const [d, b] of c.blobs) into.blobs.set(d, b)
  }
  return into
}

/** Record a manifest or index in `c`; returns its descriptor. */
export function addManifest(c: Content, mediaType: string, doc: unknown): {mediaType: string; digest: string; size: number; data: Buffer} {
  const data = Buffer.from(JSON.stringify(doc))
  const digest = digestOf(data)
  c.manifests.set(digest, {mediaType, data})
  return {mediaType, digest, size: data.length, data}
}

/** Record a blob in `c`; returns its descriptor (without media type). */
export function addBlob(c: Content, data: Buffer): {digest: string; size: number} {
  const digest = digestOf(data)
  c.blobs.set(digest, data)
  return {digest, size: data.length}
}

/** The digests an index lists (none for a manifest). */
function childrenOf(m: ManifestBytes): string[] {
  const doc = JSON.parse(m.data.toString('utf8')) as {manifests?: {digest: string}[]}
  return Array.isArray(doc.manifests) ? doc.manifests.map((d) => d.digest) : []
}

/** Manifests in an order the registry accepts: everything an index lists comes before it. */
function pushOrder(manifests: Map<string, ManifestBytes>): string[] {
  const out: string[] = []
  const seen = new Set<string>()
  const visit = (d: string) => {
    if (seen.has(d)) return
    seen.add(d)
    const m = manifests.get(d)
    if (!m) return
    for (const c of childrenOf(m)) visit(c)
    out.push(d)
  }
  for (const d of manifests.keys()) visit(d)
  return out
}

async function check(res: Response, what: string): Promise<void> {
  if (res.ok) return
  throw new Error(`${what}: HTTP ${res.status} ${(await res.text()).slice(0, 500)}`)
}

async function pushBlob(base: string, repo: string, digest: string, data: Buffer, mountFrom?: string): Promise<void> {
  const head = await fetch(`${base}/v2/${repo}/blobs/${digest}`, {method: 'HEAD'})
  if (head.ok) return
  const mount = mountFrom ? `?mount=${digest}&from=${encodeURIComponent(mountFrom)}` : ''
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/${mount}`, {method: 'POST'})
  if (start.status === 201) return
  await check(start, `start upload of ${digest} to ${repo}`)
  const location = start.headers.get('location')
  if (!location) throw new Error(`no upload location for ${digest} in ${repo}`)
  const url = new URL(location, base)
  url.searchParams.set('digest', digest)
  const put = await fetch(url, {method: 'PUT', body: new Uint8Array(data), headers: {'Content-Type': 'application/octet-stream', 'Content-Length': String(data.length)}})
  await check(put, `upload of ${digest} to ${repo}`)
}

async function putManifest(base: string, repo: string, reference: string, m: ManifestBytes): Promise<string> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${reference}`, {method: 'PUT', body: new Uint8Array(m.data), headers: {'Content-Type': m.mediaType}})
  await check(res, `PUT ${repo}/manifests/${reference}`)
  return res.headers.get('docker-content-digest') ?? ''
}

export interface PushContentOptions {
  /** A repository of the same registry that already holds the blobs (cross-repository mount). */
  mountFrom?: string
}

/**
 * Push `content` to `registry/repo`, then point each tag of `tags` (tag -> digest) at its manifest.
 * Throws when the registry answers with another digest than the bytes' own.
 */
export async function pushContent(registry: string, repo: string, content: Content, tags: Record<string, string> = {}, opts: PushContentOptions = {}): Promise<void> {
  const base = `http://${registry}`
  for (const [digest, data] of content.blobs) await pushBlob(base, repo, digest, data, opts.mountFrom)
  for (const digest of pushOrder(content.manifests)) {
    const got = await putManifest(base, repo, digest, content.manifests.get(digest)!)
    if (got && got !== digest) throw new Error(`${repo}@${digest}: the registry stored ${got}`)
  }
  for (const [tag, digest] of Object.entries(tags)) {
    const m = content.manifests.get(digest)
    if (!m) throw new Error(`tag ${tag}: ${digest} is not in the content pushed to ${repo}`)
    const got = await putManifest(base, repo, tag, m)
    if (got && got !== digest) throw new Error(`${repo}:${tag}: the registry stored ${got}, not ${digest}`)
  }
}

/** GET a manifest's exact bytes (null on 404). */
export async function getManifestBytes(registry: string, repo: string, reference: string): Promise<{mediaType: string; digest: string; data: Buffer} | null> {
  const res = await fetch(`http://${registry}/v2/${repo}/manifests/${reference}`, {headers: {Accept: MANIFEST_ACCEPT}})
  if (res.status === 404) return null
  await check(res, `GET ${repo}/manifests/${reference}`)
  const data = Buffer.from(await res.arrayBuffer())
  return {mediaType: (res.headers.get('content-type') ?? '').split(';')[0], digest: res.headers.get('docker-content-digest') ?? digestOf(data), data}
}

/** Whether `repo` on `registry` has the blob. */
export async function hasBlob(registry: string, repo: string, digest: string): Promise<boolean> {
  const res = await fetch(`http://${registry}/v2/${repo}/blobs/${digest}`, {method: 'HEAD'})
  return res.ok
}
