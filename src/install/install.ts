import {stat} from 'node:fs/promises'
import path from 'node:path'

import {AirlockError, InputError} from '../core/errors.js'
import {Progress, silentProgress} from '../core/progress.js'
import {loadTrustedKeys} from '../sign/keys.js'
import {closest} from '../spec/suggest.js'
import {readArchive, VerifiedHead} from '../transports/archive/reader.js'
import type {ImageRecord} from '../transports/archive/metadata.js'
import {ociDestination} from '../transports/oci-layout/destination.js'
import {registryDestination} from '../transports/registry/destination.js'
import {parseTarget, Target, targetReference} from '../transports/target.js'
import {formatReference} from '../spec/reference.js'
import {ENTRY} from '../transports/archive/metadata.js'
import {checkDowngrade, readState, recordInstall} from './state.js'
import {sha256Hex} from '../core/digest.js'
import type {Destination, DestinationContext, InstalledImage, LeftOut, LeftOutManifests, SkippedEntry} from '../transports/types.js'
import {engineContent} from '../transports/engine-content.js'
import {requireBaseOnTarget, withBaseArchive} from './differential.js'
import {blobsOf, InflatedSizeError} from '../transports/docker-archive/tarstream.js'
import {resolveArchiveParts} from '../transports/archive/parts.js'
import {STDIN} from '../blob/multi-file.js'

export {countsText} from '../transports/engine-content.js'

export interface InstallOptions {
  /** The archive, its first part, a glob of its parts, or `-` (STDIN: read once, front to back). */
  archive: string
  /** The base bundle of a differential archive, to stream the blobs it leaves out from. */
  base?: string
  keys: string[]
  allowUnsigned?: boolean
  to: string
  only?: string[]
  dryRun?: boolean
  progress?: Progress
  registryConfig?: string
  insecure?: boolean
  caFile?: string
  /** Docker Engine socket, `unix:///path` (DOCKER_HOST; default /var/run/docker.sock). */
  dockerHost?: string
  /** Send gzip layers to a classic docker image store inflated (default true; AIRLOCK_DOCKER_LAYERS=gzip: false). */
  dockerInflate?: boolean
  /** podman executable (AIRLOCK_PODMAN; default `podman` on PATH). */
  podman?: string
  /** ctr executable (AIRLOCK_CTR; default `ctr` on PATH). */
  ctr?: string
  /** containerd socket (CONTAINERD_ADDRESS; default ctr's own). */
  containerdAddress?: string
  /** containerd namespace (CONTAINERD_NAMESPACE; default `default`). */
  namespace?: string
  /** Hashing threads, the main one included (AIRLOCK_HASH_THREADS; default the cores, at most 8). */
  hashThreads?: number
  /** At least this many distinct trusted keys must have signed (default 1). */
  threshold?: number
  jobs?: number
  now?: Date
  retries?: number
  retryBaseDelayMs?: number
  /** Install even if a newer version of the bundle is recorded in the state file. */
  allowDowngrade?: boolean
  /** Installed-versions record (the command passes --state-file, else defaultStateFile()). */
  stateFile: string
}

export interface InstallResult {
  archive: string
  target: string
  dryRun: boolean
  bundle: {name: string; version: string}
  signer?: {fingerprint: string; userId?: string}
  images: InstalledImage[]
  /** docker, podman: selected entries not loaded, as they hold nothing runnable (charts, signatures, attestations, artifacts). */
  skipped?: SkippedEntry[]
  /** docker, podman: manifests of loaded entries the engine did not get (other platforms, attestations, signatures), by kind. */
  leftOut?: LeftOutManifests[]
  blobs: number
  bytes: number
}

/** The names a `files:` or `charts:` entry also answers to under --only: its dest paths, its chart name (and NAME:VERSION). */
function contentNames(img: ImageRecord): string[] {
  const c = img.content
  if (c?.type === 'files') return c.files.map((f) => f.path)
  if (c?.type === 'chart') return [c.name, `${c.name}:${c.version}`]
  return []
}

/** Which images --only selects: full name, ref, a unique suffix such as `app-a:1`, a file's dest or a chart's name (with the entries referring to them). */
export function selectImages(images: ImageRecord[], only?: string[]): ImageRecord[] {
  if (!only || only.length === 0) return images
  const out = new Set<ImageRecord>()
  for (const want of only) {
    const hits = images.filter((i) => i.name === want || i.ref === want || i.name.endsWith(`/${want}`) || contentNames(i).includes(want))
    if (hits.length === 0) {
      const hint = closest(want, images.map((i) => i.name), Math.max(3, Math.floor(want.length / 3)))
      throw new InputError('install.unknown_image', `--only ${want}: no such image in the bundle${hint ? ` (did you mean ${hint}?)` : ''}; it has: ${images.map((i) => i.name).join(', ')}`)
    }
    if (hits.length > 1) throw new InputError('install.ambiguous_image', `--only ${want} matches ${hits.length} images: ${hits.map((h) => h.name).join(', ')}`)
    out.add(hits[0])
  }
  // An image's signatures, attestations and referrers come along with it.
  const names = new Set([...out].map((i) => i.name))
  return images.filter((i) => out.has(i) || (i.referrerOf !== undefined && names.has(i.referrerOf.image)))
}

async function destinationFor(target: Target, opts: InstallOptions, ctx: DestinationContext, retry: {inflate?: boolean} = {}): Promise<Destination> {
  switch (target.kind) {
    case 'oci':
      return ociDestination({...ctx, dir: target.dir})
    case 'dir': {
      const m = await import('../transports/dir/destination.js')
      return m.dirDestination({...ctx, dir: target.dir})
    }
    case 'registry':
      return registryDestination({...ctx, target: opts.to, insecure: opts.insecure, caFile: opts.caFile, registryConfig: opts.registryConfig, jobs: opts.jobs, retries: opts.retries, retryBaseDelayMs: opts.retryBaseDelayMs})
    case 'docker': {
      const m = await import('../transports/docker-daemon/destination.js')
      const inflate = retry.inflate ?? opts.dockerInflate
      return m.dockerDestination({...ctx, ...(opts.dockerHost ? {host: opts.dockerHost} : {}), ...(inflate === undefined ? {} : {inflate})})
    }
    case 'podman': {
      const m = await import('../transports/podman/destination.js')
      return m.podmanDestination({...ctx, ...(opts.podman ? {podman: opts.podman} : {})})
    }
    case 'containerd': {
      const m = await import('../transports/containerd/destination.js')
      return m.containerdDestination({
        ...ctx, ...(opts.namespace ? {namespace: opts.namespace} : {}), ...(opts.containerdAddress ? {address: opts.containerdAddress} : {}), ...(opts.ctr ? {ctr: opts.ctr} : {}),
      })
    }
  }
}

function targetName(target: Target, img: ImageRecord): string {
  return target.kind === 'registry' ? formatReference(targetReference(img.name, target)) : img.name
}

/**
 * `airlock install`: archive → target. Verification and loading are ONE pass over the archive:
 * the target receives only verified bytes and makes nothing visible before everything verified.
 */
export async function installArchive(opts: InstallOptions): Promise<InstallResult> {
  const target = parseTarget(opts.to)
  const progress = opts.progress ?? silentProgress
  const trustedKeys = await loadTrustedKeys(opts.keys, {warn: (m) => progress.note(m)})
  if (opts.archive === STDIN && opts.base === STDIN) throw new InputError('archive.stdin_unsupported', 'the archive and --base cannot both be standard input ("-")')
  const parts = await resolveArchiveParts(opts.archive)
  let selected: ImageRecord[] = []
  // Rollback protection (src/install/state.ts): refuse a bundle older than the one installed before.
  const stateFile = opts.stateFile
  const targetKey = target.kind === 'oci' || target.kind === 'dir' ? `${target.kind}:${path.resolve(target.dir)}` : opts.to
  const state = await readState(stateFile)
  const noDowngrade = (head: VerifiedHead) => {
    if (!opts.allowDowngrade) checkDowngrade(state, head.metadata.bundle, stateFile, targetKey)
  }
  // Parts that are regular files can be read again by offset (not a pipe, not a device, not standard input).
  const rereadable = (await Promise.all(parts.map(async (p) => p !== STDIN && (await stat(p).catch(() => undefined))?.isFile() === true))).every(Boolean)
  const ctx: DestinationContext = {
    progress,
    ...(rereadable ? {parts} : {}),
    selected: (head: VerifiedHead) => {
      noDowngrade(head)
      const first = selected.length === 0
      selected = selectImages(head.metadata.images, opts.only)
      if (first) {
        const bytes = [...blobsOf(selected)].reduce((n, d) => n + (head.blobs.get(d.slice(7)) ?? 0), 0)
        progress.begin(bytes, 'installing')
      }
      return selected
    },
  }
  if (opts.dryRun) {
    // Full verification, no target touched.
    const r = await readArchive(parts, {trustedKeys, allowUnsigned: opts.allowUnsigned, now: opts.now, hashThreads: opts.hashThreads, threshold: opts.threshold})
    noDowngrade(r.head)
    selected = selectImages(r.head.metadata.images, opts.only)
    const engine = target.kind === 'docker' || target.kind === 'podman' ? engineContent(selected, target.kind) : undefined
    const loads = engine?.runnable ?? selected
    for (const img of loads) progress.note(`  would install ${targetName(target, img)}  ${img.digest}`)
    return resultOf(opts, r, loads.map((img) => ({name: targetName(target, img), digest: img.digest, confirmed: ''})), engine?.leftOut)
  }
  const basePartsP = opts.base ? resolveArchiveParts(opts.base) : undefined
  const pass = async (retry: {inflate?: boolean}) => {
    const destination = await destinationFor(target, opts, ctx, retry)
    // Differential bundles: blobs left out come from --base, or must already be on the target.
    const dest = basePartsP
      ? withBaseArchive(destination, () => selected, {parts: await basePartsP, trustedKeys, allowUnsigned: opts.allowUnsigned, now: opts.now})
      : requireBaseOnTarget(destination, () => selected)
    try {
      return {dest, r: await readArchive(parts, {trustedKeys, allowUnsigned: opts.allowUnsigned, now: opts.now, sink: dest, hashThreads: opts.hashThreads, threshold: opts.threshold})}
    } finally {
      progress.end()
    }
  }
  let done
  try {
    done = await pass({})
  } catch (error) {
    // docker: a layer sent inflated did not match the size its gzip trailer gave. Nothing was
    // loaded (the load was aborted); load again with the layers as they are.
    if (!(error instanceof InflatedSizeError)) throw error
    progress.note(`  ${error.message}; loading again with gzip layers as they are`)
    selected = []
    done = await pass({inflate: false})
  }
  const {dest, r} = done
  const images = await dest.confirm()
  const leftOut = dest.leftOut?.()
  const expected = selected.length - (leftOut?.skipped.length ?? 0)
  if (images.length !== expected) throw new AirlockError('install.confirm_failed', `target confirmed ${images.length} of ${expected} images`)
  const sums = r.head.raw.get(ENTRY.CHECKSUMS)
  await recordInstall(stateFile, {
    name: r.bundle.name, version: r.bundle.version, ...(sums ? {contentSha256: sha256Hex(sums)} : {}),
    ...(r.signer ? {signer: r.signer.fingerprint} : {}),
    archive: opts.archive === STDIN ? STDIN : path.resolve(opts.archive), target: targetKey, installedAt: new Date().toISOString(),
  }).catch((error: unknown) => progress.note(`WARNING: installed, but could not record it for rollback protection: ${(error as Error).message}`))
  return resultOf(opts, r, images, leftOut)
}

function resultOf(opts: InstallOptions, r: Awaited<ReturnType<typeof readArchive>>, images: InstalledImage[], leftOut?: LeftOut): InstallResult {
  return {
    archive: opts.archive, target: opts.to, dryRun: Boolean(opts.dryRun), bundle: {name: r.bundle.name, version: r.bundle.version},
    ...(r.signer ? {signer: {fingerprint: r.signer.fingerprint, userId: r.signer.userId}} : {}),
    images, ...(leftOut ? {skipped: leftOut.skipped, leftOut: leftOut.manifests} : {}), blobs: r.blobs, bytes: r.bytes,
  }
}
