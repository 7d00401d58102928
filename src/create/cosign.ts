/**
 * `airlock sign`: add a signature by another key to a signed archive, in place. Format 2 keeps the
 * signature in a slot of fixed size (SIGNATURE_SLOT), so the new signature packet is appended to
 * the armored signature there and the slot is written back: a few kilobytes read (the head) and
 * 16 KiB written, whatever the size of the archive. The blobs are neither read nor moved. The
 * signature covers checksums.sha256, and through it every byte (docs/format.md).
 */
import {open} from 'node:fs/promises'

import type * as openpgp from 'openpgp'

import {InputError} from '../core/errors.js'
import {withFileLock} from '../core/lock.js'
import {HEAD_CHUNK} from '../blob/sizes.js'
import {MultiFile, STDIN} from '../blob/multi-file.js'
import {SequentialReader} from '../blob/sequential.js'
import {describeKey, loadTrustedKeys} from '../sign/keys.js'
import {pgp} from '../sign/pgp.js'
import {signDetached, verifySignatures, type SignerInfo} from '../sign/signature.js'
import {armoredSignature, HeadReader} from '../transports/archive/head.js'
import {ENTRY, SIGNATURE_SLOT, signatureSlot} from '../transports/archive/metadata.js'
import {resolveArchiveParts} from '../transports/archive/parts.js'

export interface CosignOptions {
  /** The archive, its first part, or a glob of its parts. */
  archive: string
  /** The key that adds its signature (already unlocked). */
  signingKey: openpgp.PrivateKey
  /** When given, the signatures already there must verify against these keys first. */
  keys?: string[]
  date?: Date
}

export interface CosignResult {
  archive: string
  /** The key that signed now. */
  added: {fingerprint: string; userId?: string}
  /** The key IDs of every signature in the archive now, in order. */
  signatures: string[]
  /** Signers verified before adding (with `keys`). */
  verified?: SignerInfo[]
}

/** The signed head of the archive: what the signatures cover, and where the slot lies. */
async function readHead(parts: string[]): Promise<{checksums: Buffer; armored: string; offset: number}> {
  const files = await MultiFile.open(parts)
  try {
    const head = new HeadReader(SequentialReader.at(files, 0, HEAD_CHUNK))
    await head.entry(ENTRY.METADATA)
    const checksums = (await head.entry(ENTRY.CHECKSUMS))!
    const slot = await head.entry(ENTRY.SIGNATURE, true)
    const at = head.locations.get(ENTRY.SIGNATURE)
    if (!slot || !at) throw new InputError('sign.unsigned_archive', `${parts[0]} is not signed: an archive made with create --unsigned has no signature to add to; create it signed`)
    if (slot.length !== SIGNATURE_SLOT || at.offset + at.size > files.sizes[0]) {
      throw new InputError('sign.no_slot', `${parts[0]} keeps its signature in an entry of ${slot.length} bytes (archive format 1): only archives of format 2 take more signatures; create it again with this airlock`)
    }
    return {checksums, armored: armoredSignature(slot), offset: at.offset}
  } finally {
    await files.close()
  }
}

export async function cosignArchive(opts: CosignOptions): Promise<CosignResult> {
  if (opts.archive === STDIN) throw new InputError('archive.stdin_unsupported', 'sign adds the signature in place: give it the archive file, not standard input ("-")')
  const parts = await resolveArchiveParts(opts.archive)
  return withFileLock(`${parts[0]}.airlock-sign.lock`, `the signature of ${parts[0]}`, async () => {
    const {checksums, armored, offset} = await readHead(parts)
    const pg = await pgp()
    let verified: SignerInfo[] | undefined
    if (opts.keys && opts.keys.length > 0) {
      verified = (await verifySignatures(checksums, armored, await loadTrustedKeys(opts.keys))).signers
    }
    const existing = await pg.readSignature({armoredSignature: armored}).catch((error: unknown) => {
      throw new InputError('sign.bad_signature', `${parts[0]}: the signature entry is not an OpenPGP signature (${(error as Error).message})`)
    })
    const added = await pg.readSignature({armoredSignature: await signDetached(checksums, opts.signingKey, opts.date ?? new Date())})
    // Several signature packets, one after the other, are one detached signature (RFC 9580).
    const both = await pg.readSignature({binarySignature: new Uint8Array(Buffer.concat([existing.write(), added.write()]))})
    let slot: Buffer
    try {
      slot = signatureSlot(both.armor())
    } catch {
      throw new InputError('sign.slot_full', `${parts[0]}: no room for another signature in the ${SIGNATURE_SLOT}-byte signature slot`)
    }
    const fh = await open(parts[0], 'r+')
    try {
      const {bytesWritten} = await fh.write(slot, 0, slot.length, offset)
      if (bytesWritten !== slot.length) throw new Error(`short write (${bytesWritten} of ${slot.length} bytes)`)
      await fh.sync()
    } finally {
      await fh.close()
    }
    const info = describeKey(opts.signingKey)
    return {
      archive: parts[0],
      added: {fingerprint: info.fingerprint, ...(info.userIds[0] ? {userId: info.userIds[0]} : {})},
      signatures: Array.from(both.getSigningKeyIDs(), (k) => k.toHex().toUpperCase()),
      ...(verified ? {verified} : {}),
    }
  })
}
