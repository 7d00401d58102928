import {constants} from 'node:fs'
import {lstat, open, readdir, rm} from 'node:fs/promises'
import path from 'node:path'

import {AirlockError} from '../../core/errors.js'
import {TEMP_NAME} from '../../core/fs.js'
import {airlockRunning} from '../../core/process.js'

/**
 * File access under an OCI layout directory that airlock merges into but did not make: nothing
 * here follows a symbolic link (a link placed at `blobs/`, a blob, `index.json` or `oci-layout`
 * could send verified blobs, or a read, anywhere else on the machine), and no message quotes
 * the content of a file airlock did not write.
 */

/** What is at `p`: nothing, or a file/directory that is not a symbolic link (a link is refused). */
export async function lstatNoLink(p: string, want: 'file' | 'directory'): Promise<'missing' | 'present'> {
  let st
  try {
    st = await lstat(p)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing'
    throw error
  }
  if (st.isSymbolicLink()) throw linkError(p)
  if (want === 'directory' ? !st.isDirectory() : !st.isFile()) {
    throw new AirlockError('install.oci_unexpected_type', `${p} is not a ${want}; refusing to merge into it`)
  }
  return 'present'
}

function linkError(p: string): AirlockError {
  return new AirlockError('install.oci_link', `${p} is a symbolic link; airlock does not read or write through links it did not make (refusing)`)
}

/**
 * A small file of the layout, opened without following a link and read up to `max` bytes, or
 * undefined when there is none. Its content is the caller's to parse; never put it in a message.
 */
export async function readSmallNoFollow(p: string, max: number): Promise<Buffer | undefined> {
  let fh
  try {
    fh = await open(p, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    if (code === 'ELOOP') throw linkError(p)
    throw error
  }
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw new AirlockError('install.oci_unexpected_type', `${p} is not a file; refusing to merge into it`)
    if (st.size > max) throw new AirlockError('install.oci_too_large', `${p} is ${st.size} bytes, more than the ${max} airlock reads`)
    const buf = Buffer.alloc(st.size)
    const {bytesRead} = await fh.read(buf, 0, st.size, 0)
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

/** Temporary files in `dir` left by airlock processes that are no longer running (a kill -9): removed. */
export async function removeStaleTemps(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[])
  await Promise.all(names.map(async (n) => {
    const m = TEMP_NAME.exec(n) // written by writeFileAtomic (core/fs.ts)
    if (m && !airlockRunning(Number(m[2]))) await rm(path.join(dir, n), {force: true})
  }))
}
