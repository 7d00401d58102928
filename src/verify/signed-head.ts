import {loadTrustedKeys} from '../sign/keys.js'
import type {SignerInfo} from '../sign/signature.js'
import type {AirlockMetadata} from '../transports/archive/metadata.js'
import {resolveArchiveParts} from '../transports/archive/parts.js'
import {readArchive} from '../transports/archive/reader.js'
import {warnOnStderr} from './verify.js'

/** How a command that reads only the signed metadata of an archive checks its signature. */
export interface SignedHeadOptions {
  /** Trusted key files or directories (--key, else AIRLOCK_TRUSTED_KEYS). */
  keys: string[]
  /** Accept an archive without a signature, or read one without checking it (--allow-unsigned). */
  allowUnsigned?: boolean
}

/** The signed metadata of one archive, and who signed it. */
export interface SignedBundleHead {
  archive: string
  metadata: AirlockMetadata
  /** False when --allow-unsigned let an unsigned (or unchecked) archive through. */
  verified: boolean
  signers: SignerInfo[]
}

/**
 * The metadata entries of `archive` only (never a blob), after the signature over them was checked
 * against the trusted keys exactly as verify and install check it. Expiry is not checked: reading
 * what an expired bundle holds is no install.
 */
export async function readSignedHeads(archives: string[], opts: SignedHeadOptions): Promise<SignedBundleHead[]> {
  const trustedKeys = await loadTrustedKeys(opts.keys, {warn: warnOnStderr})
  const out: SignedBundleHead[] = []
  for (const archive of archives) {
    const parts = await resolveArchiveParts(archive)
    const {head} = await readArchive(parts, {trustedKeys, allowUnsigned: opts.allowUnsigned, headOnly: true, checkExpiry: false})
    out.push({archive, metadata: head.metadata, verified: head.signers.length > 0, signers: head.signers})
  }
  return out
}
