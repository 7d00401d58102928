import {readdir} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type * as openpgp from 'openpgp'

import {InputError} from '../core/errors.js'
import {describeKey, KeyUnlock, loadPrivateKey} from './keys.js'

/** The airlock keys directory: AIRLOCK_KEYS_DIR, else $XDG_CONFIG_HOME/airlock/keys, else ~/.config/airlock/keys. */
export function defaultKeysDir(env: Readonly<Record<string, string | undefined>>): string {
  return env.AIRLOCK_KEYS_DIR || path.join(env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'airlock', 'keys')
}

/** Where and how `findSigningKey` finds and unlocks a private key (passed in by the commands). */
export interface SigningKeyOptions extends KeyUnlock {
  /** Directory of private keys looked up by fingerprint (default ~/.config/airlock/keys). */
  keysDir?: string
}

function normFpr(f: string): string {
  return f.replace(/^0x/i, '').replace(/\s+/g, '').toUpperCase()
}

/**
 * The signing key: a key file, optionally checked against an expected fingerprint; or, given
 * only a fingerprint, the matching private key in the airlock keys directory.
 */
export async function findSigningKey(opts: {path?: string; fingerprint?: string} & SigningKeyOptions): Promise<openpgp.PrivateKey | undefined> {
  const want = opts.fingerprint ? normFpr(opts.fingerprint) : undefined
  const unlock: KeyUnlock = {passphrase: opts.passphrase, askPassphrase: opts.askPassphrase}
  if (opts.path) {
    const key = await loadPrivateKey(opts.path, unlock)
    const got = describeKey(key).fingerprint
    if (want && !got.endsWith(want)) throw new InputError('sign.fingerprint_mismatch', `${opts.path} holds key ${got}, not ${want}`)
    return key
  }
  if (!want) return undefined
  const dir = opts.keysDir ?? defaultKeysDir({})
  let names: string[] = []
  try {
    names = (await readdir(dir)).filter((n) => /\.(asc|key|gpg)$/i.test(n))
  } catch {
    // no keys dir
  }
  for (const n of names.sort()) {
    try {
      const key = await loadPrivateKey(path.join(dir, n), unlock)
      if (describeKey(key).fingerprint.endsWith(want)) return key
    } catch {
      // not a private key (a public one, or locked with another passphrase): skip
    }
  }
  throw new InputError('sign.key_not_found', `no private key with fingerprint ${want} in ${dir} (pass --sign-key FILE)`)
}
