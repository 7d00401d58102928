import {constants} from 'node:fs'
import {link, open, readdir, rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'

import {AirlockError} from './errors.js'
import {airlockRunning, processUniqueName} from './process.js'

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
  const mine = processUniqueName(lockPath)
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

/**
 * The names of our own that a killed process may have left beside the lock (`LOCK.PID.HEX`,
 * `LOCK.stale.PID.HEX`: see createComplete and takeOver); removed when their pid is gone.
 */
async function removeDeadTemps(lockPath: string): Promise<void> {
  const base = path.basename(lockPath)
  const names = await readdir(path.dirname(lockPath)).catch(() => [] as string[])
  await Promise.all(names.map(async (n) => {
    if (!n.startsWith(`${base}.`)) return
    const m = /^(?:stale\.)?(\d+)\.[0-9a-f]{8}$/.exec(n.slice(base.length + 1))
    if (m && !airlockRunning(Number(m[1]))) await rm(path.join(path.dirname(lockPath), n), {force: true})
  }))
}

async function acquire(lockPath: string, what: string): Promise<void> {
  await removeDeadTemps(lockPath)
  for (let attempt = 0; attempt < 4; attempt++) {
    if (await createComplete(lockPath)) return
    const seen = await readHolder(lockPath)
    if (seen === 'gone') continue // released meanwhile: try again (never remove a lock we did not read)
    if (seen.pid !== undefined && seen.pid !== process.pid && airlockRunning(seen.pid)) {
      throw new AirlockError('fs.locked', `${what} is in use by another airlock (pid ${seen.pid}${seen.command ? `, ${seen.command}` : ''}); try again when it has finished`)
    }
    await takeOver(lockPath, seen.ino)
  }
  throw new AirlockError('fs.locked', `${what} is in use by another airlock (lock ${lockPath})`)
}

type Holder = {pid?: number; command?: string; ino: number}

/** Who holds the lock, and which file it is; 'gone' when it was released before it could be read. */
async function readHolder(lockPath: string): Promise<Holder | 'gone'> {
  let fh
  try {
    fh = await open(lockPath, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone'
    throw error
  }
  try {
    const {ino} = await fh.stat()
    const text = await fh.readFile('utf8')
    try {
      const j = JSON.parse(text) as {pid?: unknown; command?: unknown}
      return {ino, ...(typeof j.pid === 'number' ? {pid: j.pid} : {}), ...(typeof j.command === 'string' ? {command: j.command} : {})}
    } catch {
      return {ino} // not ours to read: no live holder named in it
    }
  } finally {
    await fh.close()
  }
}

/**
 * Remove the lock of a process that is gone: moved aside first, and removed only when it is still
 * the very file that was read (another process may have taken over and locked anew meanwhile: its
 * lock is put back).
 */
async function takeOver(lockPath: string, ino: number): Promise<void> {
  const aside = processUniqueName(`${lockPath}.stale`)
  try {
    await rename(lockPath, aside)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw error
  }
  if ((await stat(aside)).ino !== ino) await link(aside, lockPath).catch(() => undefined)
  await rm(aside, {force: true})
}
