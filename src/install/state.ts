/**
 * Rollback protection: a small local record of which version of each bundle was installed.
 *
 * The signed metadata carries the bundle's name and version, so an attacker cannot relabel an old
 * bundle as new; but an OLD, validly signed bundle (with known vulnerabilities) can still be
 * replayed. After every successful install we record (name, target) → version here, and `install`
 * refuses a bundle older than the one recorded for the same target unless --allow-downgrade is given.
 *
 * File: --state-file, else $AIRLOCK_STATE_FILE, else $XDG_STATE_HOME/airlock/installed.json, else
 * ~/.local/state/airlock/installed.json (the install command passes its environment to defaultStateFile). Written atomically (temp file + rename).
 */
import {constants} from 'node:fs'
import {lstat, mkdir, open} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {AirlockError, VerifyError} from '../core/errors.js'
import {fsError} from '../core/fs-errors.js'
import {withFileLock} from '../core/lock.js'
import {writeFileAtomic} from '../core/fs.js'

/** How long an install waits for another one to finish writing the state file. */
const LOCK_WAIT_MS = 30_000

export interface InstalledRecord {
  name: string
  version: string
  /** sha256 (hex) of the signed checksums.sha256: identifies the bundle's exact content. */
  contentSha256?: string
  /** Signing key fingerprint, when the bundle was signed. */
  signer?: string
  archive: string
  target: string
  installedAt: string
}

export interface InstallState {
  version: 1
  bundles: Record<string, InstalledRecord>
}

export function defaultStateFile(env: Readonly<Record<string, string | undefined>>): string {
  if (env.AIRLOCK_STATE_FILE) return path.resolve(env.AIRLOCK_STATE_FILE)
  const base = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state')
  return path.join(base, 'airlock', 'installed.json')
}

const SEMVER = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/

function cmpNum(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function cmpPrerelease(a: string | undefined, b: string | undefined): number {
  // No pre-release ranks above any pre-release of the same x.y.z (semver §11).
  if (a === undefined || b === undefined) return a === b ? 0 : a === undefined ? 1 : -1
  const pa = a.split('.')
  const pb = b.split('.')
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    if (pa[i] === undefined) return -1
    if (pb[i] === undefined) return 1
    const na = /^\d+$/.test(pa[i])
    const nb = /^\d+$/.test(pb[i])
    if (na && nb) {
      const c = cmpNum(Number(pa[i]), Number(pb[i]))
      if (c !== 0) return c
    } else if (na !== nb) {
      return na ? -1 : 1
    } else if (pa[i] !== pb[i]) {
      return pa[i] < pb[i] ? -1 : 1
    }
  }
  return 0
}

/**
 * Compare two bundle versions: semver when both are semver (build metadata ignored), else
 * dot-separated segments compared numerically when both are digits and as strings otherwise.
 */
export function compareVersions(a: string, b: string): number {
  const ma = SEMVER.exec(a)
  const mb = SEMVER.exec(b)
  if (ma && mb) {
    for (let i = 1; i <= 3; i++) {
      const c = cmpNum(Number(ma[i]), Number(mb[i]))
      if (c !== 0) return c
    }
    return cmpPrerelease(ma[4], mb[4])
  }
  const sa = a.replace(/^v/, '').split(/[.-]/)
  const sb = b.replace(/^v/, '').split(/[.-]/)
  for (let i = 0; i < Math.max(sa.length, sb.length); i++) {
    if (sa[i] === undefined) return -1
    if (sb[i] === undefined) return 1
    const c = /^\d+$/.test(sa[i]) && /^\d+$/.test(sb[i]) ? cmpNum(Number(sa[i]), Number(sb[i])) : sa[i] < sb[i] ? -1 : sa[i] > sb[i] ? 1 : 0
    if (c !== 0) return c
  }
  return 0
}

export async function readState(file: string): Promise<InstallState> {
  let text: string
  try {
    // Never through a link: the record would be read from, then renamed over, a file airlock did not make.
    const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW)
    try {
      text = await fh.readFile('utf8')
    } finally {
      await fh.close()
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return {version: 1, bundles: {}}
    if (code === 'ELOOP') throw new AirlockError('state.link', `the install state file ${file} is a symbolic link; airlock does not read or write through links it did not make`)
    throw new AirlockError('state.unreadable', `cannot read the install state file ${file}: ${code ?? String(error)}`)
  }
  let j: unknown
  try {
    j = JSON.parse(text)
  } catch {
    throw new AirlockError('state.corrupt', `the install state file ${file} is not valid JSON; fix or remove it (it records installed bundle versions for rollback protection)`)
  }
  const s = j as Partial<InstallState>
  if (!s || typeof s !== 'object' || s.version !== 1 || !s.bundles || typeof s.bundles !== 'object') {
    throw new AirlockError('state.corrupt', `the install state file ${file} has an unknown format`)
  }
  return s as InstallState
}

/**
 * The state file's folder, made if missing; the folders made here are checked to be real folders
 * afterwards (a link put in their place meanwhile is refused). Existing ones are the user's.
 */
async function makeStateDir(dir: string): Promise<void> {
  const first = await mkdir(dir, {recursive: true})
  if (first === undefined) return
  for (let d = dir; d.length >= first.length; d = path.dirname(d)) {
    if ((await lstat(d)).isSymbolicLink()) throw new AirlockError('state.link', `${d} is a symbolic link; airlock does not write through links it did not make`)
    if (d === first) break
  }
}

/**
 * Records are kept per bundle name AND target: installing v2 into docker says nothing about what
 * the registry or containerd on the same machine hold.
 */
export function stateKey(name: string, target: string): string {
  return `${name} → ${target}`
}

/** Throws VerifyError `bundle.downgrade` when `bundle` is older than the recorded install on `target`. */
export function checkDowngrade(state: InstallState, bundle: {name: string; version: string}, file: string, target: string): void {
  const key = stateKey(bundle.name, target)
  const was = Object.hasOwn(state.bundles, key) ? state.bundles[key] : undefined
  if (!was || typeof was.version !== 'string') return
  if (compareVersions(bundle.version, was.version) < 0) {
    throw new VerifyError(
      'bundle.downgrade',
      `bundle ${bundle.name} ${bundle.version} is older than version ${was.version}, installed ${was.installedAt} to ${was.target}: refusing a downgrade (pass --allow-downgrade if this rollback is intended)`,
      {entry: bundle.name, details: [`state file: ${file}`]},
    )
  }
}

/** Record a successful install (read-modify-write, atomic replace). */
export async function recordInstall(file: string, rec: InstalledRecord): Promise<void> {
  try {
    await makeStateDir(path.dirname(file))
    // Two installs at once must not lose each other's record: read, change and write under a lock.
    await withFileLock(`${file}.lock`, `install state file ${file}`, async () => {
      const state = await readState(file).catch((error: unknown): InstallState => {
        if (error instanceof AirlockError && error.code === 'state.link') throw error
        return {version: 1, bundles: {}}
      })
      state.bundles[stateKey(rec.name, rec.target)] = rec
      await writeFileAtomic(file, Buffer.from(JSON.stringify(state, null, 2) + '\n'))
    }, {waitMs: LOCK_WAIT_MS})
  } catch (error) {
    const mapped = fsError(error, `install state file ${file}`)
    const code = (mapped as NodeJS.ErrnoException).code
    // Any other file-system error still names the operation and the path, never a raw `EEXIST: …`.
    if (!(mapped instanceof AirlockError) && typeof code === 'string') throw new AirlockError('state.unwritable', `cannot write the install state file ${file}: ${code}`, {cause: error})
    throw mapped
  }
}
