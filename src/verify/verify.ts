import {loadTrustedKeys} from '../sign/keys.js'
import {resolveArchiveParts} from '../transports/archive/parts.js'
import {readArchive, ArchiveSink, EarlyHashing, VerifyReport} from '../transports/archive/reader.js'
import {loadCosignKeys, UpstreamSink, type UpstreamCheck} from './upstream.js'

/** Hashing started by the command before the keys and the archive's metadata are read (the fast path). */
export {startEarlyHashing} from '../transports/archive/speculate.js'

export type VerifyResult = VerifyReport & {
  /** --cosign-key: the upstream signature that verified, per image. */
  upstream?: UpstreamCheck[]
}

export interface VerifyOptions {
  archive: string
  keys: string[]
  allowUnsigned?: boolean
  now?: Date
  sink?: ArchiveSink
  /** Hashing threads, the main one included (--hash-threads / AIRLOCK_HASH_THREADS). */
  hashThreads?: number
  /** Hashing the command already started on the archive (see startEarlyHashing): taken over or stopped. */
  early?: EarlyHashing
  /** At least this many distinct trusted keys must have signed (default 1). */
  threshold?: number
  /** Cosign public keys (PEM): every image must carry an upstream signature by one of them. */
  cosignKeys?: string[]
  /** Warnings about the keys given (a secret key given as a trusted key); default: stderr. */
  warn?: (message: string) => void
}

/** `airlock verify`: one streaming pass, nothing written anywhere. */
export async function verifyArchive(opts: VerifyOptions): Promise<VerifyResult> {
  // The keys load (openpgp.js with them) while the archive is opened and its blobs start being
  // hashed; a problem with the keys is still the one reported first.
  const trustedKeys = loadTrustedKeys(opts.keys, {warn: opts.warn ?? warnOnStderr})
  trustedKeys.catch(() => {})
  let parts: string[]
  try {
    parts = await resolveArchiveParts(opts.archive)
  } catch (error) {
    if (opts.early) await opts.early.jobs.close().finally(() => opts.early!.files.close())
    await trustedKeys
    throw error
  }
  const cosign = opts.cosignKeys?.length ? new UpstreamSink(await loadCosignKeys(opts.cosignKeys)) : undefined
  const sink = cosign ?? opts.sink
  const {head: _head, ...report} = await readArchive(parts, {trustedKeys, allowUnsigned: opts.allowUnsigned, now: opts.now, sink, early: opts.early, hashThreads: opts.hashThreads, threshold: opts.threshold})
  return cosign ? {...report, upstream: cosign.checks} : report
}

/** Warnings go to stderr, so that stdout (the result, or --json) stays clean. */
export function warnOnStderr(message: string): void {
  process.stderr.write(`${message}\n`)
}

/** What `airlock verify` prints without --json (also from the fast path, src/cli/fast.ts). */
export function verifyLines(result: VerifyResult): string[] {
  return [
    `OK ${result.archive}: ${result.bundle.name} ${result.bundle.version}, ${result.images.length} images, ${result.blobs} blobs, ${result.entries} entries verified`,
    ...(result.signer ? (result.signers ?? [result.signer]).map((s) => `  signed by ${s.fingerprint}${s.userId ? ` (${s.userId})` : ''} on ${s.signed}`) : ['  UNSIGNED (accepted with --allow-unsigned)']),
    ...result.images.map((img) => `  ${img.name}  ${img.digest}  ${img.platforms.length > 0 ? `[${img.platforms.join(', ')}]` : 'no runnable image'}`),
    ...(result.upstream ?? []).map((u) => `  upstream signature of ${u.name}: ${u.signature} by cosign key ${u.keyFingerprint}`),
  ]
}
