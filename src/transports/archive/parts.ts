import {readdir, stat} from 'node:fs/promises'
import path from 'node:path'

import {STDIN} from '../../blob/multi-file.js'
import {InputError} from '../../core/errors.js'

const PART_RE = /^(.*)\.(\d{3})$/

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * The files that make up an archive given on the command line:
 * - `NAME.tar` → that file;
 * - `NAME.tar.000` (any part) → all of NAME.tar.000, .001, … in order;
 * - a glob such as `NAME.tar.*` → the parts it matches, in order;
 * - `-` → standard input (a split archive piped in as one stream: `cat NAME.tar.0* | …`).
 * Parts must be numbered 000… without a gap; a missing part is named.
 */
export async function resolveArchiveParts(arg: string): Promise<string[]> {
  if (arg === STDIN) return [STDIN]
  const dir = path.dirname(arg)
  const base = path.basename(arg)
  let prefix: string | undefined
  if (/[*?]/.test(base)) {
    const re = new RegExp(`^${escapeRe(base).replace(/\\\*/g, '.*').replace(/\\\?/g, '.')}$`)
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => re.test(n))
    if (names.length === 0) throw new InputError('archive.not_found', `no archive matches ${arg}`)
    const prefixes = new Set(names.map((n) => PART_RE.exec(n)?.[1] ?? n))
    if (prefixes.size !== 1 || !names.every((n) => PART_RE.test(n))) {
      if (names.length === 1) return [path.join(dir, names[0])]
      throw new InputError('archive.ambiguous', `${arg} matches files of more than one archive: ${names.slice(0, 5).join(', ')}`)
    }
    prefix = [...prefixes][0]
  } else {
    const m = PART_RE.exec(base)
    if (!m) return [arg]
    try {
      await stat(arg)
    } catch {
      throw new InputError('archive.not_found', `archive not found: ${arg}`)
    }
    prefix = m[1]
  }
  const re = new RegExp(`^${escapeRe(prefix)}\\.(\\d{3})$`)
  const nums = (await readdir(dir)).map((n) => re.exec(n)?.[1]).filter((n): n is string => n !== undefined).map(Number).sort((a, b) => a - b)
  const parts: string[] = []
  for (let i = 0; i <= nums[nums.length - 1]; i++) {
    const name = path.join(dir, `${prefix}.${String(i).padStart(3, '0')}`)
    if (!nums.includes(i)) {
      throw new InputError('archive.part_missing', `part ${name} is missing (found ${nums.map((n) => `.${String(n).padStart(3, '0')}`).join(', ')})`)
    }
    parts.push(name)
  }
  return parts
}
