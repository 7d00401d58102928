import {readdir, readFile, stat} from 'node:fs/promises'
import path from 'node:path'

import type * as openpgp from 'openpgp'

import {InputError} from '../core/errors.js'
import {pgp} from './pgp.js'
import {mergeAndRevoke, readKeyFileContent} from './trusted-keys.js'

export interface KeyInfo {
  fingerprint: string
  userIds: string[]
  created: Date
}

export interface GeneratedKeyPair extends KeyInfo {
  publicKeyArmored: string
  privateKeyArmored: string
  encrypted: boolean
}

const MAX_KEY_FILE = 1024 * 1024

export const TRUSTED_KEYS_ENV = 'AIRLOCK_TRUSTED_KEYS'

/**
 * The trusted key files or directories: the `--key` values (one path each), else the
 * comma-separated list in AIRLOCK_TRUSTED_KEYS of `env` (the commands pass theirs).
 */
export function trustedKeyPaths(flagValues: string[] | undefined, env: Readonly<Record<string, string | undefined>>): string[] {
  if (flagValues && flagValues.length > 0) return flagValues
  return (env[TRUSTED_KEYS_ENV] ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '')
}

/** Ed25519 (v4, gpg-compatible) primary key with a Curve25519 encryption subkey. */
export async function generateKeyPair(opts: {name: string; email?: string; passphrase?: string; date?: Date}): Promise<GeneratedKeyPair> {
  const pg = await pgp()
  const userIDs = [{name: opts.name, ...(opts.email ? {email: opts.email} : {})}]
  const {privateKey, publicKey} = await pg.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs,
    ...(opts.passphrase ? {passphrase: opts.passphrase} : {}),
    ...(opts.date ? {date: opts.date} : {}),
    format: 'armored',
  })
  const key = await pg.readKey({armoredKey: publicKey})
  return {...describeKey(key), publicKeyArmored: publicKey, privateKeyArmored: privateKey, encrypted: Boolean(opts.passphrase)}
}

export function describeKey(key: openpgp.Key): KeyInfo {
  return {fingerprint: key.getFingerprint().toUpperCase(), userIds: key.getUserIDs(), created: key.getCreationTime()}
}

async function readKeyFile(file: string): Promise<Uint8Array> {
  let st
  try {
    st = await stat(file)
  } catch {
    throw new InputError('key.not_found', `key file not found: ${file}`)
  }
  if (!st.isFile()) throw new InputError('key.not_file', `not a key file: ${file}`)
  if (st.size > MAX_KEY_FILE) throw new InputError('key.too_large', `key file is larger than 1 MiB: ${file}`)
  return new Uint8Array(await readFile(file))
}

function isArmored(data: Uint8Array): boolean {
  return Buffer.from(data.subarray(0, 64)).toString('latin1').includes('-----BEGIN PGP')
}

/**
 * How a passphrase-protected private key is unlocked: with `passphrase` (the commands pass
 * AIRLOCK_KEY_PASSPHRASE), else with what `askPassphrase` returns (the commands pass a terminal
 * prompt when there is a terminal). Library code never prompts by itself.
 */
export interface KeyUnlock {
  passphrase?: string
  askPassphrase?: (question: string) => Promise<string>
}

/** Load a signing (private) key, unlocking it as `unlock` says. The passphrase is never logged. */
export async function loadPrivateKey(file: string, unlock: KeyUnlock = {}): Promise<openpgp.PrivateKey> {
  let passphrase = unlock.passphrase
  const data = await readKeyFile(file)
  const pg = await pgp()
  let key: openpgp.PrivateKey
  try {
    key = isArmored(data)
      ? await pg.readPrivateKey({armoredKey: Buffer.from(data).toString('utf8')})
      : await pg.readPrivateKey({binaryKey: data})
  } catch (error) {
    throw new InputError('key.invalid', `${file} is not an OpenPGP private key (${(error as Error).message})`)
  }
  if (!key.isDecrypted()) {
    if (!passphrase && unlock.askPassphrase) passphrase = await unlock.askPassphrase(`Passphrase for ${file}: `)
    if (!passphrase) {
      throw new InputError('key.locked', `${file} is passphrase-protected: set AIRLOCK_KEY_PASSPHRASE`)
    }
    try {
      key = await pg.decryptKey({privateKey: key, passphrase})
    } catch {
      throw new InputError('key.bad_passphrase', `could not unlock ${file}: wrong passphrase`)
    }
  }
  return key
}

/**
 * Load trusted public keys from files and directories: every armored block of a file or its binary
 * packets, several keys each, with revocation certificates applied wherever they stand.
 */
export async function loadTrustedKeys(paths: string[], opts: {warn?: (message: string) => void} = {}): Promise<openpgp.Key[]> {
  const loading = pgp()
  loading.catch(() => {})
  const files: string[] = []
  for (const p of paths) {
    let st
    try {
      st = await stat(p)
    } catch {
      throw new InputError('key.not_found', `trusted key not found: ${p}`)
    }
    if (st.isDirectory()) {
      const names = (await readdir(p)).filter((n) => /\.(asc|gpg|pgp|pub|key|rev)$/i.test(n)).sort()
      if (names.length === 0) throw new InputError('key.none_in_dir', `no *.asc/*.gpg/*.pub/*.rev key files in ${p}`)
      files.push(...names.map((n) => path.join(p, n)))
    } else {
      files.push(p)
    }
  }
  const keys: openpgp.Key[] = []
  const revocations: openpgp.SignaturePacket[] = []
  const pg = await loading
  for (const file of files) {
    const content = await readKeyFileContent(pg, file, await readKeyFile(file))
    if (content.hadSecretKey) opts.warn?.(`WARNING: ${file} holds a secret key; only its public key is used to verify (give the public key file instead)`)
    keys.push(...content.keys)
    revocations.push(...content.revocations)
  }
  // Revocations apply across files: a certificate may come in its own --key file or in a key directory.
  return mergeAndRevoke(pg, keys, revocations)
}
