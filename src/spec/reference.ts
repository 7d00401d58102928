/**
 * Image references, parsed and normalised exactly like Docker's distribution/reference
 * (ParseNormalizedNamed + TagNameOnly): `nginx` → `docker.io/library/nginx:latest`.
 */
import {InputError} from '../core/errors.js'

export interface Reference {
  /** Registry host[:port], e.g. `docker.io`, `127.0.0.1:5000`. */
  registry: string
  /** Repository path without the registry, e.g. `library/nginx`. */
  repository: string
  /** Tag; `latest` is filled in when neither tag nor digest was given. */
  tag?: string
  /** `sha256:<64 lowercase hex>`. */
  digest?: string
}

export const DEFAULT_REGISTRY = 'docker.io'
const LEGACY_DEFAULT_REGISTRY = 'index.docker.io'
const OFFICIAL_REPO_PREFIX = 'library/'
const MAX_NAME_LENGTH = 255

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]'
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|${IPV6})`
const DOMAIN_RE = new RegExp(`^${HOST}(?::[0-9]+)?$`)
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$/
const TAG_RE = /^[\w][\w.-]{0,127}$/
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/
const ANY_DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/
const IDENTIFIER_RE = /^[a-f0-9]{64}$/

function bad(input: string, reason: string): InputError {
  return new InputError('reference.invalid', `invalid image reference "${input}": ${reason}`)
}

/** True when `s` is a valid registry host[:port] (as it may appear as the first path component). */
export function isValidRegistryHost(s: string): boolean {
  return DOMAIN_RE.test(s)
}

/** Normalise a registry host: `index.docker.io` → `docker.io`. */
export function normalizeRegistry(host: string): string {
  return host === LEGACY_DEFAULT_REGISTRY ? DEFAULT_REGISTRY : host
}

/**
 * Parse and normalise an image reference. Throws InputError('reference.invalid') with the reason.
 * Accepts `name`, `name:tag`, `name@sha256:<hex>`, `name:tag@sha256:<hex>`.
 */
export function parseReference(input: string): Reference {
  if (typeof input !== 'string') throw bad(String(input), 'not a string')
  const s = input
  if (s.length === 0) throw bad(s, 'reference is empty')
  if (/\s/.test(s)) throw bad(s, 'contains whitespace')
  if (IDENTIFIER_RE.test(s)) throw bad(s, 'a bare 64-character hex string is an image ID, not a repository name')

  let rest = s
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at !== -1) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (digest.includes('@')) throw bad(s, 'more than one "@"')
    if (!DIGEST_RE.test(digest)) {
      if (/^sha256:/i.test(digest)) throw bad(s, `digest "${digest}" must be sha256: followed by 64 lowercase hex digits`)
      if (ANY_DIGEST_RE.test(digest)) throw bad(s, `unsupported digest algorithm "${digest.split(':')[0]}" (only sha256 is supported)`)
      throw bad(s, `invalid digest "${digest}" (expected sha256:<64 hex digits>)`)
    }
  }

  let tag: string | undefined
  const lastSlash = rest.lastIndexOf('/')
  const colon = rest.indexOf(':', lastSlash + 1)
  if (colon !== -1) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (tag === '') throw bad(s, 'empty tag after ":"')
    if (!TAG_RE.test(tag)) throw bad(s, `invalid tag "${tag}" (allowed: letters, digits, "_", "." and "-", not starting with "." or "-", at most 128 characters)`)
  }

  if (rest === '') throw bad(s, 'missing repository name')
  if (rest.length > MAX_NAME_LENGTH) throw bad(s, `repository name is longer than ${MAX_NAME_LENGTH} characters`)

  // splitDockerDomain
  let registry: string
  let repository: string
  const slash = rest.indexOf('/')
  const first = slash === -1 ? '' : rest.slice(0, slash)
  if (slash === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    registry = DEFAULT_REGISTRY
    repository = rest
  } else {
    registry = first
    repository = rest.slice(slash + 1)
    if (!DOMAIN_RE.test(registry)) throw bad(s, `invalid registry host "${registry}"`)
  }
  registry = normalizeRegistry(registry)
  if (registry === DEFAULT_REGISTRY && !repository.includes('/')) repository = OFFICIAL_REPO_PREFIX + repository

  if (repository === '') throw bad(s, 'missing repository name after the registry')
  for (const comp of repository.split('/')) {
    if (comp === '') throw bad(s, 'empty path component (a "//" or a trailing "/")')
    if (!PATH_COMPONENT_RE.test(comp)) {
      if (PATH_COMPONENT_RE.test(comp.toLowerCase())) throw bad(s, 'repository name must be lowercase')
      throw bad(s, `invalid repository path component "${comp}" (allowed: lowercase letters and digits, separated by ".", "_", "__" or "-")`)
    }
  }
  if (tag === undefined && digest === undefined) tag = 'latest'
  const ref: Reference = {registry, repository}
  if (tag !== undefined) ref.tag = tag
  if (digest !== undefined) ref.digest = digest
  return ref
}

/** `registry/repository`, e.g. `docker.io/library/nginx`. */
export function repositoryName(r: Reference): string {
  return `${r.registry}/${r.repository}`
}

/** Full normalised string: `registry/repository[:tag][@digest]`. */
export function formatReference(r: Reference): string {
  return repositoryName(r) + (r.tag ? `:${r.tag}` : '') + (r.digest ? `@${r.digest}` : '')
}

/** Alias of formatReference(), for symmetry with familiarReference(). */
export const fullReference = formatReference

/** Docker's short ("familiar") form: `docker.io/library/nginx:latest` → `nginx:latest`. */
export function familiarReference(r: Reference): string {
  let name = repositoryName(r)
  if (r.registry === DEFAULT_REGISTRY) {
    name = r.repository.startsWith(OFFICIAL_REPO_PREFIX) && !r.repository.slice(OFFICIAL_REPO_PREFIX.length).includes('/')
      ? r.repository.slice(OFFICIAL_REPO_PREFIX.length)
      : r.repository
  }
  return name + (r.tag ? `:${r.tag}` : '') + (r.digest ? `@${r.digest}` : '')
}

/** The reference without its digest (tag kept); a digest-only reference is returned unchanged. */
export function withoutDigest(r: Reference): Reference {
  if (!r.digest || !r.tag) return {...r}
  return {registry: r.registry, repository: r.repository, tag: r.tag}
}

/** Normalise a reference string: parseReference + formatReference. */
export function normalizeReference(s: string): string {
  return formatReference(parseReference(s))
}
