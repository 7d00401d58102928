import {randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'

/** Whether `pid` is still a running airlock (a reused pid of another program does not count). */
export function airlockRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    return /node|airlock/.test(cmd)
  } catch {
    return true // no /proc: trust kill(0)
  }
}

/**
 * `base.PID.RANDOM`: a name that no other process uses, nor an earlier run of this one, for
 * temporary files and locks beside shared files (the pid tells whether its owner still runs).
 */
export function processUniqueName(base: string): string {
  return `${base}.${process.pid}.${randomBytes(4).toString('hex')}`
}
