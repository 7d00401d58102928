import {fsError} from '../core/fs-errors.js'
import {writeLock} from '../resolve/lock.js'
import type {ArchiveFile} from '../transports/archive/writer.js'
import {contentCounts, entryKind} from '../transports/archive/metadata.js'
import type {OriginTally} from './fill.js'
import type {Journal} from './journal.js'
import type {CreateResult, FailedImage} from './options.js'
import type {ArchiveLayout} from './plan.js'
import type {Resolution} from './resolve-step.js'
import type {CreateRun} from './setup.js'

/**
 * Sync the archive and only then give it its final name (never a partial file under it), drop
 * the resume journal, and rewrite the lock file unless images are missing.
 */
export async function commitArchive(run: CreateRun, file: ArchiveFile, journal: Journal, resolution: Resolution, failed: FailedImage[]): Promise<string[]> {
  let files: string[]
  try {
    files = await file.commit()
  } catch (error) {
    throw fsError(error, `archive ${run.output}`)
  }
  await journal.remove()
  // A --keep-going archive with missing images must not rewrite the lock file with a partial list.
  if (failed.length === 0) await writeLock(resolution.lockFile, resolution.lock)
  if (!run.signingKey) run.progress.note('WARNING: this bundle is UNSIGNED: nobody can prove where it came from')
  return files
}

/** What `create` reports about the archive it wrote. */
export function createResult(run: CreateRun, files: string[], layout: ArchiveLayout, tally: OriginTally, lockFile: string, failed: FailedImage[]): CreateResult {
  const {plan, external, records, referencedBytes, uniqueBytes, previous} = layout
  return {
    archive: files[0],
    files,
    ...(previous ? {base: {name: previous.name, version: previous.version, blobsLeftOut: external.length, bytesLeftOut: external.reduce((x, b) => x + b.size, 0)}} : {}),
    bundle: {name: run.spec.metadata.name, version: run.spec.metadata.version},
    images: records.map((r) => ({
      ref: r.ref, name: r.name, digest: r.digest, sourceDigest: r.sourceDigest, platforms: r.platforms,
      kind: entryKind(r), content: contentCounts(r), ...(r.omitted ? {omitted: r.omitted} : {}),
    })),
    blobs: plan.blobs.length,
    bytesPulled: tally.registry,
    bytesCached: tally.cache,
    bytesResumed: tally.resumed,
    bytesWritten: plan.total,
    bytesReferenced: referencedBytes,
    dedupeSaved: referencedBytes - uniqueBytes,
    signed: Boolean(run.signingKey),
    ...(plan.signer ? {signer: plan.signer} : {}),
    lockFile,
    ...(run.opts.keepGoing ? {failed} : {}),
  }
}
