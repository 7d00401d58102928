/**
 * `--to podman`: `podman load` fed the verified tar on stdin.
 *
 * podman copies its stdin to a temporary file and loads from that file only once stdin has ended,
 * so ending stdin (commit) is the moment anything can become visible; abort() SIGKILLs podman
 * before its stdin ends, and nothing is loaded. The temporary file goes to a private directory
 * (TMPDIR for the podman process) that is removed afterwards, also after a kill.
 *
 * Which format podman 4.x picks: it tries oci-archive first, which only works for an archive of
 * exactly one image (an OCI layout with several manifests and no image name is refused), and
 * then docker-archive. So a bundle of one image is loaded as oci-archive and named from the
 * `org.opencontainers.image.ref.name` annotation (the full reference); several images are loaded
 * as docker-archive and named from manifest.json's RepoTags (the full references). Either way the
 * resulting names are the full references of airlock.json.
 *
 * Configuration comes from the environment as for podman itself (CONTAINERS_STORAGE_CONF,
 * CONTAINERS_CONF, CONTAINERS_REGISTRIES_CONF, XDG_*). No secret is passed in argv.
 */
import {mkdtemp, rm} from 'node:fs/promises'
import path from 'node:path'

import {AirlockError} from '../../core/errors.js'
import type {Destination, DestinationContext, InstalledImage} from '../types.js'
import type {VerifiedHead} from '../archive/reader.js'
import {dockerRepoTags, ImageRecord} from '../archive/metadata.js'
import {ProcessLoader, run} from '../process-loader.js'
import {type ImageStore, recordNames, type RecordedName, undoLoad} from '../undo-load.js'

export interface PodmanOptions {
  /** podman executable (default `podman` on PATH; the install command passes AIRLOCK_PODMAN). */
  podman?: string
  /** Directory for podman's temporary copy of the archive (default $TMPDIR or /var/tmp). */
  tmpDir?: string
}

const CODE = 'install.podman_failed'

/** Config digests an image may legitimately have in podman: the docker manifest's first, then the others. */
function configsOf(img: ImageRecord): string[] {
  const first = img.manifests.find((m) => m.digest === img.dockerManifest)?.config
  return [...new Set([first, ...img.manifests.map((m) => m.config)].filter((d): d is string => Boolean(d)))]
}

/** How an image is found in podman: its tag, or for a digest-only name its image ID. */
function lookupOf(img: ImageRecord): string {
  return dockerRepoTags(img.name)[0] ?? configsOf(img)[0].slice(7)
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

export async function podmanDestination(ctx: DestinationContext & PodmanOptions): Promise<Destination> {
  const bin = ctx.podman ?? 'podman'
  // Fail before the archive is read when podman is missing or its storage is unusable.
  await run(bin, ['version', '--format', '{{.Client.Version}}'], {code: CODE, tool: 'podman', what: 'podman is not usable'})

  let images: ImageRecord[] = []
  let loader: ProcessLoader | undefined
  let tmp: string | undefined
  let loaded = ''
  const store = podmanStore(bin)
  let before: RecordedName[] = []

  const cleanup = async () => {
    if (tmp) await rm(tmp, {recursive: true, force: true}).catch(() => {})
    tmp = undefined
  }

  return {
    kind: 'podman',
    async begin(head: VerifiedHead) {
      images = ctx.selected(head)
      before = await recordNames(store, images, lookupOf)
      const base = ctx.tmpDir ?? process.env.TMPDIR ?? '/var/tmp'
      tmp = await mkdtemp(path.join(base, 'airlock-podman-'))
      loader = new ProcessLoader({
        tool: 'podman', bin, args: ['load', '--quiet'], env: {...process.env, TMPDIR: tmp},
        code: CODE, what: `podman load of ${images.map((i) => i.name).join(', ')}`,
      })
      loader.start()
      await loader.guard(() => loader!.tar.begin(head, images))
    },
    async blob(digest, size, data) {
      if (!loader?.tar.wants(digest)) return
      await loader.guard(() => loader!.tar.blob(digest, size, data))
      ctx.progress.advance(size)
    },
    async commit() {
      try {
        const r = await loader!.finish()
        loaded = r.stdout
      } catch (error) {
        await undoLoad(store, before, ctx.progress)
        throw error
      } finally {
        await cleanup()
      }
      for (const img of images) ctx.progress.note(`  loaded ${img.name} into podman`)
    },
    async abort(error: unknown) {
      try {
        await loader?.kill(error)
      } finally {
        await cleanup()
      }
    },
    async confirm(): Promise<InstalledImage[]> {
      const out: InstalledImage[] = []
      for (const img of images) {
        const tags = dockerRepoTags(img.name)
        const configs = configsOf(img)
        // A tagged image is looked up by its name (which proves the tag); a digest-only one by ID.
        const lookup = tags[0] ?? configs[0].slice(7)
        let id: string
        try {
          id = (await run(bin, ['image', 'inspect', '--format', '{{.Id}}', lookup], {code: 'install.confirm_failed', tool: 'podman', what: `podman: ${img.name} is not in podman's image store after loading`})).trim()
        } catch (error) {
          throw new AirlockError('install.confirm_failed', (error as Error).message + (loaded ? ` (podman said: ${loaded.trim().slice(0, 500)})` : ''), {cause: error})
        }
        const hit = configs.find((c) => c.slice(7) === id)
        if (!hit) {
          throw new AirlockError('install.confirm_failed', `podman: ${lookup} has image ID ${id}, expected ${configs.map((c) => c.slice(7)).join(' or ')} (the signed config of ${img.name})`)
        }
        out.push({name: img.name, digest: img.digest, confirmed: `sha256:${id}`})
      }
      return out
    },
  }
}
