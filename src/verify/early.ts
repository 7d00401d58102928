import {statSync} from 'node:fs'

import {HashJobs, hashThreads, PartFiles} from '../transports/archive/hash-pool.js'

/**
 * `airlock verify ARCHIVE`: bin/run.js calls startEarly() before it loads the CLI framework, so
 * that the other cores start hashing the archive's blobs some 0.1–0.2 s earlier. This is pure
 * speculation: it opens the file, walks its (untrusted) tar headers and computes the sha256 of
 * byte ranges; it shows nothing and decides nothing. readArchive takes it over only for exactly
 * the same list of parts, reads the archive through the descriptors opened here, and uses a
 * digest only where the verified metadata puts a blob at exactly that range.
 *
 * Only a single-file archive named plainly on the command line is started early (split
 * archives and globs are resolved by the command); with one core nothing is started.
 */

interface Early {
  parts: string[]
  files: PartFiles
  jobs: HashJobs
}

let early: Early | undefined

/** Start hashing the blobs of the single-file archive `archive` on the other cores, if there are any. */
export function startEarlyAt(archive: string): void {
  try {
    const workers = hashThreads() - 1
    // Globs and split parts (NAME.000) are resolved by the command itself.
    if (workers <= 0 || /[*?]/.test(archive) || /\.\d{3}$/.test(archive)) return
    if (!statSync(archive).isFile()) return // a pipe, a device: read front to back by the command
    const files = PartFiles.open([archive])
    const jobs = HashJobs.speculate(files, 0, workers)
    if (jobs) {
      early = {parts: [archive], files, jobs}
    } else {
      files.close()
    }
  } catch {
    // Whatever went wrong here, the command will find and report it.
  }
}

/** The early start for exactly these parts, if there is one (and it is handed over only once). */
export function takeEarly(parts: string[]): {files: PartFiles; jobs: HashJobs} | undefined {
  const e = early
  early = undefined
  if (!e) return undefined
  if (e.parts.length === parts.length && e.parts.every((p, i) => p === parts[i])) return {files: e.files, jobs: e.jobs}
  void e.jobs.close().finally(() => e.files.close())
  return undefined
}
