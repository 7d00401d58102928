import {stat} from 'node:fs/promises'
import path from 'node:path'

import type * as openpgp from 'openpgp'

import {InputError} from '../core/errors.js'
import {Progress, silentProgress} from '../core/progress.js'
import {BlobCache} from '../copy/cache.js'
import {Sources} from '../resolve/sources.js'
import {findSigningKey} from '../sign/find.js'
import {loadBundleSpec} from '../spec/load.js'
import type {BundleSpec} from '../spec/types.js'
import type {CreateOptions} from './options.js'

/** What one `create` works with, fixed before anything is resolved. */
export interface CreateRun {
  opts: CreateOptions
  progress: Progress
  spec: BundleSpec
  /** Undefined for an --unsigned bundle. */
  signingKey?: openpgp.PrivateKey
  /** Absolute path of the archive (or the name its parts derive from). */
  output: string
  /** The blob cache, when one was asked for (it is opt-in). */
  cache?: BlobCache
  /** The registries (with their clients, retries and the configs fetched so far). */
  sources: Sources
}

/** Read bundle.yaml, find the signing key, check the output directory, open the cache. */
export async function startRun(opts: CreateOptions): Promise<CreateRun> {
  const progress = opts.progress ?? silentProgress
  const spec = await loadBundleSpec(opts.specFile)
  let signingKey: openpgp.PrivateKey | undefined
  if (!opts.unsigned) {
    signingKey = await findSigningKey({...opts.signing, path: opts.signKey ?? spec.signing?.key, fingerprint: opts.signKey ? undefined : spec.signing?.fingerprint})
    if (!signingKey) {
      throw new InputError('sign.no_key', 'no signing key: pass --sign-key FILE (or set signing.key in bundle.yaml), or --unsigned to create an UNSIGNED bundle')
    }
  }

  const output = path.resolve(opts.output ?? `${spec.metadata.name}-${spec.metadata.version}.tar`)
  try {
    if ((await stat(path.dirname(output))).isDirectory() === false) throw new Error('not a dir')
  } catch {
    throw new InputError('create.output_dir', `output directory does not exist: ${path.dirname(output)}`)
  }

  // Without a cache every pulled blob is written once, straight into the archive.
  const cache = opts.cacheDir ? new BlobCache(opts.cacheDir) : undefined
  // Leftovers of a killed run: cache temp files of dead processes.
  await cache?.cleanStale()
  const sources = new Sources({
    registries: spec.registries, cache, registryConfig: opts.registryConfig,
    retries: opts.retries, retryBaseDelayMs: opts.retryBaseDelayMs,
    onRetry: (i) => progress.note(`retrying ${i.host} (attempt ${i.attempt}): ${i.reason}`),
  })
  return {opts, progress, spec, ...(signingKey ? {signingKey} : {}), output, ...(cache ? {cache} : {}), sources}
}
