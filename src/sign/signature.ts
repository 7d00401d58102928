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
 * Check a detached signature against TRUSTED keys only, and return its signer (the first trusted
 * one). See verifySignatures for the rules.
 */
export async function verifyDetached(data: Uint8Array, untrustedArmoredSignature: string, trustedKeys: openpgp.Key[], entry = 'checksums.sha256.asc'): Promise<SignerInfo> {
  return (await verifySignatures(data, untrustedArmoredSignature, trustedKeys, {entry})).signer
}

/**
 * Check the signatures of a detached signature (one or several signature packets: co-signed
 * bundles) against TRUSTED keys only. Fail closed: a signature by a trusted key that does not
 * verify (bad, or the key revoked) fails the whole check. A signature by a key that is not
 * trusted counts for nothing. At least `threshold` DISTINCT trusted keys must have signed: two
 * signatures by one key, or by two subkeys of one key, count once.
 */
export async function verifySignatures(data: Uint8Array, untrustedArmoredSignature: string, trustedKeys: openpgp.Key[], opts: {entry?: string; threshold?: number} = {}): Promise<{signer: SignerInfo; signers: SignerInfo[]}> {
  const entry = opts.entry ?? 'checksums.sha256.asc'
  const threshold = opts.threshold ?? 1
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
  const signers = new Map<string, SignerInfo>()
  let untrusted: string | undefined
  for (const sig of result.signatures) {
    const keyId = sig.keyID.toHex().toUpperCase()
    try {
      await sig.verified
    } catch (error) {
      const msg = (error as Error).message
      if (/Could not find signing key/i.test(msg)) {
        untrusted ??= keyId
        continue
      }
      throw new VerifyError('signature.invalid', `${entry}: signature by key ${keyId} does not verify (${msg})`, {entry})
    }
    const key = trustedKeys.find((k) => k.getKeys(sig.keyID).length > 0)
    if (!key) continue
    const created = (await sig.signature).packets[0]?.created ?? new Date(0)
    const info = describeKey(key)
    if (!signers.has(info.fingerprint)) signers.set(info.fingerprint, {fingerprint: info.fingerprint, keyId, userId: info.userIds[0], signed: created.toISOString()})
  }
  const list = [...signers.values()]
  if (list.length === 0) {
    throw new VerifyError('signature.untrusted', untrusted ? `${entry}: signed by key ${untrusted}, which is not among the trusted keys` : `${entry}: no signature from a trusted key`, {entry})
  }
  if (list.length < threshold) {
    throw new VerifyError('signature.threshold', `${entry}: signed by ${list.length} distinct trusted key(s) (${list.map((s) => s.fingerprint).join(', ')}); --threshold ${threshold} requires ${threshold}`, {entry})
  }
  return {signer: list[0], signers: list}
}
