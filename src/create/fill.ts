import pLimit from 'p-limit'

import {AirlockError, VerifyError} from '../core/errors.js'
import type {Progress} from '../core/progress.js'
import type {BlobOrigin, BlobSource, SourceChain} from '../copy/source.js'
import {imageBlobs, ResolvedImage} from '../resolve/resolve.js'
import type {ArchiveFile, PlannedBlob} from '../transports/archive/writer.js'
import type {Journal} from './journal.js'
import type {FailedImage} from './options.js'
import type {BlobPlaces} from './partial.js'

/** One fill of a partial archive: its planned blobs, from a chain of sources. */
export interface FillRun {
  file: ArchiveFile
  blobs: PlannedBlob[]
  chain: SourceChain
  journal: Journal
  /** Blobs the journal already lists (an earlier run's lines, carried over): not journaled again. */
  journaled: BlobPlaces
  jobs: number
  progress: Progress
  /** Keep pulling the other blobs after one failed (--keep-going). */
  keepGoing: boolean
  /** Called once the local sources are done, before the pulls start. */
  beforePull?: (pull: {blobs: number; bytes: number}, tally: OriginTally) => void
}

/** Bytes filled from each kind of source. */
export type OriginTally = Record<BlobOrigin, number>

export interface FillResult {
  /** Where each blob that is in place now lies. */
  filled: BlobPlaces
  tally: OriginTally
  /** digest → why it could not be pulled. */
  failed: Map<string, string>
  /**
   * Every failure was the network's (a registry unreachable or answering with errors), none a
   * source sending wrong bytes nor a local disk problem: the run can be resumed as it stands.
   */
  networkOnly: boolean
}

/**
 * Fill every planned blob: first from the local sources (resumed partial file, memory, cache),
 * then the rest from the remote ones under a 'pulling' progress bar, `jobs` at a time. A blob
 * that cannot be pulled is reported in `failed`; without keepGoing the queued ones are skipped.
 */
export async function fillArchive(run: FillRun): Promise<FillResult> {
  const limit = pLimit(Math.max(1, run.jobs))
  const result: FillResult = {filled: new Map(), tally: {resumed: 0, memory: 0, cache: 0, registry: 0, file: 0}, failed: new Map(), networkOnly: true}
  const record = async (b: PlannedBlob, source: BlobSource) => {
    // Blobs from memory are written again from memory by a rerun: the journal lists only the others.
    if (source.origin !== 'memory' && !run.journaled.has(b.digest)) await run.journal.done(b.digest, b.size, b.dataOffset)
    result.filled.set(b.digest, {size: b.size, offset: b.dataOffset})
    result.tally[source.origin] += b.size
  }
  await eachLimited(run.blobs, limit, async (b) => {
    const source = await run.chain.fill(b, run.file, 'local')
    if (source) await record(b, source)
  })
  const toPull = run.blobs.filter((b) => !result.filled.has(b.digest))
  const bytes = toPull.reduce((a, b) => a + b.size, 0)
  run.beforePull?.({blobs: toPull.length, bytes}, result.tally)
  run.progress.begin(bytes, 'pulling')
  await eachLimited(toPull, limit, async (b) => {
    try {
      const source = await run.chain.fill(b, run.file, 'remote')
      if (!source) throw new AirlockError('create.pull_failed', `blob ${b.digest}: no source has it`)
      await record(b, source)
    } catch (error) {
      if (!(error instanceof AirlockError)) throw error
      result.failed.set(b.digest, error.message)
      if (error instanceof VerifyError || !/^(registry|create)\./.test(error.code)) result.networkOnly = false
      if (!run.keepGoing) return 'stop'
    }
  })
  run.progress.end()
  return result
}

/**
 * Run `fn` on every item through `limit`. After an error, or when `fn` says 'stop', the items
 * still queued are skipped: each queued task still runs and settles (p-limit's clearQueue() would
 * leave their promises pending forever, and this Promise.all with them). Rejects on the first error.
 */
async function eachLimited<T>(items: T[], limit: ReturnType<typeof pLimit>, fn: (item: T) => Promise<void | 'stop'>): Promise<void> {
  let stop = false
  await Promise.all(items.map((item) => limit(async () => {
    if (stop) return
    try {
      if ((await fn(item)) === 'stop') stop = true
    } catch (error) {
      stop = true
      throw error
    }
  })))
}

/** Every image that needs a blob that could not be pulled, and why. */
export function imagesMissingBlobs(images: ResolvedImage[], failed: Map<string, string>): FailedImage[] {
  const missing: FailedImage[] = []
  for (const img of images) {
    const bad = imageBlobs(img).find((b) => failed.has(b.digest))
    if (bad) missing.push({ref: img.spec.refString, name: img.spec.name, stage: 'pull', error: `blob ${bad.digest}: ${failed.get(bad.digest)}`})
  }
  return missing
}
