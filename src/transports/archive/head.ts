import type * as openpgp from 'openpgp'

import {InputError} from '../../core/errors.js'
import {sha256Hex} from '../../core/digest.js'
import type {SequentialReader} from '../../blob/sequential.js'
import {SignerInfo, verifySignatures} from '../../sign/signature.js'
import {checkMetadataShape, checkParts, crossCheck, describeName, fail, manifestExpectations, ManifestWant, parseChecksums, parseJson} from './checks.js'
import {AirlockMetadata, ENTRY, LIMITS, OCI_LAYOUT_CONTENT, SIGNATURE_SLOT} from './metadata.js'
import {BLOCK, isZeroBlock, paddingFor, parseHeader, TarHeader} from './tar.js'

/**
 * The head of an archive: the metadata entries, read in order and checked before any blob. The
 * signature over checksums.sha256 is checked before anything signed is parsed.
 */

/** Where an entry's data lies in the (possibly multi-part) archive: byte offset from the start of the first part. */
export interface EntryLocation {
  offset: number
  size: number
}

/** The signed entries, checked: airlock.json, checksums.sha256 and the signature. */
export interface SignedHead {
  metadata: AirlockMetadata
  signer?: SignerInfo
  /** Every distinct trusted key that signed (a co-signed bundle has several). */
  signers: SignerInfo[]
  signed: boolean
  sums: Map<string, string>
  /** Raw bytes of the verified metadata entries, by entry name. */
  raw: Map<string, Buffer>
}

export interface HeadChecks {
  /** Resolved before the signature is checked; a key error is reported first. */
  trustedKeys: openpgp.Key[]
  allowUnsigned?: boolean
  now?: Date
  checkExpiry?: boolean
  /** At least this many distinct trusted keys must have signed (default 1). */
  threshold?: number
  parts: string[]
  partSizes: number[]
}

/** The zero bytes after an entry's data, up to the next 512-byte boundary: anything else is refused. */
export async function readPadding(reader: SequentialReader, pad: number, entry: string): Promise<void> {
  const bytes = await reader.readExact(pad, entry)
  if (!isZeroBlock(bytes)) fail('archive.bad_padding', entry, 'the padding after its data is not all zero bytes')
}

/** Reads the metadata entries one after the other, in their fixed order. */
export class HeadReader {
  /** Entries read so far (messages name entries by their number). */
  index = 0
  readonly locations = new Map<string, EntryLocation>()
  /** A header read while looking for an optional entry that was not there. */
  private pending?: TarHeader

  constructor(readonly reader: SequentialReader) {}

  async nextHeader(): Promise<TarHeader | undefined> {
    const block = await this.reader.readExact(BLOCK, this.index === 0 ? 'archive header' : `header of entry #${this.index + 1}`)
    if (isZeroBlock(block)) return undefined
    this.index++
    return parseHeader(block, this.index)
  }

  /** The data of entry `name`, next in the archive (undefined when it is optional and not there). */
  async entry(name: string, optional = false): Promise<Buffer | undefined> {
    const h = this.pending ?? await this.nextHeader()
    const wasPending = this.pending !== undefined
    this.pending = undefined
    if (!h) {
      if (optional) return undefined
      fail('archive.missing_entry', name, 'is missing (archive ends before it)')
    }
    if (h.name !== name) {
      if (optional && !wasPending) {
        this.pending = h
        return undefined
      }
      fail('archive.unexpected_entry', h.name.slice(0, 200), `found where ${name} was expected (${describeName(h.name)})`)
    }
    if (h.size > LIMITS[name]) fail('archive.entry_too_large', name, `is ${h.size} bytes, more than the ${LIMITS[name]} allowed`)
    this.locations.set(name, {offset: this.reader.position, size: h.size})
    const data = await this.reader.readExact(h.size, name)
    const pad = paddingFor(h.size)
    if (pad) await readPadding(this.reader, pad, name)
    return data
  }
}

const ARMOR_END = '-----END PGP SIGNATURE-----'

/**
 * The armored signature in the signature entry. Format 2 pads the entry with newlines (the slot
 * that `airlock sign` rewrites); nothing else may follow the armor's end line: those bytes are not
 * signed, so a change there must not go unnoticed.
 */
export function armoredSignature(entry: Buffer): string {
  const text = entry.toString('latin1')
  const end = text.lastIndexOf(ARMOR_END)
  if (end === -1) fail('signature.malformed', ENTRY.SIGNATURE, 'is not an armored OpenPGP signature (no end line)')
  if (!/^\r?\n*$/.test(text.slice(end + ARMOR_END.length))) fail('archive.bad_padding', ENTRY.SIGNATURE, 'holds bytes other than newlines after the signature')
  return `${entry.toString('utf8', 0, end + ARMOR_END.length)}\n`
}

/** airlock.json, checksums.sha256 and the signature: read, signature checked, then parsed and checked. */
export async function readSignedHead(head: HeadReader, opts: HeadChecks): Promise<SignedHead> {
  const metaBytes = (await head.entry(ENTRY.METADATA))!
  const sumsBytes = (await head.entry(ENTRY.CHECKSUMS))!
  const sigBytes = await head.entry(ENTRY.SIGNATURE, true)
  let signers: SignerInfo[] = []
  if (sigBytes) {
    if (opts.trustedKeys.length === 0) {
      if (!opts.allowUnsigned) throw new InputError('signature.no_keys', 'no trusted key given: pass --key PUB.asc (or --allow-unsigned to skip the signature check)')
    } else {
      signers = (await verifySignatures(sumsBytes, armoredSignature(sigBytes), opts.trustedKeys, {threshold: opts.threshold})).signers
    }
  } else if (!opts.allowUnsigned) {
    fail('signature.missing', ENTRY.SIGNATURE, 'archive is unsigned (pass --allow-unsigned to accept it)')
  }
  const sums = parseChecksums(sumsBytes)
  if (sha256Hex(metaBytes) !== sums.get(ENTRY.METADATA)) fail('archive.digest_mismatch', ENTRY.METADATA, 'content does not match its signed sha256')
  const metadata = parseJson(ENTRY.METADATA, metaBytes)
  checkMetadataShape(metadata)
  if (metadata.formatVersion >= 2 && sigBytes && sigBytes.length !== SIGNATURE_SLOT) {
    fail('archive.inconsistent', ENTRY.SIGNATURE, `is ${sigBytes.length} bytes; format ${metadata.formatVersion} signatures take a slot of exactly ${SIGNATURE_SLOT}`)
  }
  if (opts.checkExpiry !== false && metadata.bundle.expires) {
    const exp = new Date(metadata.bundle.expires)
    const now = opts.now ?? new Date()
    if (Number.isNaN(exp.getTime()) || exp.getTime() <= now.getTime()) {
      fail('bundle.expired', ENTRY.METADATA, `bundle ${metadata.bundle.name} ${metadata.bundle.version} expired on ${metadata.bundle.expires}`)
    }
  }
  if (opts.parts.length > 1) checkParts(opts.parts, opts.partSizes, metadata)
  const raw = new Map<string, Buffer>([[ENTRY.METADATA, metaBytes], [ENTRY.CHECKSUMS, sumsBytes]])
  if (sigBytes) raw.set(ENTRY.SIGNATURE, sigBytes)
  return {metadata, signer: signers[0], signers, signed: sigBytes !== undefined, sums, raw}
}

/**
 * oci-layout, index.json and manifest.json, checked against the signed checksums and against
 * airlock.json: the blobs the archive must hold (hex → size, in archive order), and what each
 * manifest among them must reference.
 */
export async function readLayoutEntries(head: HeadReader, signed: SignedHead): Promise<{blobs: Map<string, number>; manifests: Map<string, ManifestWant>}> {
  const {raw, sums} = signed
  for (const name of [ENTRY.OCI_LAYOUT, ENTRY.INDEX, ENTRY.DOCKER_MANIFEST]) {
    const data = (await head.entry(name))!
    if (sha256Hex(data) !== sums.get(name)) fail('archive.digest_mismatch', name, 'content does not match its signed sha256')
    raw.set(name, data)
  }
  if (!raw.get(ENTRY.OCI_LAYOUT)!.equals(OCI_LAYOUT_CONTENT)) fail('archive.inconsistent', ENTRY.OCI_LAYOUT, 'unexpected content')
  const blobs = crossCheck(signed.metadata, raw, sums)
  return {blobs, manifests: manifestExpectations(signed.metadata)}
}
