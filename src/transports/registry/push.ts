/**
 * Pushing a verified archive to a registry (`install --to registry://…`), as the archive streams:
 *
 * - begin: which repositories need which blob, and which of them the registry already has (HEAD),
 *   so a rerun after an interruption is cheap.
 * - blob: a verified blob is uploaded from the archive itself, read again by offset and hashed
 *   again on the way (so an upload can be retried, and nothing is copied to disk); a blob that is
 *   not in a file of the archive (from a --base archive) is spooled to a private temp file as it
 *   is verified. Uploads run concurrently (HEAD first, cross-repo mount for blobs shared between
 *   repositories), with a bounded backlog.
 * - commit, after the whole archive verified: the uploads' end, blobs a differential bundle left
 *   out mounted from where they are, then platform manifests by digest, indexes, and tags last.
 */
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import pLimit, {type LimitFunction} from 'p-limit'

import {AirlockError} from '../../core/errors.js'
import {blobPath, hexOf} from '../../core/model.js'
import type {Progress} from '../../core/progress.js'
import {formatReference, type Reference} from '../../spec/reference.js'
import type {ImageRecord, IndexRecord} from '../archive/metadata.js'
import {MultiFile} from '../../blob/multi-file.js'
import type {VerifiedHead} from '../archive/reader.js'
import type {RegistryClient} from './client.js'

export interface RegistryPushOptions {
  /** The images selected for installation. */
  selected: (head: VerifiedHead) => ImageRecord[]
  progress: Progress
  /** The archive's parts, when they are regular files that can be read again by offset. */
  parts?: string[]
  /** Concurrent uploads (default 8). */
  jobs?: number
  /** The registry host, for messages. */
  host: string
  /** Only repositories under this prefix are searched for blobs a differential bundle left out. */
  prefix: string
  /** The target reference of an image name. */
  referenceOf: (name: string) => Reference
}

type Opener = () => Readable

export class RegistryPush {
  // rejectOnClear: abort() clears the queue and then waits for every upload task; a cleared task
  // must settle (it used to hang forever once one upload had failed while others were queued).
  private readonly limit: LimitFunction
  private images: ImageRecord[] = []
  private head?: VerifiedHead
  /** The archive, opened to read verified blobs again by offset. */
  private archive?: MultiFile
  private spool = ''
  /** digest → repositories that need it */
  private readonly repos = new Map<string, string[]>()
  private readonly present = new Map<string, Set<string>>()
  private readonly manifestBytes = new Map<string, Buffer>()
  private readonly manifestDigests = new Set<string>()
  private readonly uploads: Promise<void>[] = []
  private readonly inflight = new Set<Promise<void>>()
  /** Blobs left out of a differential bundle that the target already holds in some repository. */
  private readonly external = new Set<string>()
  private failed: unknown
  private readonly pushed = {uploaded: 0, mounted: 0, existing: 0}

  constructor(
    private readonly client: RegistryClient,
    private readonly o: RegistryPushOptions,
  ) {
    this.limit = pLimit({concurrency: Math.max(1, o.jobs ?? 8), rejectOnClear: true})
  }

  async begin(h: VerifiedHead): Promise<void> {
    this.head = h
    this.images = this.o.selected(h)
    this.planRepositories()
    // What the registry already has is skipped (HEAD), so reruns after an interruption are cheap.
    const blobs = [...this.repos.entries()].filter(([d]) => !this.manifestDigests.has(d))
    await Promise.all(blobs.map(([digest, rs]) => this.limit(async () => {
      const have = new Set<string>()
      for (const repo of rs) {
        if (await this.client.hasBlob(repo, digest)) have.add(repo)
      }
      this.present.set(digest, have)
    })))
    if (this.o.parts) this.archive = await MultiFile.open(this.o.parts).catch(() => undefined)
  }

  async blob(digest: string, size: number, data: AsyncIterable<Buffer>): Promise<void> {
    if (this.failed) throw this.failed as Error
    const rs = this.repos.get(digest)
    if (!rs) return
    if (this.manifestDigests.has(digest)) {
      const chunks: Buffer[] = []
      for await (const c of data) chunks.push(c)
      this.manifestBytes.set(digest, Buffer.concat(chunks))
      return
    }
    if (rs.every((r) => this.present.get(digest)?.has(r))) {
      this.pushed.existing += rs.length
      return
    }
    const {open, file} = await this.uploadSource(digest, size, data)
    // Bound the backlog: no more verified-but-unsent blobs than the pool can work on.
    while (this.inflight.size > this.limit.concurrency * 2) {
      await Promise.race(this.inflight)
    }
    this.queueUpload(digest, size, open, file)
  }

  async commit(): Promise<void> {
    try {
      await this.commitImages()
    } finally {
      await this.archive?.close()
      this.archive = undefined
    }
  }

  async abort(error: unknown): Promise<void> {
    this.failed ??= error
    this.limit.clearQueue()
    await Promise.all(this.uploads)
    if (this.spool) await rm(this.spool, {recursive: true, force: true})
    await this.archive?.close()
    this.archive = undefined
  }

  /**
   * Which of these blobs the registry lacks. Present in one of the repositories is enough:
   * commit() mounts it into the others. Blobs not in the repositories this bundle uses are
   * looked for in the others under the prefix.
   */
  async missing(digests: string[]): Promise<string[]> {
    const unknown = digests.filter((d) => (this.present.get(d)?.size ?? 0) === 0)
    if (unknown.length > 0) await this.searchOtherRepositories(unknown)
    const out = digests.filter((d) => (this.present.get(d)?.size ?? 0) === 0)
    for (const d of digests) if (!out.includes(d)) this.external.add(d)
    return out
  }

  async confirm(): Promise<Array<{name: string; digest: string; confirmed: string}>> {
    const out: Array<{name: string; digest: string; confirmed: string}> = []
    for (const img of this.images) {
      const ref = this.o.referenceOf(img.name)
      const h = await this.client.headManifest(ref.repository, ref.tag ?? img.digest)
      if (!h || h.digest !== img.digest) throw new AirlockError('install.confirm_failed', `${formatReference(ref)} is ${h?.digest ?? 'missing'} on the registry, expected ${img.digest}`)
      out.push({name: formatReference(ref), digest: img.digest, confirmed: h.digest})
    }
    this.client.close()
    return out
  }

  private repoOf(img: ImageRecord): string {
    return this.o.referenceOf(img.name).repository
  }

  /** digest → the repositories that need it; which digests are manifests (pushed at commit). */
  private planRepositories(): void {
    for (const img of this.images) {
      const repo = this.repoOf(img)
      for (const m of img.manifests) this.manifestDigests.add(m.digest)
      for (const ix of img.indexes ?? []) this.manifestDigests.add(ix.digest)
      this.manifestDigests.add(img.digest)
      for (const b of img.blobs) {
        const list = this.repos.get(b.digest) ?? []
        if (!list.includes(repo)) list.push(repo)
        this.repos.set(b.digest, list)
      }
    }
  }

  /** How an upload reads the blob: again from the archive file, else from a spooled copy. */
  private async uploadSource(digest: string, size: number, data: AsyncIterable<Buffer>): Promise<{open: Opener; file?: string}> {
    const name = blobPath(digest)
    const at = this.archive ? this.head?.locations.get(name) : undefined
    if (this.archive && at && at.size === size) {
      // The reader verifies the blob as it is read through; the upload reads it again.
      for await (const _ of data) { /* verified */ }
      const a = this.archive
      return {open: () => Readable.from(a.verifiedRange(at.offset, size, digest, name), {objectMode: false})}
    }
    this.spool ||= await mkdtemp(path.join(os.tmpdir(), 'airlock-push-'))
    const f = path.join(this.spool, hexOf(digest))
    await pipeline(Readable.from(data), createWriteStream(f))
    return {open: () => createReadStream(f), file: f}
  }

  private queueUpload(digest: string, size: number, open: Opener, file: string | undefined): void {
    const task: Promise<void> = this.limit(async () => {
      try {
        await this.pushBlob(digest, size, open)
        this.o.progress.advance(size)
      } catch (error) {
        this.failed ??= error
        throw error
      } finally {
        if (file) await rm(file, {force: true})
      }
    }).catch(() => {}).finally(() => this.inflight.delete(task))
    this.inflight.add(task)
    this.uploads.push(task)
  }

  private async pushBlob(digest: string, size: number, open: Opener): Promise<void> {
    const rs = this.repos.get(digest) ?? []
    let first: string | undefined
    for (const repo of rs) {
      if (this.present.get(digest)?.has(repo)) {
        first ??= repo
        this.pushed.existing++
        continue
      }
      const r = await this.client.putBlob(repo, digest, size, open, first ? {mountFrom: first} : {})
      this.pushed[r === 'exists' ? 'existing' : r]++
      first ??= repo
    }
  }

  private async searchOtherRepositories(unknown: string[]): Promise<void> {
    const prefix = this.o.prefix
    const others = (await this.client.catalog()).filter((r) => !prefix || r.startsWith(`${prefix}/`)).slice(0, 200)
    await Promise.all(unknown.map((d) => this.limit(async () => {
      for (const repo of others) {
        if (await this.client.hasBlob(repo, d)) {
          this.present.set(d, new Set([...(this.present.get(d) ?? []), repo]))
          return
        }
      }
    })))
  }

  /** After the whole archive verified: the uploads' end, then manifests, indexes and tags. */
  private async commitImages(): Promise<void> {
    await Promise.all(this.uploads)
    if (this.failed) throw this.failed as Error
    await this.mountExternal()
    // manifests after their blobs, indexes after what they list (nested ones deepest first), tags last
    for (const img of this.images) {
      const repo = this.repoOf(img)
      for (const m of img.manifests) {
        if (m.digest === img.digest) continue
        await this.client.putManifest(repo, m.digest, this.manifestBytes.get(m.digest)!, m.mediaType)
      }
      for (const ix of innerIndexesDeepestFirst(img)) await this.client.putManifest(repo, ix.digest, this.manifestBytes.get(ix.digest)!, ix.mediaType)
    }
    for (const img of this.images) {
      const ref = this.o.referenceOf(img.name)
      const got = await this.client.putManifest(ref.repository, ref.tag ?? img.digest, this.manifestBytes.get(img.digest)!, img.mediaType)
      if (got !== img.digest) throw new AirlockError('install.registry_digest', `${formatReference(ref)}: registry stored ${got}, expected ${img.digest}`)
      this.o.progress.note(`  pushed ${formatReference(ref)}  ${img.digest}`)
    }
    if (this.spool) await rm(this.spool, {recursive: true, force: true})
  }

  /** Blobs a differential bundle left out: mount them from the repository that has them. */
  private async mountExternal(): Promise<void> {
    for (const digest of this.external) {
      const have = [...(this.present.get(digest) ?? [])]
      for (const repo of this.repos.get(digest) ?? []) {
        if (have.includes(repo)) continue
        await this.client.putBlob(repo, digest, 0, () => {
          throw new AirlockError('install.mount_failed', `${this.o.host}: cannot mount ${digest} into ${repo} from ${have[0]} (the registry refused a cross-repository mount)`)
        }, {mountFrom: have[0]})
      }
    }
  }
}

/** The indexes below an entry's top, each after every index it lists. */
function innerIndexesDeepestFirst(img: ImageRecord): IndexRecord[] {
  const byDigest = new Map((img.indexes ?? []).map((ix) => [ix.digest, ix]))
  const out: IndexRecord[] = []
  const placed = new Set<string>([img.digest])
  const place = (ix: IndexRecord): void => {
    if (placed.has(ix.digest)) return
    placed.add(ix.digest)
    for (const d of ix.manifests) {
      const child = byDigest.get(d)
      if (child) place(child)
    }
    out.push(ix)
  }
  for (const ix of img.indexes ?? []) if (ix.digest !== img.digest) place(ix)
  return out
}
