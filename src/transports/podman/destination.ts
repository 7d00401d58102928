/**
 * `--to podman`: one `podman load` per image, each fed an OCI archive of that image alone
 * (plan.ts), so that podman keeps its manifest digests: `podman image inspect NAME@sha256:<entry
 * digest>` finds it, also for an image referenced only by digest (named `REPO@sha256:…`, not
 * `<none>`). podman 4.x refuses an OCI archive of several images, and loading them as one docker
 * archive made it record new manifest digests.
 *
 * The blobs the loads need are written, as they stream and verify, into a private directory; the
 * loads run at commit(), one after the other, once the whole archive verified. If one fails, the
 * images loaded before it are removed again and names they moved point back (undo-load.ts):
 * nothing becomes visible unless everything loaded. abort() before commit loads nothing. The
 * directory (also podman's TMPDIR for its copy of each archive) is removed afterwards.
 *
 * Only runnable images are loaded; the rest is reported as left out (engine-content.ts).
 * Configuration comes from the environment as for podman itself (CONTAINERS_STORAGE_CONF,
 * CONTAINERS_CONF, CONTAINERS_REGISTRIES_CONF, XDG_*). No secret is passed in argv.
 */
import {createReadStream} from 'node:fs'
import {mkdir, mkdtemp, open, rm} from 'node:fs/promises'
import path from 'node:path'

import {AirlockError} from '../../core/errors.js'
import type {Destination, DestinationContext, InstalledImage, LeftOut} from '../types.js'
import type {VerifiedHead} from '../archive/reader.js'
import {dockerManifestOf, dockerRepoTags, ImageRecord} from '../archive/metadata.js'
import {ProcessLoader, run} from '../process-loader.js'
import {blobsOf} from '../docker-archive/tarstream.js'
import {type ImageStore, recordNames, type RecordedName, undoLoad} from '../undo-load.js'
import {describeLeftOut, engineContent} from '../engine-content.js'
import {type PodmanLoadPlan, podmanLoadPlan, podmanLookups} from './plan.js'

export interface PodmanOptions {
  /** podman executable (default `podman` on PATH; the install command passes AIRLOCK_PODMAN). */
  podman?: string
  /** Directory for the blobs of the loads and podman's copies of them (default $TMPDIR or /var/tmp). */
  tmpDir?: string
}

const CODE = 'install.podman_failed'

/** How an image is found in podman before and after a load: its tag, or for a digest-only name its image ID. */
function lookupOf(img: ImageRecord): string {
  return dockerRepoTags(img.name)[0] ?? dockerManifestOf(img).config.slice(7)
}

/** podman's image store, as undoing a load needs it. */
function podmanStore(bin: string): ImageStore {
  const opts = {code: CODE, tool: 'podman', what: 'undoing a podman load'} as const
  return {
    imageId: async (ref) => (await run(bin, ['image', 'inspect', '--format', '{{.Id}}', ref], opts).catch(() => '')).trim() || undefined,
    tag: async (id, ref) => { await run(bin, ['tag', id, ref], opts) },
    remove: (ref) => run(bin, ['rmi', ref], opts).then(() => true, () => false),
  }
}

async function writeBlob(file: string, data: AsyncIterable<Buffer>): Promise<void> {
  const fh = await open(file, 'wx', 0o600)
  try {
    for await (const chunk of data) await fh.write(chunk)
  } finally {
    await fh.close()
  }
}

/** podman's version and platform (`os/arch`), which decides what a load of an index picks. */
async function podmanPlatform(bin: string): Promise<string> {
  // Fails before the archive is read when podman is missing or its storage is unusable.
  const out = await run(bin, ['version', '--format', '{{.Client.OsArch}}'], {code: CODE, tool: 'podman', what: 'podman is not usable'})
  return out.trim() || 'linux/amd64'
}

/** The loads of one install: blobs written as they verify, then one `podman load` per image at commit. */
class PodmanLoads {
  private plans: PodmanLoadPlan[] = []
  leftOut: LeftOut = {skipped: [], manifests: []}
  private before: RecordedName[] = []
  private dir?: string
  private loader?: ProcessLoader
  /** Blobs the loads need, and their sizes once written. */
  private needed = new Set<string>()
  private readonly written = new Map<string, number>()
  /** Every blob of the selected entries (what the progress total counts). */
  private selectedBlobs = new Set<string>()
  /** What podman printed, for a failed confirmation. */
  private loaded = ''
  private readonly store: ImageStore

  constructor(private readonly ctx: DestinationContext & PodmanOptions, private readonly bin: string, private readonly hostPlatform: string) {
    this.store = podmanStore(bin)
  }

  private blobFile(digest: string): string {
    return path.join(this.dir!, 'blobs', digest.slice(7))
  }

  async begin(head: VerifiedHead): Promise<void> {
    const selected = this.ctx.selected(head)
    this.selectedBlobs = blobsOf(selected)
    const content = engineContent(selected, 'podman')
    this.leftOut = content.leftOut
    for (const line of describeLeftOut(this.leftOut)) this.ctx.progress.note(line)
    this.plans = content.runnable.map((img) => podmanLoadPlan(img, this.hostPlatform))
    this.needed = new Set(this.plans.flatMap((p) => p.blobs))
    this.before = await recordNames(this.store, content.runnable, lookupOf)
    if (this.plans.length === 0) return
    this.dir = await mkdtemp(path.join(this.ctx.tmpDir ?? process.env.TMPDIR ?? '/var/tmp', 'airlock-podman-'))
    await mkdir(path.join(this.dir, 'blobs'))
    await mkdir(path.join(this.dir, 'tmp'))
  }

  async blob(digest: string, size: number, data: AsyncIterable<Buffer>): Promise<void> {
    if (this.dir && this.needed.has(digest) && !this.written.has(digest)) {
      await writeBlob(this.blobFile(digest), data)
      this.written.set(digest, size)
    }
    if (this.selectedBlobs.has(digest)) this.ctx.progress.advance(size)
  }

  /** One `podman load` of one image's OCI archive, from the verified blobs. */
  private async loadOne(plan: PodmanLoadPlan): Promise<void> {
    const l = new ProcessLoader({
      tool: 'podman', bin: this.bin, args: ['load', '--quiet'], env: {...process.env, TMPDIR: path.join(this.dir!, 'tmp')},
      code: CODE, what: `podman load of ${plan.img.name}`,
    })
    this.loader = l
    l.start()
    await l.guard(() => l.tar.beginOciArchive(plan.top, plan.loadName, plan.blobs))
    for (const d of plan.blobs) await l.guard(() => l.tar.blob(d, this.written.get(d)!, createReadStream(this.blobFile(d), {highWaterMark: 1024 * 1024})))
    this.loaded += (await l.finish()).stdout
    this.loader = undefined
    this.ctx.progress.note(`  loaded ${plan.img.name} into podman${plan.indexNotKept ? ` (as its platform manifest ${plan.manifest.digest}: ${plan.indexNotKept})` : ''}`)
  }

  /** Load every image; if one fails, those loaded before it are undone (undo-load.ts). */
  async commit(): Promise<void> {
    try {
      for (const plan of this.plans) await this.loadOne(plan)
    } catch (error) {
      await this.loader?.kill(error).catch(() => {})
      await undoLoad(this.store, this.before, this.ctx.progress)
      throw error
    } finally {
      await this.cleanup()
    }
  }

  async abort(error: unknown): Promise<void> {
    try {
      await this.loader?.kill(error)
    } finally {
      await this.cleanup()
    }
  }

  private async cleanup(): Promise<void> {
    if (this.dir) await rm(this.dir, {recursive: true, force: true}).catch(() => {})
    this.dir = undefined
  }

  async confirm(): Promise<InstalledImage[]> {
    const out: InstalledImage[] = []
    for (const plan of this.plans) {
      const config = plan.manifest.config
      // The name (which proves the tag) and REPO@DIGEST for every digest podman must keep.
      const refs = podmanLookups(plan)
      let ids: string[]
      try {
        ids = (await run(this.bin, ['image', 'inspect', '--format', '{{.Id}}', ...refs], {code: 'install.confirm_failed', tool: 'podman', what: `podman: ${plan.img.name} is not in podman's image store as ${refs.join(', ')} after loading`})).trim().split('\n')
      } catch (error) {
        throw new AirlockError('install.confirm_failed', (error as Error).message + (this.loaded ? ` (podman said: ${this.loaded.trim().slice(0, 500)})` : ''), {cause: error})
      }
      const wrong = refs.findIndex((_, i) => `sha256:${ids[i]?.trim()}` !== config)
      if (wrong !== -1) {
        throw new AirlockError('install.confirm_failed', `podman: ${refs[wrong]} has image ID ${ids[wrong] ?? 'none'}, expected ${config.slice(7)} (the signed config of ${plan.img.name})`)
      }
      out.push({name: plan.img.name, digest: plan.img.digest, confirmed: config})
    }
    return out
  }
}

export async function podmanDestination(ctx: DestinationContext & PodmanOptions): Promise<Destination> {
  const bin = ctx.podman ?? 'podman'
  const loads = new PodmanLoads(ctx, bin, await podmanPlatform(bin))
  // A plain object: wrappers (differential installs) copy a destination with `...dest`.
  return {
    kind: 'podman',
    leftOut: () => loads.leftOut,
    begin: (head) => loads.begin(head),
    blob: (digest, size, data) => loads.blob(digest, size, data),
    commit: () => loads.commit(),
    abort: (error) => loads.abort(error),
    confirm: () => loads.confirm(),
  }
}
