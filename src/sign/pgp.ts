import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import path from 'node:path'
import vm from 'node:vm'

import type * as OpenPGP from 'openpgp'

let loading: Promise<typeof OpenPGP> | undefined

/**
 * openpgp.js, loaded on first use: it is a large module and takes a good part of a command's
 * start-up, so commands that may not need it (and `verify`, which reads the archive meanwhile)
 * do not load it up front.
 */
export function pgp(): Promise<typeof OpenPGP> {
  loading ??= import('openpgp')
  return loading
}

/**
 * Make pgp() load openpgp.js's CommonJS build with the V8 code cache in `cacheFile` (made by
 * `npm run build`, scripts/pgp-code-cache.mjs): the 1.2 MB library is then not parsed and
 * compiled again, which saves some 20 ms of start-up (measured on a 2-core EPYC). Only for a
 * process that reaches openpgp.js through pgp() alone, like the fast `verify` path
 * (src/cli/fast.ts): its objects are not instances of the ES module build's classes. A missing
 * or stale cache (another node, other V8 flags) is simply not used (V8 checks it).
 */
export function usePgpCodeCache(cacheFile: string): void {
  if (loading) return
  const cachedData = readPgpCodeCache(cacheFile)
  if (cachedData) loading = Promise.resolve().then(() => loadCommonJs(cachedData).exports)
}

/**
 * The cache file is the sha256 of the V8 code cache, then the cache. V8 checks that a cache
 * belongs to this V8, its flags and this source, but it does not checksum the payload in
 * release builds, and a damaged payload can crash the process: a file whose sha256 does not
 * match is not used.
 */
export function readPgpCodeCache(cacheFile: string): Buffer | undefined {
  let file: Buffer
  try {
    file = readFileSync(cacheFile)
  } catch {
    return undefined
  }
  if (file.length <= 32) return undefined
  const payload = file.subarray(32)
  return createHash('sha256').update(payload).digest().equals(file.subarray(0, 32)) ? payload : undefined
}

export function encodePgpCodeCache(payload: Buffer): Buffer {
  return Buffer.concat([createHash('sha256').update(payload).digest(), payload])
}

/** openpgp.js's CommonJS build, compiled as node's CommonJS loader would (with `cachedData`, if given). */
export function loadCommonJs(cachedData?: Buffer): {exports: typeof OpenPGP; script: vm.Script} {
  const file = createRequire(import.meta.url).resolve('openpgp')
  const source = readFileSync(file, 'utf8')
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) { ${source}\n})`, {filename: file, ...(cachedData ? {cachedData} : {})})
  const module = {exports: {} as typeof OpenPGP}
  const fn = script.runInThisContext() as (e: unknown, r: NodeJS.Require, m: unknown, f: string, d: string) => void
  fn.call(module.exports, module.exports, createRequire(file), module, file, path.dirname(file))
  return {exports: module.exports, script}
}
