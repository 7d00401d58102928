import type {Destination, DestinationContext} from '../types.js'
import {parseTarget, targetReference} from '../target.js'
import {RegistryClient} from './client.js'
import {resolveCredentials} from './credentials.js'
import {RegistryPush} from './push.js'

/**
 * `registry://…`: push. A verified blob is uploaded from the archive itself, read again by
 * offset and hashed again on the way (so an upload can be retried, and nothing is copied to
 * disk); a blob that is not in a file of the archive (from a --base archive) is spooled to a
 * private temp file as it is verified. Uploads run concurrently (HEAD first, cross-repo mount for
 * blobs shared between repositories). Manifests and tags are pushed only in commit(), after the whole
 * archive verified: platform manifests by digest, then indexes, then tags last.
 */
export async function registryDestination(ctx: DestinationContext & {target: string; insecure?: boolean; caFile?: string; registryConfig?: string; jobs?: number; retries?: number; retryBaseDelayMs?: number}): Promise<Destination> {
  const t = parseTarget(ctx.target, 'registry')
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
