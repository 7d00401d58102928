/**
 * `--to containerd`: `ctr images import --all-platforms --no-unpack -` fed the verified tar on stdin.
 *
 * ctr names each image from the `io.containerd.image.name` annotation of index.json, which airlock
 * sets to the FULL reference (no --base-name / --index-name / --digests: exactly one image record
 * per bundle image). ctr writes blobs into containerd's content store as they stream in, but image
 * records are created only after the end of the tar, i.e. after commit(). abort() SIGKILLs ctr
 * before its stdin ends, so no image or tag is created; blobs already streamed stay as
 * unreferenced content under ctr's own 24 h lease and are then garbage-collected by containerd.
 *
 * Images are not unpacked by default (no snapshotter needed; `ctr run` and the CRI unpack on first
 * use); pass `unpack: true` (and optionally `snapshotter`) to unpack at install time.
 * The socket comes from `address` (the install command passes CONTAINERD_ADDRESS), else ctr's
 * default (ctr itself also reads CONTAINERD_ADDRESS).
 */
import {stat} from 'node:fs/promises'

import {AirlockError} from '../../core/errors.js'
import type {Destination, DestinationContext, InstalledImage} from '../types.js'
import type {VerifiedHead} from '../archive/reader.js'
import type {ImageRecord} from '../archive/metadata.js'
import {ProcessLoader, run} from '../process-loader.js'

export interface ContainerdOptions {
  /** containerd namespace (default "default"; the install command passes --namespace / CONTAINERD_NAMESPACE). */
  namespace?: string
  /** containerd socket (default: ctr's, /run/containerd/containerd.sock or its own $CONTAINERD_ADDRESS). */
  address?: string
  /** ctr executable (default `ctr` on PATH; the install command passes AIRLOCK_CTR). */
  ctr?: string
  /** Unpack into a snapshotter at install time (default false). */
  unpack?: boolean
  snapshotter?: string
}

const CODE = 'install.containerd_failed'

/** `ctr images ls` → name → target digest. */
export function parseImageList(out: string): Map<string, string> {
  const m = new Map<string, string>()
  for (const line of out.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/)
    if (cols.length >= 3 && /^sha256:[a-f0-9]{64}$/.test(cols[2])) m.set(cols[0], cols[2])
  }
  return m
}

export async function containerdDestination(ctx: DestinationContext & ContainerdOptions): Promise<Destination> {
  const bin = ctx.ctr ?? 'ctr'
  const namespace = ctx.namespace ?? 'default'
  const address = ctx.address
  const global = [...(address ? ['--address', address] : []), '--namespace', namespace]
  const where = `containerd${address ? ` at ${address}` : ''} (namespace ${namespace})`
  // Fail before the archive is read when containerd is not reachable (`ctr version` asks the daemon).
  const socketPath = address?.replace(/^unix:\/\//, '')
  if (socketPath?.startsWith('/')) {
    const st = await stat(socketPath).catch(() => undefined)
    if (!st?.isSocket()) throw new AirlockError(CODE, `${where} is not reachable: ${socketPath} ${st ? 'is not a socket' : 'does not exist'}`)
  }
  await run(bin, [...global, 'version'], {code: CODE, tool: 'ctr', what: `${where} is not reachable`, timeoutMs: 30_000})

  let images: ImageRecord[] = []
  let loader: ProcessLoader | undefined

  return {
    kind: 'containerd',
    async begin(head: VerifiedHead) {
      images = ctx.selected(head)
      const args = [...global, 'images', 'import', '--all-platforms']
      if (ctx.unpack) {
        if (ctx.snapshotter) args.push('--snapshotter', ctx.snapshotter)
      } else {
        args.push('--no-unpack')
      }
      args.push('-')
      loader = new ProcessLoader({tool: 'ctr', bin, args, code: CODE, what: `importing ${images.map((i) => i.name).join(', ')} into ${where}`})
      loader.start()
      // manifest.json is not needed by ctr (it reads the OCI layout), so it is left out.
      await loader.guard(() => loader!.tar.begin(head, images, {dockerManifest: false}))
    },
    async blob(digest, size, data) {
      if (!loader?.tar.wants(digest)) return
      await loader.guard(() => loader!.tar.blob(digest, size, data))
      ctx.progress.advance(size)
    },
    async commit() {
      await loader!.finish()
      for (const img of images) ctx.progress.note(`  imported ${img.name} into ${where}`)
    },
    async abort(error: unknown) {
      await loader?.kill(error)
    },
    async missing(digests: string[]): Promise<string[]> {
      const have = new Set((await run(bin, [...global, 'content', 'ls', '-q'], {code: CODE, tool: 'ctr', what: `cannot list content in ${where}`})).split('\n').map((l) => l.trim()))
      return digests.filter((d) => !have.has(d))
    },
    async confirm(): Promise<InstalledImage[]> {
      const list = parseImageList(await run(bin, [...global, 'images', 'ls'], {code: 'install.confirm_failed', tool: 'ctr', what: `cannot list images in ${where}`}))
      return images.map((img) => {
        const got = list.get(img.name)
        if (got !== img.digest) {
          throw new AirlockError('install.confirm_failed', `${where}: ${img.name} is ${got ?? 'missing'}, expected the signed ${img.digest}`)
        }
        return {name: img.name, digest: img.digest, confirmed: got}
      })
    },
  }
}
