/**
 * The `--to` of `airlock install`, parsed once: which transport, and its place.
 *
 *   docker | podman | containerd | registry://HOST[:PORT][/PREFIX] | oci:DIR | dir:PATH
 */
import {InputError} from '../core/errors.js'
import {parseReference, Reference} from '../spec/reference.js'

export interface RegistryTarget {
  kind: 'registry'
  host: string
  /** Repository path the images are pushed under ('' for none). */
  prefix: string
}

export interface OciTarget {
  kind: 'oci'
  /** The layout directory, as given (relative to the working directory). */
  dir: string
}

/** Plain files: the bundle's `files:` and charts (as a Helm chart repository). */
export interface DirTarget {
  kind: 'dir'
  dir: string
}

export type Target = {kind: 'docker'} | {kind: 'podman'} | {kind: 'containerd'} | RegistryTarget | OciTarget | DirTarget

export type TargetKind = Target['kind']

const HOST = /^[a-zA-Z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/
const REPOSITORY_PATH = /^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$/

function registryTarget(to: string): RegistryTarget {
  const rest = to.slice('registry://'.length)
  const slash = rest.indexOf('/')
  const host = slash === -1 ? rest : rest.slice(0, slash)
  const prefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/+$/, '')
  if (!HOST.test(host)) {
    throw new InputError('install.bad_target', `invalid registry target ${JSON.stringify(to)}: expected registry://HOST[:PORT][/PREFIX]`)
  }
  if (prefix && !REPOSITORY_PATH.test(prefix)) {
    throw new InputError('install.bad_target', `invalid repository prefix ${JSON.stringify(prefix)} in ${to}`)
  }
  return {kind: 'registry', host, prefix}
}

/**
 * The target named by `to`; InputError `install.bad_target` (exit 2) for anything else. With
 * `kind`, the target must be of that kind (a transport given its own target string).
 */
export function parseTarget(to: string): Target
export function parseTarget<K extends TargetKind>(to: string, kind: K): Extract<Target, {kind: K}>
export function parseTarget(to: string, kind?: TargetKind): Target {
  const target = parseAny(to)
  if (kind !== undefined && target.kind !== kind) throw new InputError('install.bad_target', `${JSON.stringify(to)} is not a ${kind} target`)
  return target
}

function parseAny(to: string): Target {
  if (to === 'docker' || to === 'podman' || to === 'containerd') return {kind: to}
  if (to.startsWith('registry://')) return registryTarget(to)
  if (to.startsWith('oci:') && to.length > 4) return {kind: 'oci', dir: to.slice(4)}
  if (to.startsWith('dir:') && to.length > 4) return {kind: 'dir', dir: to.slice(4)}
  throw new InputError('install.bad_target', `unknown target ${JSON.stringify(to)}: use docker, podman, containerd, registry://HOST[:PORT][/PREFIX], oci:DIR or dir:PATH`)
}

/** Where an image lands on a registry target: its repository path under PREFIX on HOST, same tag (or digest). */
export function targetReference(name: string, t: RegistryTarget): Reference {
  const r = parseReference(name)
  return {registry: t.host, repository: t.prefix ? `${t.prefix}/${r.repository}` : r.repository, ...(r.tag ? {tag: r.tag} : {}), ...(r.tag ? {} : {digest: r.digest})}
}
