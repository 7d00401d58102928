import {constants} from 'node:fs'
import {open, readFile, rm} from 'node:fs/promises'

import {AirlockError} from './errors.js'
import {airlockRunning} from './process.js'

/**
 * An exclusive lock held as a file created with O_EXCL, holding the holder's pid and command:
 * around a read-modify-write of a shared file. A lock left by a process that is no longer running
 * is taken over; one held by a live process is refused at once, naming who holds it.
 */
export async function withFileLock<T>(lockPath: string, what: string, fn: () => Promise<T>): Promise<T> {
  await acquire(lockPath, what)
  try {
    return await fn()
  } finally {
    await rm(lockPath, {force: true})
  }
}

async function acquire(lockPath: string, what: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644)
      try {
        await fh.writeFile(`${JSON.stringify({pid: process.pid, command: process.argv.slice(2, 4).join(' ')})}\n`)
      } finally {
        await fh.close()
      }
      return
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const holder: {pid?: number; command?: string} = await readFile(lockPath, 'utf8').then((t) => JSON.parse(t) as {pid?: number; command?: string}).catch(() => ({}))
    if (typeof holder.pid === 'number' && holder.pid !== process.pid && airlockRunning(holder.pid)) {
      throw new AirlockError('fs.locked', `${what} is in use by another airlock (pid ${holder.pid}${holder.command ? `, ${holder.command}` : ''}); try again when it has finished`)
    }
    await rm(lockPath, {force: true}) // left by a process that is gone: take it over
  }
  throw new AirlockError('fs.locked', `${what} is in use by another airlock (lock ${lockPath})`)
}
