import {createReadStream, createWriteStream} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import pLimit from 'p-limit'

import {AirlockError} from '../../core/errors.js'
import {blobPath, hexOf} from '../../core/model.js'
import type {Destination, DestinationContext, InstalledImage} from '../../install/types.js'
import {parseReference, formatReference, Reference} from '../../spec/reference.js'
import type {VerifiedHead} from '../archive/reader.js'
import type {ImageRecord} from '../archive/metadata.js'
import {MultiFile} from '../../blob/multi-file.js'
import {RegistryClient} from './client.js'
import {resolveCredentials} from './credentials.js'

export interface RegistryTarget {
  host: string
  prefix: string
}

/** `registry://HOST[:PORT][/PREFIX]` */
export function parseRegistryTarget(s: string): RegistryTarget {
  const rest = s.replace(/^registry:\/\//, '')
  const slash = rest.indexOf('/')
  const host = slash === -1 ? rest : rest.slice(0, slash)
  const prefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/+$/, '')
  if (!/^[a-zA-Z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/.test(host)) {
    throw new AirlockError('install.bad_target', `invalid registry target ${JSON.stringify(s)}: expected registry://HOST[:PORT][/PREFIX]`, {exitCode: 2})
  }
  if (prefix && !/^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$/.test(prefix)) {
    throw new AirlockError('install.bad_target', `invalid repository prefix ${JSON.stringify(prefix)} in ${s}`, {exitCode: 2})
  }
  return {host, prefix}
}

/** Where an image lands: its repository path under PREFIX on HOST, same tag (or digest). */
export function targetReference(name: string, t: RegistryTarget): Reference {
  const r = parseReference(name)
  return {registry: t.host, repository: t.prefix ? `${t.prefix}/${r.repository}` : r.repository, ...(r.tag ? {tag: r.tag} : {}), ...(r.tag ? {} : {digest: r.digest})}
}

/**
 * `registry://…`: push. A verified blob is uploaded from the archive itself, read again by
 * offset and hashed again on the way (so an upload can be retried, and nothing is copied to
 * disk); a blob that is not in a file of the archive (from a --base archive) is spooled to a
 * private temp file as it is verified. Uploads run concurrently (HEAD first, cross-repo mount for
 * blobs shared between repositories). Manifests and tags are pushed only in commit(), after the whole
 * archive verified: platform manifests by digest, then indexes, then tags last.
 */
export async function registryDestination(ctx: DestinationContext & {target: string; insecure?: boolean; caFile?: string; registryConfig?: string; jobs?: number; retries?: number; retryBaseDelayMs?: number}): Promise<Destination> {
  const t = parseRegistryTarget(ctx.target)
  const client = new RegistryClient({
    host: t.host,
    insecure: ctx.insecure,
    caFile: ctx.caFile,
    credentials: () => resolveCredentials(t.host, {registryConfig: ctx.registryConfig}),
    ...(ctx.retries === undefined ? {} : {retries: ctx.retries}),
    ...(ctx.retryBaseDelayMs === undefined ? {} : {retryBaseDelayMs: ctx.retryBaseDelayMs}),
    onRetry: (i) => ctx.progress.note(`retrying ${t.host} (attempt ${i.attempt}): ${i.reason}`),
  })
  // rejectOnClear: abort() clears the queue and then waits for every upload task; a cleared task
  // must settle (it used to hang forever once one upload had failed while others were queued).
  const limit = pLimit({concurrency: Math.max(1, ctx.jobs ?? 8), rejectOnClear: true})
  let images: ImageRecord[] = []
  let head: VerifiedHead | undefined
  /** The archive, opened to read verified blobs again by offset. */
  let archive: MultiFile | undefined
  let spool = ''
  /** digest → repositories that need it */
  const repos = new Map<string, string[]>()
  const present = new Map<string, Set<string>>()
  const manifestBytes = new Map<string, Buffer>()
  const manifestDigests = new Set<string>()
  const uploads: Promise<void>[] = []
  const inflight = new Set<Promise<void>>()
  /** Blobs left out of a differential bundle that the target already holds in some repository. */
  const external = new Set<string>()
  let failed: unknown
  const pushed = {uploaded: 0, mounted: 0, existing: 0}

  const repoOf = (img: ImageRecord) => targetReference(img.name, t).repository

  async function pushBlob(digest: string, size: number, open: () => Readable): Promise<void> {
    const rs = repos.get(digest) ?? []
    let first: string | undefined
    for (const repo of rs) {
      if (present.get(digest)?.has(repo)) {
        first ??= repo
        pushed.existing++
        continue
      }
      // eslint-disable-next-line no-await-in-loop
      const r = await client.putBlob(repo, digest, size, open, first ? {mountFrom: first} : {})
      pushed[r === 'exists' ? 'existing' : r]++
      first ??= repo
    }
  }

  /** After the whole archive verified: the uploads' end, then manifests, indexes and tags. */
  async function commitImages(): Promise<void> {
    await Promise.all(uploads)
    if (failed) throw failed
    // Blobs a differential bundle left out: mount them from the repository that has them.
    for (const digest of external) {
      const have = [...(present.get(digest) ?? [])]
      for (const repo of repos.get(digest) ?? []) {
        if (have.includes(repo)) continue
        // eslint-disable-next-line no-await-in-loop
        await client.putBlob(repo, digest, 0, () => {
          throw new AirlockError('install.mount_failed', `${t.host}: cannot mount ${digest} into ${repo} from ${have[0]} (the registry refused a cross-repository mount)`)
        }, {mountFrom: have[0]})
      }
    }
    // manifests after their blobs, indexes after their manifests, tags last
    for (const img of images) {
      const repo = repoOf(img)
      for (const m of img.manifests) {
        if (m.digest === img.digest) continue
        // eslint-disable-next-line no-await-in-loop
        await client.putManifest(repo, m.digest, manifestBytes.get(m.digest)!, m.mediaType)
      }
    }
    for (const img of images) {
      const ref = targetReference(img.name, t)
      // eslint-disable-next-line no-await-in-loop
      const got = await client.putManifest(ref.repository, ref.tag ?? img.digest, manifestBytes.get(img.digest)!, img.mediaType)
      if (got !== img.digest) throw new AirlockError('install.registry_digest', `${formatReference(ref)}: registry stored ${got}, expected ${img.digest}`)
      ctx.progress.note(`  pushed ${formatReference(ref)}  ${img.digest}`)
    }
    if (spool) await rm(spool, {recursive: true, force: true})
  }

  return {
    kind: 'registry',
    async begin(h: VerifiedHead) {
      head = h
      images = ctx.selected(h)
      for (const img of images) {
        const repo = repoOf(img)
        for (const m of img.manifests) manifestDigests.add(m.digest)
        manifestDigests.add(img.digest)
        for (const b of img.blobs) {
          const list = repos.get(b.digest) ?? []
          if (!list.includes(repo)) list.push(repo)
          repos.set(b.digest, list)
        }
      }
      // What the registry already has is skipped (HEAD), so reruns after an interruption are cheap.
      await Promise.all([...repos.entries()].filter(([d]) => !manifestDigests.has(d)).map(([digest, rs]) => limit(async () => {
        const have = new Set<string>()
        for (const repo of rs) {
          // eslint-disable-next-line no-await-in-loop
          if (await client.hasBlob(repo, digest)) have.add(repo)
        }
        present.set(digest, have)
      })))
      if (ctx.parts) archive = await MultiFile.open(ctx.parts).catch(() => undefined)
    },
    async blob(digest, size, data) {
      if (failed) throw failed
      const rs = repos.get(digest)
      if (!rs) return
      if (manifestDigests.has(digest)) {
        const chunks: Buffer[] = []
        for await (const c of data) chunks.push(c)
        manifestBytes.set(digest, Buffer.concat(chunks))
        return
      }
      if (rs.every((r) => present.get(digest)?.has(r))) {
        pushed.existing += rs.length
        return
      }
      const name = blobPath(digest)
      const at = archive ? head?.locations.get(name) : undefined
      let open: () => Readable
      let file: string | undefined
      if (archive && at && at.size === size) {
        // The reader verifies the blob as it is read through; the upload reads it again.
        for await (const _ of data) { /* verified */ }
        const a = archive
        open = () => Readable.from(a.verifiedRange(at.offset, size, digest, name), {objectMode: false})
      } else {
        spool ||= await mkdtemp(path.join(os.tmpdir(), 'airlock-push-'))
        const f = path.join(spool, hexOf(digest))
        file = f
        await pipeline(Readable.from(data), createWriteStream(f))
        open = () => createReadStream(f)
      }
      // Bound the backlog: no more verified-but-unsent blobs than the pool can work on.
      while (inflight.size > limit.concurrency * 2) {
        // eslint-disable-next-line no-await-in-loop
        await Promise.race(inflight)
      }
      const task: Promise<void> = limit(async () => {
        try {
          await pushBlob(digest, size, open)
          ctx.progress.advance(size)
        } catch (error) {
          failed ??= error
          throw error
        } finally {
          if (file) await rm(file, {force: true})
        }
      }).catch(() => {}).finally(() => inflight.delete(task))
      inflight.add(task)
      uploads.push(task)
    },
    async commit() {
      try {
        await commitImages()
      } finally {
        await archive?.close()
        archive = undefined
      }
    },
    async abort(error) {
      failed ??= error
      limit.clearQueue()
      await Promise.all(uploads)
      if (spool) await rm(spool, {recursive: true, force: true})
      await archive?.close()
      archive = undefined
    },
    async missing(digests: string[]): Promise<string[]> {
      // Present in one of the repositories is enough: commit() mounts it into the others. Blobs
      // not in the repositories this bundle uses are looked for in the others under the prefix.
      const unknown = digests.filter((d) => (present.get(d)?.size ?? 0) === 0)
      if (unknown.length > 0) {
        const others = (await client.catalog()).filter((r) => !t.prefix || r.startsWith(`${t.prefix}/`)).slice(0, 200)
        await Promise.all(unknown.map((d) => limit(async () => {
          for (const repo of others) {
            // eslint-disable-next-line no-await-in-loop
            if (await client.hasBlob(repo, d)) {
              present.set(d, new Set([...(present.get(d) ?? []), repo]))
              return
            }
          }
        })))
      }
      const out = digests.filter((d) => (present.get(d)?.size ?? 0) === 0)
      for (const d of digests) if (!out.includes(d)) external.add(d)
      return out
    },
    async confirm(): Promise<InstalledImage[]> {
      const out: InstalledImage[] = []
      for (const img of images) {
        const ref = targetReference(img.name, t)
        // eslint-disable-next-line no-await-in-loop
        const h = await client.headManifest(ref.repository, ref.tag ?? img.digest)
        if (!h || h.digest !== img.digest) throw new AirlockError('install.confirm_failed', `${formatReference(ref)} is ${h?.digest ?? 'missing'} on the registry, expected ${img.digest}`)
        out.push({name: formatReference(ref), digest: img.digest, confirmed: h.digest})
      }
      client.close()
      return out
    },
  }
}
