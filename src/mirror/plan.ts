/**
 * Which upstream registry hosts a bundle's images come from, and where `install --to
 * registry://HOST/PREFIX` put each of them: the one mapping every runtime's mirror configuration
 * is written from (src/mirror/formats/*).
 */
import {InputError} from '../core/errors.js'
import {formatReference, parseReference} from '../spec/reference.js'
import type {ImageRecord} from '../transports/archive/metadata.js'
import {registryEndpoint} from '../transports/registry/transport/origin.js'
import {parseTarget, RegistryTarget, targetReference} from '../transports/target.js'

/** The registry the images were installed into. */
export interface MirrorRegistry extends RegistryTarget {
  scheme: 'http' | 'https'
  /** `scheme://host[:port]`, as install reaches it. */
  origin: string
  /** What --registry named, as `install --to` takes it: `registry://HOST[:PORT][/PREFIX]`. */
  target: string
}

/** One image: its original name, and the name install gave it on the mirror. */
export interface MirroredImage {
  name: string
  mirror: string
}

/** Every image of one upstream host (`docker.io`, `ghcr.io`, `127.0.0.1:5301`…). */
export interface UpstreamHost {
  host: string
  images: MirroredImage[]
}

export interface MirrorPlan {
  registry: MirrorRegistry
  upstreams: UpstreamHost[]
  /** Things the person installing the configuration must know (name clashes, skipped hosts). */
  notes: string[]
}

/** `--registry HOST[:PORT][/PREFIX]` (or `registry://…`, as given to install), read exactly as install reads its target. */
export function parseMirrorRegistry(value: string, opts: {insecure?: boolean} = {}): MirrorRegistry {
  const target = value.startsWith('registry://') ? value : `registry://${value}`
  if (/^[a-z]+:\/\//i.test(value) && !value.startsWith('registry://')) {
    throw new InputError('mirror.bad_registry', `--registry ${JSON.stringify(value)}: give HOST[:PORT][/PREFIX] as for install --to registry://… (plain HTTP: --insecure)`)
  }
  const t = parseTarget(target, 'registry')
  const {scheme, origin} = registryEndpoint(t.host, opts.insecure)
  return {...t, scheme, origin, target: `registry://${t.host}${t.prefix ? `/${t.prefix}` : ''}`}
}

/** The upstream hosts of `images` (by their names on the target, as install names them), sorted. */
export function planMirror(images: ImageRecord[], registry: MirrorRegistry): MirrorPlan {
  const byHost = new Map<string, MirroredImage[]>()
  const notes: string[] = []
  const placed = new Map<string, {name: string; digest: string}>()
  for (const img of images) {
    const host = parseReference(img.name).registry
    const mirror = formatReference(targetReference(img.name, registry))
    const clash = placed.get(mirror)
    if (clash && clash.digest !== img.digest) notes.push(`${clash.name} and ${img.name} both land at ${mirror} on the mirror (install drops the registry host): only one of them can be pulled through it`)
    placed.set(mirror, {name: img.name, digest: img.digest})
    if (host === registry.host && !registry.prefix) continue // already pulled from the mirror itself
    byHost.set(host, [...(byHost.get(host) ?? []), {name: img.name, mirror}])
  }
  if (byHost.has(registry.host)) {
    notes.push(`images named after the mirror host ${registry.host} itself are redirected under /${registry.prefix}: every other pull from ${registry.host} is too`)
  }
  const upstreams = [...byHost].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([host, imgs]) => ({host, images: imgs}))
  return {registry, upstreams, notes}
}

/** The repository path every image of an upstream host gets on the mirror: `PREFIX/` (or nothing) before its own. */
export function mirrorPath(registry: RegistryTarget): string {
  return registry.prefix ? `${registry.prefix}/` : ''
}
