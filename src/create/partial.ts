import {readdir, rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'

import {RANGE_CHUNK} from '../blob/sizes.js'
import {digestChunks, positionalChunks} from '../blob/verified.js'
import {BlobSource, BlobTarget, SourceMiss} from '../copy/source.js'
import {ArchiveFile, archiveFiles, ArchivePlan, PlannedBlob, writeLayout} from '../transports/archive/writer.js'
import {journalPath, JournalState} from './journal.js'

/** Where a finished blob lies in a partial archive: digest → its data's offset and size. */
export type BlobPlaces = Map<string, {size: number; offset: number}>

/**
 * The blobs an earlier run (or an earlier layout of this run) left in a partial archive, as a
 * source: each is re-hashed before it counts. In place, the bytes stay where they are; moved,
 * they are copied into their new place while they are hashed.
 */
export class ResumedSource implements BlobSource {
  readonly origin = 'resumed'
  readonly remote = false
  readonly fresh = false

  constructor(private readonly from: ArchiveFile, private readonly places: BlobPlaces, private readonly inPlace: boolean) {}

  async has(blob: PlannedBlob): Promise<boolean> {
    const at = this.places.get(blob.digest)
    return at !== undefined && at.size === blob.size && at.offset + at.size <= this.from.total && (!this.inPlace || at.offset === blob.dataOffset)
  }

  async provide(blob: PlannedBlob, target: BlobTarget): Promise<void> {
    const at = this.places.get(blob.digest)!
    const copy = this.inPlace ? undefined : (chunk: Buffer, offset: number) => target.write([chunk], offset)
    if ((await hashAt(this.from, at.offset, at.size, copy)) !== blob.digest) {
      throw new SourceMiss(`${blob.digest} in ${this.from.outPath}.partial does not match its digest`)
    }
  }

  /** Remove the moved-from files (the in-place file is the archive itself: kept). */
  async release(): Promise<void> {
    if (!this.inPlace) await this.from.discard()
  }
}

/** A partial archive laid out for a plan, with what an earlier run left in it. */
export interface OpenedPartial {
  file: ArchiveFile
  /** Undefined when starting afresh. */
  resumed?: ResumedSource
  /** Journal lines of the earlier run that still hold for this layout (hints, re-hashed before use). */
  hints: BlobPlaces
}

/**
 * Open `OUT.partial` for `plan`. An interrupted run of the same layout is resumed in place; one
 * of another layout has its blobs moved over; anything else is started afresh.
 */
export async function openPartial(output: string, plan: ArchivePlan, prior: JournalState | undefined): Promise<OpenedPartial> {
  await removeAsideFiles(output)
  const oldFiles = prior ? archiveFiles(output, prior.total, prior.partSize).map((f) => `${f}.partial`) : []
  const usable = prior !== undefined && prior.blobs.size > 0 && (await Promise.all(oldFiles.map((f) => stat(f).then((s) => s.isFile(), () => false)))).every(Boolean)
  if (!usable) {
    await Promise.all([...oldFiles, `${output}.partial`].map((f) => rm(f, {force: true})))
    await rm(journalPath(output), {force: true})
    return {file: await freshPartial(output, plan), hints: new Map()}
  }
  const byDigest = new Map(plan.blobs.map((b) => [b.digest, b]))
  const same = prior.total === plan.total && prior.partSize === plan.partSize &&
    [...prior.blobs].every(([d, w]) => byDigest.get(d)?.dataOffset === w.offset && byDigest.get(d)?.size === w.size)
  if (!same) {
    const old = await ArchiveFile.create(output, prior.total, prior.partSize, true)
    return movePartial(output, old, prior.blobs, plan)
  }
  const file = await ArchiveFile.create(output, plan.total, plan.partSize, true)
  try {
    await writeLayout(file, plan)
  } catch (error) {
    await file.discard()
    throw error
  }
  return {file, resumed: new ResumedSource(file, prior.blobs, true), hints: prior.blobs}
}

/**
 * Set `old` (this archive's `.partial` files in another layout) aside and start a new `.partial`
 * laid out as `plan`, with `old`'s blobs (at `places`) as the resumed source to move them over.
 */
export async function movePartial(output: string, old: ArchiveFile, places: BlobPlaces, plan: ArchivePlan): Promise<OpenedPartial> {
  await old.close()
  const aside = `${output}.previous`
  const asideFiles = archiveFiles(aside, old.total, old.partSize).map((f) => `${f}.partial`)
  for (const [i, f] of old.files.entries()) await rename(f, asideFiles[i])  
  const from = await ArchiveFile.create(aside, old.total, old.partSize, true)
  try {
    return {file: await freshPartial(output, plan), resumed: new ResumedSource(from, places, false), hints: new Map()}
  } catch (error) {
    await from.discard()
    throw error
  }
}

async function freshPartial(output: string, plan: ArchivePlan): Promise<ArchiveFile> {
  const file = await ArchiveFile.create(output, plan.total, plan.partSize)
  try {
    await writeLayout(file, plan)
  } catch (error) {
    await file.discard()
    throw error
  }
  return file
}

/** Files a run killed while it moved blobs between layouts left aside (see movePartial). */
async function removeAsideFiles(output: string): Promise<void> {
  const base = `${path.basename(output)}.previous`
  const aside = (await readdir(path.dirname(output)).catch(() => [] as string[])).filter((n) => n.startsWith(base) && n.endsWith('.partial'))
  await Promise.all(aside.map((n) => rm(path.join(path.dirname(output), n), {force: true})))
}

/** sha256 of `size` bytes at `offset` of a partial archive, handing each piece read (and its offset in the range) to `each`. */
export async function hashAt(file: ArchiveFile, offset: number, size: number, each?: (chunk: Buffer, at: number) => Promise<void>): Promise<string> {
  return (await digestChunks(positionalChunks((buf, at) => file.read(buf, at), offset, size, RANGE_CHUNK), each)).digest
}
