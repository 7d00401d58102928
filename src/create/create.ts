import {AirlockError, InputError} from '../core/errors.js'
import {withFileLock} from '../core/lock.js'
import {fsError} from '../core/fs-errors.js'
import {formatBytes, Progress} from '../core/progress.js'
import {resolveExpiry} from '../spec/load.js'
import type {ArtifactBlobs} from '../resolve/artifacts.js'
import {keepReferrersConsistent, type ResolvedImage} from '../resolve/resolve.js'
import type {ArchiveFile} from '../transports/archive/writer.js'
import {buildChain} from './chain.js'
import {commitArchive, createResult} from './commit.js'
import {fillArchive, FillResult, imagesMissingBlobs} from './fill.js'
import {checkNotRunning, Journal, readJournal} from './journal.js'
import type {CreateOptions, CreateResult, FailedImage} from './options.js'
import {BlobPlaces, movePartial, openPartial, ResumedSource} from './partial.js'
import {ArchiveLayout, LayoutContext, planLayout, previousBundle} from './plan.js'
import {checkSomethingFetched, Resolution, resolveStep} from './resolve-step.js'
import {CreateRun, startRun} from './setup.js'

export {epochFromEnv, parseSize} from './options.js'
export type {CreateOptions, CreateResult, FailedImage} from './options.js'

/** The partial archive being filled, and what must be cleaned up if the run fails. */
interface PartialArchive {
  file: ArchiveFile
  journal?: Journal
  resumed?: ResumedSource
  /** Blobs the journal already lists (carried over from an interrupted run of this layout). */
  journaled: BlobPlaces
}

/**
 * `airlock create`: registry → archive, in four steps. Resolve every image to digests; plan the
 * archive (its layout follows from the signed metadata, fixed before any blob moves); fill each
 * blob into its place from the first source that has it (resumed partial file, memory, cache,
 * registry); commit (sync, then rename: never a partial file under the final name).
 */
export async function createBundle(opts: CreateOptions): Promise<CreateResult> {
  const run = await startRun(opts)
  const resolution = await resolveStep(run)
  // One create per output at a time: the check of the journal's pid alone leaves a window.
  try {
    const ctx = await layoutContext(run)
    checkSomethingFetched(run, resolution.images, resolution.failed)
    return await withFileLock(`${run.output}.partial.lock`, `the archive ${run.output}`, () => fillAndCommit(run, resolution, ctx))
  } catch (error) {
    if (error instanceof AirlockError && error.code === 'fs.locked') throw new InputError('create.busy', error.message)
    throw fsError(error, `archive ${run.output}`)
  } finally {
    await resolution.artifacts?.cleanup()
  }
}

/** Plan, fill and commit the archive of `resolution` (under the output's lock). */
async function fillAndCommit(run: CreateRun, resolution: Resolution, ctx: LayoutContext): Promise<CreateResult> {
  let layout = await planLayout(resolution.images, ctx)
  const partial = await openForLayout(run, layout)
  let committed = false
  // A pull that failed on the network leaves the partial archive and its journal for the next run
  // to resume, as a kill does; wrong bytes from a source or a full disk do not.
  let resumable = false
  try {
    const first = await fill(run, partial, layout, resolution.images, true, resolution.artifacts)
    resumable = first.failed.size > 0 && first.networkOnly
    const kept = await dropFailedImages(run, resolution, first)
    if (kept.images.length < resolution.images.length) {
      // The archive without the dropped images has another layout: move the blobs it keeps over.
      layout = await planLayout(kept.images, ctx)
      await refill(run, partial, layout, kept.images, first, resolution.artifacts)
    }
    for (const img of kept.images) run.progress.note(`  ${img.spec.name}  ${img.top.digest}  [${img.platforms.join(', ')}]`)
    const files = await commitArchive(run, partial.file, partial.journal!, resolution, kept.failed)
    committed = true
    return createResult(run, files, layout, first.tally, resolution.lockFile, kept.failed)
  } catch (error) {
    run.progress.end()
    throw fsError(error, `archive ${run.output}`)
  } finally {
    await partial.resumed?.release()
    if (!committed && resumable) {
      await partial.file.close()
      run.progress.note(`kept ${run.output}.partial: run the same create again to resume where it stopped`)
    } else if (!committed) {
      await partial.file.discard()
      await partial.journal?.remove()
    }
  }
}

/** Timestamps, expiry, signing key and --since base shared by every layout of this run. */
async function layoutContext(run: CreateRun): Promise<LayoutContext> {
  const {opts, spec} = run
  // --since: layers the previous bundle shipped stay out (and are not even pulled).
  const previous = opts.since ? await previousBundle(opts.since) : undefined
  const epoch = opts.epoch ?? 0
  // With a given epoch a relative expiry counts from it (reproducible); else from now.
  const expires = resolveExpiry(spec.metadata.expires, opts.epoch === undefined ? new Date() : new Date(epoch * 1000))
  return {
    spec, epoch, ...(expires ? {expires} : {}), ...(run.signingKey ? {signingKey: run.signingKey} : {}),
    ...(opts.splitSize ? {splitSize: opts.splitSize} : {}), ...(previous ? {previous} : {}),
  }
}

/** Open `OUT.partial` for the layout, resuming what an interrupted run of it left, and start its journal. */
async function openForLayout(run: CreateRun, layout: ArchiveLayout): Promise<PartialArchive> {
  const prior = await readJournal(run.output)
  checkNotRunning(run.output, prior)
  let partial: PartialArchive
  try {
    const opened = await openPartial(run.output, layout.plan, prior)
    partial = {file: opened.file, ...(opened.resumed ? {resumed: opened.resumed} : {}), journaled: opened.hints}
  } catch (error) {
    throw fsError(error, `archive ${run.output}`)
  }
  try {
    partial.journal = await Journal.start(run.output, layout.plan.total, layout.plan.partSize, partial.journaled)
  } catch (error) {
    await partial.resumed?.release()
    await partial.file.discard()
    throw fsError(error, `archive ${run.output}`)
  }
  return partial
}

/** Fill every blob of `layout` from the chained sources; `announce` says what is left to pull. */
async function fill(run: CreateRun, partial: PartialArchive, layout: ArchiveLayout, images: ResolvedImage[], announce: boolean, artifacts?: ArtifactBlobs): Promise<FillResult> {
  const {plan, unique, uniqueBytes} = layout
  const chain = buildChain(run, layout, images, partial.resumed, artifacts)
  const result = await fillArchive({
    file: partial.file, blobs: plan.blobs, chain, journal: partial.journal!, journaled: partial.journaled,
    jobs: run.opts.jobs ?? 8, progress: announce ? run.progress : notesOnly(run.progress),
    keepGoing: announce && Boolean(run.opts.keepGoing),
    beforePull: (pull, tally) => {
      if (!announce) return
      const resumed = tally.resumed ? `, ${formatBytes(tally.resumed)} resumed from ${run.output}.partial` : ''
      run.progress.note(`resolved ${images.length} images: ${unique.size} unique blobs (${formatBytes(uniqueBytes)}), ${pull.blobs} to pull (${formatBytes(pull.bytes)})${resumed}`)
    },
  })
  await partial.resumed?.release()
  delete partial.resumed
  return result
}

/**
 * The images whose blobs all arrived. Without --keep-going a lost blob fails the run; with it,
 * the images that need it are reported (and left out), as are those that did not resolve.
 */
async function dropFailedImages(run: CreateRun, resolution: Resolution, filled: FillResult): Promise<{images: ResolvedImage[]; failed: FailedImage[]}> {
  const lost = imagesMissingBlobs(resolution.images, filled.failed)
  if (lost.length > 0 && !run.opts.keepGoing) {
    throw new AirlockError('create.pull_failed', `could not pull ${lost.length} of ${resolution.images.length} images`, {details: lost.map((f) => `${f.ref}: ${f.error}`)})
  }
  const failed = [...resolution.failed, ...lost]
  const drop = new Set(lost.map((f) => `${f.ref} ${f.name}`))
  const images = keepReferrersConsistent(resolution.images.filter((img) => !drop.has(`${img.spec.refString} ${img.spec.name}`)))
  if (run.opts.keepGoing && failed.length > 0) {
    for (const f of failed) run.progress.note(`WARNING: ${f.ref}: NOT in the archive (${f.stage} failed): ${f.error}`)
    checkSomethingFetched(run, images, failed)
  }
  return {images, failed}
}

/** Lay the archive out again as `layout`, with the blobs already filled moved over (re-hashed on the way). */
async function refill(run: CreateRun, partial: PartialArchive, layout: ArchiveLayout, images: ResolvedImage[], before: FillResult, artifacts?: ArtifactBlobs): Promise<void> {
  const moved = await movePartial(run.output, partial.file, before.filled, layout.plan)
  partial.file = moved.file
  partial.resumed = moved.resumed
  await partial.journal?.remove()
  delete partial.journal
  partial.journal = await Journal.start(run.output, layout.plan.total, layout.plan.partSize)
  partial.journaled = new Map()
  const again = await fill(run, partial, layout, images, false, artifacts)
  if (again.failed.size > 0) {
    throw new AirlockError('create.pull_failed', `could not fill ${again.failed.size} blobs of the new layout`, {details: [...again.failed].map(([d, e]) => `${d}: ${e}`)})
  }
}

/** The notes of `progress`, without its bar (a refill moves bytes already counted). */
function notesOnly(progress: Progress): Progress {
  return {begin() {}, advance() {}, note: (m) => progress.note(m), end() {}}
}
