import {AirlockError} from '../core/errors.js'
import type {ArtifactBlobs} from '../resolve/artifacts.js'
import {BundleLock, buildLock, checkLocked, lockPathFor, readLock, withPins} from '../resolve/lock.js'
import {ResolvedImage, resolveImages, withReferrers} from '../resolve/resolve.js'
import {checkUpstreamPolicies} from '../resolve/upstream-policy.js'
import {resolveArtifacts} from './artifact-step.js'
import type {FailedImage} from './options.js'
import type {CreateRun} from './setup.js'

/** Every image resolved to digests (tag → digest, per platform), before any layer moves. */
export interface Resolution {
  images: ResolvedImage[]
  /** Only with --keep-going: images that could not be resolved. */
  failed: FailedImage[]
  lock: BundleLock
  lockFile: string
  /** Where the bytes of files and repository charts are (memory, local paths, downloads). */
  artifacts?: ArtifactBlobs
}

/** Resolve bundle.yaml's images; with --locked, check them against the lock file. */
export async function resolveStep(run: CreateRun): Promise<Resolution> {
  const {spec, sources, opts} = run
  const failed: FailedImage[] = []
  let images: ResolvedImage[]
  if (opts.keepGoing) {
    // One resolution per image, so that one unreachable image does not sink the others.
    const per = await Promise.all(spec.images.map(async (img) => {
      try {
        return (await resolveImages({...spec, images: [img]}, sources, {dockerPlatform: opts.dockerPlatform}))[0]
      } catch (error) {
        if (!(error instanceof AirlockError)) throw error
        failed.push({ref: img.refString, name: img.name, stage: 'resolve', error: error.details[0] ?? error.message})
        return undefined
      }
    }))
    images = per.filter((r): r is ResolvedImage => r !== undefined)
  } else {
    images = await resolveImages(spec, sources, {dockerPlatform: opts.dockerPlatform})
  }
  // The lock pins the images; their signatures and referrers come along as entries of their own.
  const entries = withReferrers(images)
  await checkUpstreamPolicies(sources, entries)
  const lockFile = lockPathFor(spec.file)
  const art = await resolveArtifacts(run, images, lockFile)
  const lock = withPins(buildLock(images), art.blobs.pinned)
  if (opts.locked) {
    const was = await readLock(lockFile)
    const have = new Set([...images, ...art.entries].map((r) => `${r.spec.refString} ${r.spec.name}`))
    checkLocked(lockFile, failed.length > 0 ? {...was, images: was.images.filter((i) => have.has(`${i.ref} ${i.name}`))} : was, lock)
  }
  return {images: [...entries, ...art.entries], failed, lock, lockFile, artifacts: art.blobs}
}

/** Stop when not one image could be fetched (--keep-going still needs one). */
export function checkSomethingFetched(run: CreateRun, images: ResolvedImage[], failed: FailedImage[]): void {
  if (images.length > 0) return
  throw new AirlockError('create.nothing_fetched', `none of the ${run.spec.images.length} images could be fetched`, {details: failed.map((f) => `${f.ref}: ${f.error}`)})
}
