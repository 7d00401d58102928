import {constants} from 'node:fs'
import {randomBytes} from 'node:crypto'
import {link, open, readFile, rm} from 'node:fs/promises'

import {AirlockError} from './errors.js'
import {airlockRunning} from './process.js'

/**
 * An exclusive lock held as a file created with O_EXCL, holding the holder's pid and command:
 * around a read-modify-write of a shared file. A lock left by a process that is no longer running
 * is taken over; one held by a live process is waited for up to `waitMs` (checked every 50 ms),
 * then refused, naming who holds it.
 */
export async function withFileLock<T>(lockPath: string, what: string, fn: () => Promise<T>, opts: {waitMs?: number} = {}): Promise<T> {
  // Callers in this process queue here first: the lock file says only which process holds it.
  const previous = queued.get(lockPath) ?? Promise.resolve()
  let release!: () => void
  const mine = new Promise<void>((resolve) => { release = resolve })
  const tail = previous.then(() => mine)
  queued.set(lockPath, tail)
  try {
    await previous
    return await underFileLock(lockPath, what, fn, opts.waitMs ?? 0)
  } finally {
    release()
    if (queued.get(lockPath) === tail) queued.delete(lockPath)
  }
}

/** The lock files this process holds or waits for, each with the end of its queue. */
const queued = new Map<string, Promise<void>>()

async function underFileLock<T>(lockPath: string, what: string, fn: () => Promise<T>, waitMs: number): Promise<T> {
  const until = Date.now() + waitMs
  for (;;) {
    try {
      await acquire(lockPath, what)
      break
    } catch (error) {
      if (!(error instanceof AirlockError && error.code === 'fs.locked') || Date.now() >= until) throw error
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  try {
    return await fn()
  } finally {
    await rm(lockPath, {force: true})
  }
}

/**
 * Create the lock file with its content in one step: written under a name of our own, then
 * hard-linked to `lockPath` (which fails if it exists). Created empty and then written, another
 * process could read it in between, find no holder and take it over. False: it exists.
 */
async function createComplete(lockPath: string): Promise<boolean> {
  const mine = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}`
  const fh = await open(mine, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644)
  try {
    await fh.writeFile(`${JSON.stringify({pid: process.pid, command: process.argv.slice(2, 4).join(' ')})}\n`)
  } finally {
    await fh.close()
  }
  try {
    await link(mine, lockPath)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    return false
  } finally {
    await rm(mine, {force: true})
  }
}

async function acquire(lockPath: string, what: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await createComplete(lockPath)) return
    const holder: {pid?: number; command?: string} = await readFile(lockPath, 'utf8').then((t) => JSON.parse(t) as {pid?: number; command?: string}).catch(() => ({}))
    if (typeof holder.pid === 'number' && holder.pid !== process.pid && airlockRunning(holder.pid)) {
      throw new AirlockError('fs.locked', `${what} is in use by another airlock (pid ${holder.pid}${holder.command ? `, ${holder.command}` : ''}); try again when it has finished`)
    }
    await rm(lockPath, {force: true}) // left by a process that is gone: take it over
  }
  throw new AirlockError('fs.locked', `${what} is in use by another airlock (lock ${lockPath})`)
}
