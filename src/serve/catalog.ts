/**
 * What `airlock serve` exposes: repositories, tags and, per repository, the manifests and blobs
 * its images reference — all derived from the VERIFIED airlock.json and the entry locations that
 * the one verification pass recorded.
 */
import {InputError} from '../core/errors.js'
import {VerifiedHead} from '../transports/archive/reader.js'
import {parseReference} from '../spec/reference.js'

export interface ServedEntry {
  /** sha256:<hex> */
  digest: string
  /** byte offset of the entry's data from the start of the archive */
  offset: number
  size: number
  /** set for manifests and indexes (served under /manifests/) */
  mediaType?: string
}

export interface ServedRepository {
  name: string
  /** tag → top-level manifest digest */
  tags: Map<string, string>
  /** every manifest / index digest an image of this repository references */
  manifests: Set<string>
  /** every blob digest (including manifests: the distribution spec allows GET /blobs/<manifest digest>) */
  blobs: Set<string>
}

export interface ServedImage {
  /** the name in airlock.json, e.g. 127.0.0.1:5301/testbed/app-a:1 */
  name: string
  repository: string
  tag?: string
  digest: string
  platforms: string[]
}

export interface Catalog {
  repositories: Map<string, ServedRepository>
  entries: Map<string, ServedEntry>
  images: ServedImage[]
  /** `files:` entries by dest path (served at /files/<dest>): the blob digest. */
  files: Map<string, string>
  warnings: string[]
}

export function buildCatalog(head: VerifiedHead): Catalog {
  const entries = new Map<string, ServedEntry>()
  const repositories = new Map<string, ServedRepository>()
  const images: ServedImage[] = []
  const warnings: string[] = []
  const files = new Map<string, string>()
  const where = (digest: string) => {
    const loc = head.locations.get(`blobs/sha256/${digest.slice(7)}`)
    // readArchive guarantees every listed blob was present; this is a bug guard, not user input.
    if (!loc) throw new InputError('serve.no_location', `blob ${digest} has no location in the archive (was the archive read completely?)`)
    return loc
  }
  for (const img of head.metadata.images) {
    const ref = parseReference(img.name)
    const repoName = ref.repository
    let repo = repositories.get(repoName)
    if (!repo) {
      repo = {name: repoName, tags: new Map(), manifests: new Set(), blobs: new Set()}
      repositories.set(repoName, repo)
    }
    if (ref.tag) {
      const prev = repo.tags.get(ref.tag)
      if (prev && prev !== img.digest) {
        warnings.push(`${repoName}:${ref.tag} is named by two images (${prev} and ${img.digest}); serving the first`)
      } else {
        repo.tags.set(ref.tag, img.digest)
      }
    }
    const manifestTypes = new Map<string, string>([
      [img.digest, img.mediaType],
      ...(img.indexes ?? []).map((ix) => [ix.digest, ix.mediaType] as [string, string]),
      ...img.manifests.map((m) => [m.digest, m.mediaType] as [string, string]),
    ])
    for (const [digest, mediaType] of manifestTypes) {
      repo.manifests.add(digest)
      entries.set(digest, {digest, ...where(digest), mediaType})
    }
    for (const b of img.blobs) {
      repo.blobs.add(b.digest)
      if (!entries.has(b.digest)) entries.set(b.digest, {digest: b.digest, ...where(b.digest)})
    }
    if (img.content?.type === 'files') {
      for (const f of img.content.files) if (!files.has(f.path) && img.blobs.some((b) => b.digest === f.digest)) files.set(f.path, f.digest)
    }
    images.push({name: img.name, repository: repoName, ...(ref.tag ? {tag: ref.tag} : {}), digest: img.digest, platforms: img.platforms})
  }
  return {repositories, entries, images, files, warnings}
}
