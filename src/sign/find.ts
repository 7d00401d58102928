import {readdir} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type * as openpgp from 'openpgp'

import {InputError} from '../core/errors.js'
import {describeKey, loadPrivateKey} from './keys.js'

export function keysDir(): string {
  return process.env.AIRLOCK_KEYS_DIR || path.join(process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'airlock', 'keys')
}

function normFpr(f: string): string {
  return f.replace(/^0x/i, '').replace(/\s+/g, '').toUpperCase()
}

/**
 * The signing key: a key file, optionally checked against an expected fingerprint; or, given
 * only a fingerprint, the matching private key in the airlock keys directory.
 */
export async function findSigningKey(opts: {path?: string; fingerprint?: string}): Promise<openpgp.PrivateKey | undefined> {
  const want = opts.fingerprint ? normFpr(opts.fingerprint) : undefined
  if (opts.path) {
    const key = await loadPrivateKey(opts.path)
    const got = describeKey(key).fingerprint
    if (want && !got.endsWith(want)) throw new InputError('sign.fingerprint_mismatch', `${opts.path} holds key ${got}, not ${want}`)
    return key
  }
  if (!want) return undefined
  const dir = keysDir()
  let names: string[] = []
  try {
    names = (await readdir(dir)).filter((n) => /\.(asc|key|gpg)$/i.test(n))
  } catch {
    // no keys dir
  }
  for (const n of names.sort()) {
    try {
      const key = await loadPrivateKey(path.join(dir, n))
      if (describeKey(key).fingerprint.endsWith(want)) return key
    } catch {
      // not a private key (a public one, or locked with another passphrase): skip
    }
  }
  throw new InputError('sign.key_not_found', `no private key with fingerprint ${want} in ${dir} (pass --sign-key FILE)`)
}
