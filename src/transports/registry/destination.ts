import {AirlockError} from '../../core/errors.js'
import type {Destination, DestinationContext} from '../../install/types.js'
import {parseReference, Reference} from '../../spec/reference.js'
import {RegistryClient} from './client.js'
import {resolveCredentials} from './credentials.js'
import {RegistryPush} from './push.js'

export interface RegistryTarget {
  host: string
  prefix: string
}

/** `registry://HOST[:PORT][/PREFIX]` */
export function parseRegistryTarget(s: string): RegistryTarget {
  const rest = s.replace(/^registry:\/\//, '')
  const slash = rest.indexOf('/')
  const host = slash === -1 ? rest : rest.slice(0, slash)
  const prefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/+$/, '')
  if (!/^[a-zA-Z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/.test(host)) {
    throw new AirlockError('install.bad_target', `invalid registry target ${JSON.stringify(s)}: expected registry://HOST[:PORT][/PREFIX]`, {exitCode: 2})
  }
  if (prefix && !/^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$/.test(prefix)) {
    throw new AirlockError('install.bad_target', `invalid repository prefix ${JSON.stringify(prefix)} in ${s}`, {exitCode: 2})
  }
  return {host, prefix}
}

/** Where an image lands: its repository path under PREFIX on HOST, same tag (or digest). */
export function targetReference(name: string, t: RegistryTarget): Reference {
  const r = parseReference(name)
  return {registry: t.host, repository: t.prefix ? `${t.prefix}/${r.repository}` : r.repository, ...(r.tag ? {tag: r.tag} : {}), ...(r.tag ? {} : {digest: r.digest})}
}

/**
 * `registry://…`: push. A verified blob is uploaded from the archive itself, read again by
 * offset and hashed again on the way (so an upload can be retried, and nothing is copied to
 * disk); a blob that is not in a file of the archive (from a --base archive) is spooled to a
 * private temp file as it is verified. Uploads run concurrently (HEAD first, cross-repo mount for
 * blobs shared between repositories). Manifests and tags are pushed only in commit(), after the whole
 * archive verified: platform manifests by digest, then indexes, then tags last.
 */
export async function registryDestination(ctx: DestinationContext & {target: string; insecure?: boolean; caFile?: string; registryConfig?: string; jobs?: number; retries?: number; retryBaseDelayMs?: number}): Promise<Destination> {
  const t = parseRegistryTarget(ctx.target)
  const client = new RegistryClient({
    host: t.host,
    insecure: ctx.insecure,
    caFile: ctx.caFile,
    credentials: () => resolveCredentials(t.host, {registryConfig: ctx.registryConfig}),
    ...(ctx.retries === undefined ? {} : {retries: ctx.retries}),
    ...(ctx.retryBaseDelayMs === undefined ? {} : {retryBaseDelayMs: ctx.retryBaseDelayMs}),
    onRetry: (i) => ctx.progress.note(`retrying ${t.host} (attempt ${i.attempt}): ${i.reason}`),
  })
  const push = new RegistryPush(client, {
    selected: ctx.selected,
    progress: ctx.progress,
    parts: ctx.parts,
    jobs: ctx.jobs,
    host: t.host,
    prefix: t.prefix,
    referenceOf: (name) => targetReference(name, t),
  })
  // A plain object: wrappers (differential installs) copy a destination with `...dest`.
  return {
    kind: 'registry',
    begin: (h) => push.begin(h),
    blob: (digest, size, data) => push.blob(digest, size, data),
    commit: () => push.commit(),
    abort: (error) => push.abort(error),
    missing: (digests) => push.missing(digests),
    confirm: () => push.confirm(),
  }
}
