import type * as openpgp from 'openpgp'

import {VerifyError} from '../core/errors.js'
import {describeKey} from './keys.js'
import {pgp} from './pgp.js'

export const MAX_SIGNATURE_BYTES = 64 * 1024

/**
 * Armored detached signature over `data`. Deterministic: Ed25519 signatures are, and we
 * switch off openpgp.js's random salt notation so that the same key, data and date give the
 * same bytes (a reproducible archive is a requirement of format v1).
 */
export async function signDetached(data: Uint8Array, key: openpgp.PrivateKey, date: Date): Promise<string> {
  const pg = await pgp()
  const message = await pg.createMessage({binary: data})
  const created = key.getCreationTime()
  const when = date.getTime() < created.getTime() ? created : date
  return pg.sign({
    message,
    signingKeys: key,
    detached: true,
    format: 'armored',
    date: when,
    config: {nonDeterministicSignaturesViaNotation: false},
  }) as Promise<string>
}

export interface SignerInfo {
  fingerprint: string
  keyId: string
  userId?: string
  signed: string
}

/**
 * Check a detached signature against TRUSTED keys only. Every signature in the packet must
 * verify (fail closed), and there must be at least one.
 */
export async function verifyDetached(data: Uint8Array, untrustedArmoredSignature: string, trustedKeys: openpgp.Key[], entry = 'checksums.sha256.asc'): Promise<SignerInfo> {
  if (Buffer.byteLength(untrustedArmoredSignature) > MAX_SIGNATURE_BYTES) {
    throw new VerifyError('signature.too_large', `${entry}: signature is larger than 64 KiB`, {entry})
  }
  if (trustedKeys.length === 0) throw new VerifyError('signature.no_keys', 'no trusted key given (use --key)', {entry})
  const pg = await pgp()
  let signature: openpgp.Signature
  try {
    signature = await pg.readSignature({armoredSignature: untrustedArmoredSignature})
  } catch (error) {
    throw new VerifyError('signature.malformed', `${entry}: not an OpenPGP signature (${(error as Error).message})`, {entry})
  }
  const message = await pg.createMessage({binary: data})
  const result = await pg.verify({message, signature, verificationKeys: trustedKeys, expectSigned: false})
  if (result.signatures.length === 0) throw new VerifyError('signature.empty', `${entry}: contains no signature`, {entry})
  let signer: SignerInfo | undefined
  for (const sig of result.signatures) {
    const keyId = sig.keyID.toHex().toUpperCase()
    try {
      await sig.verified
    } catch (error) {
      const msg = (error as Error).message
      const untrusted = /Could not find signing key/i.test(msg)
      throw new VerifyError(
        untrusted ? 'signature.untrusted' : 'signature.invalid',
        untrusted
          ? `${entry}: signed by key ${keyId}, which is not among the trusted keys`
          : `${entry}: signature by key ${keyId} does not verify (${msg})`,
        {entry},
      )
    }
    const key = trustedKeys.find((k) => k.getKeys(sig.keyID).length > 0)
    const packets = await sig.signature
    const created = packets.packets[0]?.created ?? new Date(0)
    if (key && !signer) {
      const info = describeKey(key)
      signer = {fingerprint: info.fingerprint, keyId, userId: info.userIds[0], signed: created.toISOString()}
    }
  }
  if (!signer) throw new VerifyError('signature.untrusted', `${entry}: no signature from a trusted key`, {entry})
  return signer
}
