import {constants} from 'node:fs'
import {open, rename, rm, stat} from 'node:fs/promises'
import type {FileHandle} from 'node:fs/promises'
import path from 'node:path'

import {processUniqueName} from './process.js'

/** The temporary files of writeFileAtomic: `.NAME.PID.RANDOM.airlock-partial` (group 2 is the pid). */
export const TEMP_NAME = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.airlock-partial$/

/** True when something exists at `p` (any kind of file). */
export async function pathExists(p: string): Promise<boolean> {
  try {
    await stat(p)
    return true
  } catch {
    return false
  }
}

/** A temporary name beside `final` that no other process (or earlier run) uses. */
export function tempNameFor(final: string): string {
  return path.join(path.dirname(final), `${processUniqueName(`.${path.basename(final)}`)}.airlock-partial`)
}

/**
 * Write `data` (bytes, or chunks as they arrive) to a fresh temporary file (O_EXCL: never an
 * existing file or a planted link), fsync it, and rename it over `final` (rename replaces a link
 * there instead of writing through it). On failure nothing is left behind.
 */
export async function writeFileAtomic(final: string, data: Buffer | AsyncIterable<Buffer>): Promise<void> {
  const tmp = tempNameFor(final)
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644)
  try {
    try {
      if (Buffer.isBuffer(data)) {
        await fh.writeFile(data)
      } else {
        for await (const chunk of data) await writeAll(fh, chunk)
      }
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, final)
  } catch (error) {
    await rm(tmp, {force: true})
    throw error
  }
}

async function writeAll(fh: FileHandle, chunk: Buffer): Promise<void> {
  for (let done = 0; done < chunk.length;) done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten
}

/** fsync a directory, so that the renames into it survive a crash. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}
