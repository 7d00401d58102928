import {statSync} from 'node:fs'

import {HashJobs, hashThreads, Range} from '../../blob/hash-pool.js'
import {MultiFile, STDIN} from '../../blob/multi-file.js'
import {BLOB_NAME_RE} from './metadata.js'
import {BLOCK, paddingFor, parseHeader} from './tar.js'

/**
 * Plain verify starts hashing before the signature is checked, on byte ranges found by walking
 * the (not yet trusted) tar headers: the threads only compute sha256 of byte ranges, and the
 * reader uses a result only for a range that the verified metadata puts exactly there.
 */

/** Hashing started ahead of readArchive (by the command, while the keys and the CLI load). */
export interface EarlyHashing {
  parts: string[]
  files: MultiFile
  jobs: HashJobs
}

/** Most entries the speculative walk looks at (a hostile archive could be all headers). */
const MAX_WALK = 1 << 16

/** Data ranges of the `blobs/sha256/…` entries, following the tar headers from `start` while they make sense. */
export function walkBlobRanges(files: MultiFile, start: number): Range[] {
  const out: Range[] = []
  const block = Buffer.alloc(BLOCK)
  let pos = start
  for (let i = 0; i < MAX_WALK; i++) {
    if (pos + BLOCK > files.total) break
    try {
      if (files.readSync(block, 0, BLOCK, pos) !== BLOCK) break
      const h = parseHeader(block, i + 1)
      const end = pos + BLOCK + h.size + paddingFor(h.size)
      if (end > files.total) break
      if (BLOB_NAME_RE.test(h.name) && h.size > 0) out.push({offset: pos + BLOCK, size: h.size})
      pos = end
    } catch {
      break // a zero block, a bad header, an I/O error: the walk ends here
    }
  }
  return out
}

/** Start hashing, on `workers` threads, every blob entry the tar headers from `start` describe. */
export function speculate(files: MultiFile, start: number, workers: number): HashJobs | undefined {
  if (workers <= 0) return undefined
  const ranges = walkBlobRanges(files, start)
  if (ranges.length === 0) return undefined
  try {
    return HashJobs.start(files, ranges, workers)
  } catch {
    return undefined
  }
}

/**
 * Start hashing the blobs of the single-file archive `archive` on the other cores, if there are
 * any. Globs and split parts (NAME.000) are resolved by the command itself, and a pipe or a
 * device (standard input too) is read front to back: nothing is started for them. Never throws: whatever went wrong
 * here, the command finds and reports it.
 */
export function startEarlyHashing(archive: string, threads?: number): EarlyHashing | undefined {
  try {
    const workers = hashThreads(threads) - 1
    if (workers <= 0 || archive === STDIN || /[*?]/.test(archive) || /\.\d{3}$/.test(archive)) return undefined
    if (!statSync(archive).isFile()) return undefined
    const files = MultiFile.openSync([archive])
    const jobs = speculate(files, 0, workers)
    if (jobs) return {parts: [archive], files, jobs}
    void files.close()
  } catch {
    // reported by the command
  }
  return undefined
}

/** `early` if it was started on exactly these parts; otherwise it is stopped and closed. */
export function takeOver(early: EarlyHashing | undefined, parts: string[]): EarlyHashing | undefined {
  if (!early) return undefined
  if (early.parts.length === parts.length && early.parts.every((p, i) => p === parts[i])) return early
  void early.jobs.close().finally(() => early.files.close())
  return undefined
}
