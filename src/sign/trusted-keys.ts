import type * as openpgp from 'openpgp'

import {InputError} from '../core/errors.js'

type PGP = typeof openpgp

/** What one trusted-key file holds: keys, and revocation certificates that stand on their own. */
export interface KeyFileContent {
  keys: openpgp.Key[]
  /** Standalone signatures (gpg's revocation certificates), applied to their keys by applyRevocations. */
  revocations: openpgp.SignaturePacket[]
  /** The file held secret key material (only its public half is used). */
  hadSecretKey: boolean
}

const ARMOR_BLOCK = /-----BEGIN PGP ([A-Z0-9 ,/]+)-----\r?\n[\s\S]*?-----END PGP \1-----/g

/**
 * Every OpenPGP block of a key file: each armored block wherever it stands (`cat key.asc key.rev`),
 * or one binary stream of packets. Text outside the blocks is refused rather than skipped, so a
 * key or a revocation is never silently left out.
 */
export async function readKeyFileContent(pg: PGP, file: string, data: Uint8Array): Promise<KeyFileContent> {
  const out: KeyFileContent = {keys: [], revocations: [], hadSecretKey: false}
  const text = Buffer.from(data).toString('latin1')
  if (!text.includes('-----BEGIN PGP')) {
    await readBinaryChunk(pg, file, data, out)
    return out
  }
  const blocks = [...text.matchAll(ARMOR_BLOCK)]
  if (blocks.length === 0) throw new InputError('key.invalid', `${file} is not an OpenPGP public key (an armor header without its end line)`)
  let at = 0
  for (const [n, m] of blocks.entries()) {
    refuseLeftover(file, text, at, m.index)
    at = m.index + m[0].length
    let binary: Uint8Array
    try {
      binary = (await pg.unarmor(m[0])).data as Uint8Array
    } catch (error) {
      throw new InputError('key.invalid', `${file}: armored block ${n + 1} is damaged (${(error as Error).message})`)
    }
    await readBinaryChunk(pg, `${file} (block ${n + 1})`, binary, out)
  }
  refuseLeftover(file, text, at, text.length)
  return out
}

function refuseLeftover(file: string, text: string, from: number, to: number): void {
  const rest = text.slice(from, to)
  if (rest.trim() === '') return
  const line = text.slice(0, from + rest.search(/\S/)).split('\n').length
  // Describe, never quote: the file is not ours and could be anything.
  const hint = /^:-----BEGIN PGP/m.test(rest) ? ' (an armor line starts with ":", as in gpg\'s stored revocation certificate: remove the text before it and the colon, as that file says)' : ''
  throw new InputError('key.leftover', `${file}: line ${line} is outside every OpenPGP block; refusing a key file that is not entirely keys and revocation certificates${hint}`)
}

/** One binary stream: keys (public or secret, with their own signatures), or a lone signature such as a revocation certificate. */
async function readBinaryChunk(pg: PGP, what: string, data: Uint8Array, out: KeyFileContent): Promise<void> {
  let keys: openpgp.Key[]
  try {
    keys = await pg.readKeys({binaryKeys: data})
  } catch (keyError) {
    let signature: openpgp.Signature
    try {
      signature = await pg.readSignature({binarySignature: data})
    } catch {
      throw new InputError('key.invalid', `${what} is not an OpenPGP public key (${(keyError as Error).message})`)
    }
    for (const packet of signature.packets) {
      if (packet.signatureType !== pg.enums.signature.keyRevocation) {
        throw new InputError('key.invalid', `${what} holds a lone signature that is not a key revocation certificate`)
      }
      out.revocations.push(packet)
    }
    return
  }
  for (const key of keys) {
    if (key.isPrivate()) out.hadSecretKey = true
    // Only the public half is ever used to verify, even if a private key file was given.
    out.keys.push(key.toPublic())
  }
}

/**
 * One key per fingerprint (the same key given twice, say once with a revocation, is merged), and
 * each standalone revocation attached to the key it revokes once it verifies against that key. A
 * revocation for a key that is not trusted changes nothing; one that does not verify is refused.
 */
export async function mergeAndRevoke(pg: PGP, keys: openpgp.Key[], revocations: openpgp.SignaturePacket[]): Promise<openpgp.Key[]> {
  const byFingerprint = new Map<string, openpgp.Key>()
  for (const key of keys) {
    const fpr = key.getFingerprint()
    const seen = byFingerprint.get(fpr)
    byFingerprint.set(fpr, seen ? await seen.update(key) : key)
  }
  const merged = [...byFingerprint.values()]
  for (const revocation of revocations) {
    const issuer = revocation.issuerKeyID
    const key = merged.find((k) => k.getKeyID().equals(issuer))
    if (!key) continue
    try {
      await revocation.verify(key.keyPacket, pg.enums.signature.keyRevocation, {key: key.keyPacket})
    } catch (error) {
      throw new InputError('key.bad_revocation', `a revocation certificate for key ${key.getFingerprint().toUpperCase()} does not verify (${(error as Error).message})`)
    }
    key.revocationSignatures.push(revocation)
  }
  return merged
}
