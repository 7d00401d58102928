import {CONTENT_KINDS} from '../../core/content.js'
import {blobPath, DIGEST_RE, ImageIndex, ImageManifest, isIndexMediaType} from '../../core/model.js'
import {type ErrorCode, VerifyError} from '../../core/errors.js'
import {checkUpstreamShape} from './upstream-checks.js'
import {AirlockMetadata, BLOB_NAME_RE, buildDockerManifestJson, buildIndexJson, ENTRY, READABLE_FORMATS} from './metadata.js'

/** Checks of the metadata entries, their agreement, and the content of manifests (no I/O here). */

const CHECKSUM_LINE = /^([a-f0-9]{64}) {2}(.+)$/

export function fail(code: ErrorCode, entry: string, reason: string): never {
  throw new VerifyError(code, `${entry}: ${reason}`, {entry})
}

export function parseChecksums(text: Buffer): Map<string, string> {
  const s = text.toString('utf8')
  if (!s.endsWith('\n')) fail('archive.bad_checksums', ENTRY.CHECKSUMS, 'does not end with a newline')
  const lines = s.slice(0, -1).split('\n')
  const out = new Map<string, string>()
  let prev: string | undefined
  for (const [i, line] of lines.entries()) {
    const m = CHECKSUM_LINE.exec(line)
    if (!m) fail('archive.bad_checksums', ENTRY.CHECKSUMS, `line ${i + 1} is not "HEX  PATH"`)
    const [, hex, name] = m
    const allowed = name === ENTRY.METADATA || name === ENTRY.OCI_LAYOUT || name === ENTRY.INDEX || name === ENTRY.DOCKER_MANIFEST || BLOB_NAME_RE.test(name)
    if (!allowed) fail('archive.bad_checksums', ENTRY.CHECKSUMS, `line ${i + 1} names an unexpected path ${JSON.stringify(name.slice(0, 200))}`)
    if (prev !== undefined && Buffer.compare(Buffer.from(prev), Buffer.from(name)) >= 0) {
      fail('archive.bad_checksums', ENTRY.CHECKSUMS, `line ${i + 1}: paths are not sorted and unique (${name})`)
    }
    const blob = BLOB_NAME_RE.exec(name)
    if (blob && blob[1] !== hex) fail('archive.bad_checksums', ENTRY.CHECKSUMS, `line ${i + 1}: checksum of ${name} is not its own name`)
    out.set(name, hex)
    prev = name
  }
  for (const required of [ENTRY.METADATA, ENTRY.OCI_LAYOUT, ENTRY.INDEX, ENTRY.DOCKER_MANIFEST]) {
    if (!out.has(required)) fail('archive.bad_checksums', ENTRY.CHECKSUMS, `does not list ${required}`)
  }
  return out
}

export function parseJson(entry: string, data: Buffer): unknown {
  try {
    return JSON.parse(data.toString('utf8'))
  } catch (error) {
    fail('archive.bad_json', entry, `is not valid JSON (${(error as Error).message})`)
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export function checkMetadataShape(m: unknown): asserts m is AirlockMetadata {
  const e = ENTRY.METADATA
  if (!isObj(m)) fail('archive.bad_metadata', e, 'is not a JSON object')
  if (!READABLE_FORMATS.includes(m.formatVersion as number)) fail('archive.unsupported_format', e, `format version ${JSON.stringify(m.formatVersion)} is not supported (this airlock reads versions ${READABLE_FORMATS.join(' and ')})`)
  if (!isObj(m.bundle) || typeof m.bundle.name !== 'string' || typeof m.bundle.version !== 'string' || typeof m.bundle.created !== 'string') {
    fail('archive.bad_metadata', e, 'bundle name/version/created missing')
  }
  if (!Array.isArray(m.images) || m.images.length === 0) fail('archive.bad_metadata', e, 'lists no images')
  for (const [i, img] of (m.images as unknown[]).entries()) {
    const where = `image #${i + 1}`
    if (!isObj(img)) fail('archive.bad_metadata', e, `${where} is not an object`)
    for (const k of ['ref', 'name', 'mediaType', 'digest', 'sourceDigest']) {
      if (typeof img[k] !== 'string') fail('archive.bad_metadata', e, `${where}: ${k} missing`)
    }
    // Format 3 entries may hold nothing runnable (a chart, a signature): no dockerManifest then.
    if (typeof img.dockerManifest !== 'string' && (img.dockerManifest !== undefined || (m.formatVersion as number) < 3)) fail('archive.bad_metadata', e, `${where}: dockerManifest missing`)
    checkGraphShape(img, where)
    if (!DIGEST_RE.test(img.digest as string)) fail('archive.bad_metadata', e, `${where}: bad digest`)
    if (!Number.isSafeInteger(img.size) || (img.size as number) < 0) fail('archive.bad_metadata', e, `${where}: bad size`)
    if (!Array.isArray(img.platforms) || !Array.isArray(img.manifests) || !Array.isArray(img.blobs)) fail('archive.bad_metadata', e, `${where}: platforms/manifests/blobs missing`)
    for (const b of img.blobs as unknown[]) {
      if (!isObj(b) || typeof b.digest !== 'string' || !DIGEST_RE.test(b.digest) || !Number.isSafeInteger(b.size) || (b.size as number) < 0) {
        fail('archive.bad_metadata', e, `${where}: bad blob entry`)
      }
    }
    for (const mf of img.manifests as unknown[]) {
      if (!isObj(mf) || typeof mf.digest !== 'string' || !DIGEST_RE.test(mf.digest) || typeof mf.config !== 'string' || !DIGEST_RE.test(mf.config) || !Array.isArray(mf.layers) || !(mf.layers as unknown[]).every((l) => typeof l === 'string' && DIGEST_RE.test(l))) {
        fail('archive.bad_metadata', e, `${where}: bad manifest entry`)
      }
      if (mf.kind !== undefined && !(CONTENT_KINDS as readonly unknown[]).includes(mf.kind)) fail('archive.bad_metadata', e, `${where}: manifest ${mf.digest} has an unknown kind`)
      if (mf.subject !== undefined && (typeof mf.subject !== 'string' || !DIGEST_RE.test(mf.subject))) fail('archive.bad_metadata', e, `${where}: manifest ${mf.digest} has a bad subject`)
    }
  }
  checkUpstreamShape(m.images as Record<string, unknown>[], m.formatVersion as number)
}

function isDigestList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((d) => typeof d === 'string' && DIGEST_RE.test(d))
}

/** Format 3: the indexes of an entry's graph, and the graph closed (every listed digest described). */
function checkGraphShape(img: Record<string, unknown>, where: string): void {
  const e = ENTRY.METADATA
  if (img.indexes === undefined) return
  if (!Array.isArray(img.indexes) || img.indexes.length === 0) fail('archive.bad_metadata', e, `${where}: bad indexes list`)
  for (const ix of img.indexes as unknown[]) {
    if (!isObj(ix) || typeof ix.digest !== 'string' || !DIGEST_RE.test(ix.digest) || typeof ix.mediaType !== 'string' || !Number.isSafeInteger(ix.size) || !isDigestList(ix.manifests)) {
      fail('archive.bad_metadata', e, `${where}: bad index entry`)
    }
  }
  const indexes = img.indexes as {digest: string; manifests: string[]}[]
  if (indexes[0].digest !== img.digest) fail('archive.bad_metadata', e, `${where}: the first index is not the entry's own digest`)
  const known = new Set([...indexes.map((ix) => ix.digest), ...(img.manifests as {digest: string}[]).map((m) => m.digest)])
  for (const ix of indexes) {
    for (const d of ix.manifests) if (!known.has(d)) fail('archive.bad_metadata', e, `${where}: index ${ix.digest} lists ${d}, which the entry does not describe`)
  }
}

/** Cross-check airlock.json, index.json and manifest.json, and compute the expected blob set. */
export function crossCheck(meta: AirlockMetadata, raw: Map<string, Buffer>, sums: Map<string, string>): Map<string, number> {
  // index.json and manifest.json must be exactly what airlock.json implies (they are derived data).
  if (!buildIndexJson(meta.images).equals(raw.get(ENTRY.INDEX)!)) {
    fail('archive.inconsistent', ENTRY.INDEX, 'does not match the images in airlock.json')
  }
  let dockerManifest: Buffer
  try {
    dockerManifest = buildDockerManifestJson(meta.images)
  } catch (error) {
    fail('archive.inconsistent', ENTRY.METADATA, (error as Error).message)
  }
  if (!dockerManifest.equals(raw.get(ENTRY.DOCKER_MANIFEST)!)) {
    fail('archive.inconsistent', ENTRY.DOCKER_MANIFEST, 'does not match the images in airlock.json')
  }
  const expected = new Map<string, number>()
  for (const img of meta.images) {
    const own = new Map(img.blobs.map((b) => [b.digest, b.size]))
    const need = [img.digest, ...(img.indexes ?? []).map((ix) => ix.digest), ...img.manifests.flatMap((m) => [m.digest, m.config, ...m.layers])]
    for (const d of need) if (!own.has(d)) fail('archive.inconsistent', ENTRY.METADATA, `image ${img.name}: blob ${d} is used but not listed`)
    if (own.get(img.digest) !== img.size) fail('archive.inconsistent', ENTRY.METADATA, `image ${img.name}: size of ${img.digest} disagrees`)
    for (const [d, size] of own) {
      const prev = expected.get(d.slice(7))
      if (prev !== undefined && prev !== size) fail('archive.inconsistent', ENTRY.METADATA, `blob ${d} is listed with two sizes`)
      expected.set(d.slice(7), size)
    }
  }
  // A differential bundle leaves out the blobs its base already shipped: those must be on the target.
  const external = new Map<string, number>()
  for (const b of meta.base?.blobs ?? []) {
    if (!isObj(b) || typeof b.digest !== 'string' || !DIGEST_RE.test(b.digest) || !Number.isSafeInteger(b.size)) fail('archive.bad_metadata', ENTRY.METADATA, 'bad base blob entry')
    const hex = b.digest.slice(7)
    if (expected.get(hex) !== b.size) fail('archive.inconsistent', ENTRY.METADATA, `base blob ${b.digest} is used by no image (or with another size)`)
    if (sums.has(`blobs/sha256/${hex}`)) fail('archive.inconsistent', `blobs/sha256/${hex}`, 'is both shipped and expected from the base bundle')
    external.set(hex, b.size)
  }
  const listed = [...sums.keys()].filter((n) => BLOB_NAME_RE.test(n))
  for (const name of listed) {
    if (!expected.has(name.slice(13))) fail('archive.inconsistent', name, 'is listed in checksums.sha256 but used by no image')
  }
  for (const hex of expected.keys()) {
    if (!sums.has(`blobs/sha256/${hex}`) && !external.has(hex)) fail('archive.inconsistent', `blobs/sha256/${hex}`, 'is used by an image but not listed in checksums.sha256')
  }
  for (const hex of external.keys()) expected.delete(hex)
  return new Map([...expected.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

/** Manifests and indexes among the blobs: what each must reference, to check their content. */
export function manifestExpectations(meta: AirlockMetadata): Map<string, ManifestWant> {
  const out = new Map<string, ManifestWant>()
  // Before format 3 no record named a subject, while an artifact among the manifests might have one.
  const subjects = meta.formatVersion >= 3
  for (const img of meta.images) {
    for (const m of img.manifests) out.set(m.digest, {kind: 'manifest', children: new Set([m.config, ...m.layers]), ...(subjects ? {subject: m.subject ?? null} : {})})
    if (img.indexes) {
      for (const ix of img.indexes) out.set(ix.digest, {kind: 'index', children: new Set(ix.manifests)})
    } else if (isIndexMediaType(img.mediaType)) {
      out.set(img.digest, {kind: 'index', children: new Set(img.manifests.map((m) => m.digest))})
    } else if (img.manifests.length !== 1 || img.manifests[0].digest !== img.digest) {
      fail('archive.inconsistent', ENTRY.METADATA, `image ${img.name}: a single manifest image must list itself as its manifest`)
    }
  }
  return out
}

export function checkManifestContent(digest: string, data: Buffer, want: ManifestWant): void {
  const entry = blobPath(digest)
  const doc = parseJson(entry, data)
  if (!isObj(doc)) fail('archive.bad_manifest', entry, 'is not a JSON object')
  const refs = want.kind === 'index'
    ? ((doc as unknown as ImageIndex).manifests ?? []).map((d) => d?.digest)
    : [(doc as unknown as ImageManifest).config?.digest, ...((doc as unknown as ImageManifest).layers ?? []).map((d) => d?.digest)]
  const got = new Set(refs)
  if (got.size !== want.children.size || ![...want.children].every((d) => got.has(d))) {
    fail('archive.inconsistent', entry, `${want.kind} references other blobs than airlock.json lists`)
  }
  if (want.subject !== undefined && ((doc as {subject?: {digest?: unknown}}).subject?.digest ?? null) !== want.subject) {
    fail('archive.inconsistent', entry, `${want.kind}'s subject is not the one airlock.json names`)
  }
}

/** What a manifest or an index among the blobs must reference; `subject` (format 3): its subject's digest, or null for none. */
export type ManifestWant = {kind: 'index' | 'manifest'; children: Set<string>; subject?: string | null}

/** Split archives: every part but the last has exactly the signed part size. */
export function checkParts(parts: string[], sizes: number[], metadata: AirlockMetadata): void {
  const partSize = metadata.split?.partSize
  if (!partSize) fail('archive.unexpected_part', parts[1], 'was given as a part, but the signed metadata says this archive is not split (foreign part?)')
  for (const [i, size] of sizes.entries()) {
    const last = i === sizes.length - 1
    if (!last && size !== partSize) fail('archive.part_size', parts[i], `is ${size} bytes; every part but the last must be ${partSize} bytes (a damaged, foreign or missing part)`)
    if (last && (size === 0 || size > partSize)) fail('archive.part_size', parts[i], `is ${size} bytes, more than the part size ${partSize} (foreign part?)`)
  }
}

export function locatePart(parts: string[], sizes: number[], position: number): string {
  let start = 0
  for (const [i, size] of sizes.entries()) {
    if (position <= start + size || i === sizes.length - 1) {
      return ` (in part ${parts[i]} near byte ${position - start}: a part may be missing, reordered, duplicated or foreign)`
    }
    start += size
  }
  return ''
}

export function describeName(name: string): string {
  if (name.startsWith('/')) return 'absolute path names are not allowed'
  if (name.split('/').includes('..')) return 'path names with ".." are not allowed'
  return 'not a name this format allows'
}
