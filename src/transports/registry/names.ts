/**
 * What the registry client accepts as repository names, tags and digests (checked before any
 * request, so a bad name is an InputError, never a URL), and the token scopes a request needs.
 */
import {InputError} from '../../core/errors.js'
import {DIGEST_RE} from '../../core/model.js'

const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/
const TAG_RE = /^\w[\w.-]{0,127}$/

export function pullScope(repo: string): string {
  return `repository:${repo}:pull`
}

export function pushScope(repo: string): string {
  return `repository:${repo}:pull,push`
}

export function checkRepo(repo: string): void {
  if (!REPO_RE.test(repo) || repo.length > 255) throw new InputError('registry.invalid_repository', `invalid repository name: ${JSON.stringify(repo)}`)
}

export function checkDigest(d: string): void {
  if (!DIGEST_RE.test(d)) throw new InputError('registry.invalid_digest', `invalid digest: ${JSON.stringify(d)}`)
}

/** Validate a tag or digest; true when it is a digest. */
export function checkReference(ref: string): boolean {
  if (DIGEST_RE.test(ref)) return true
  if (TAG_RE.test(ref)) return false
  throw new InputError('registry.invalid_reference', `invalid tag or digest: ${JSON.stringify(ref)}`)
}

export function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new InputError('registry.invalid_size', `invalid blob size ${size}`)
}

/** "host/repo:tag" or "host/repo@sha256:…", as messages name a manifest. */
export function refString(host: string, repo: string, reference: string): string {
  return `${host}/${repo}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`
}
