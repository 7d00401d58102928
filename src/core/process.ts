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
