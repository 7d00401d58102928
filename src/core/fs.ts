import {stat} from 'node:fs/promises'

/** True when something exists at `p` (any kind of file). */
export async function pathExists(p: string): Promise<boolean> {
  try {
    await stat(p)
    return true
  } catch {
    return false
  }
}
