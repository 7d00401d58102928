/**
 * Minimal, strict ustar support. We never hand an untrusted archive to a generic extractor:
 * the reader parses each 512-byte header itself and accepts only plain regular files with
 * short names; everything else (links, directories, PAX/GNU extensions, devices) is refused.
 */
import {VerifyError} from '../../core/errors.js'

export const BLOCK = 512

export interface TarHeader {
  name: string
  size: number
  mode: number
  mtime: number
  typeflag: string
}

function writeString(buf: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8')
  if (bytes.length > length) throw new Error(`tar field too long: ${value}`)
  bytes.copy(buf, offset)
}

function writeOctal(buf: Buffer, offset: number, length: number, value: number): void {
  // length-1 octal digits, zero padded, NUL terminated (as GNU tar and tar-stream write them)
  const s = value.toString(8).padStart(length - 1, '0')
  if (s.length > length - 1) throw new Error(`tar numeric field overflow: ${value}`)
  writeString(buf, offset, length, s)
}

/** Encode a deterministic ustar header for a regular file (mode 0644, uid/gid 0, no owner names). */
export function encodeHeader(name: string, size: number, mtime: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long: ${name}`)
  const h = Buffer.alloc(BLOCK)
  writeString(h, 0, 100, name)
  writeOctal(h, 100, 8, 0o644)
  writeOctal(h, 108, 8, 0)
  writeOctal(h, 116, 8, 0)
  writeOctal(h, 124, 12, size)
  writeOctal(h, 136, 12, mtime)
  h.fill(0x20, 148, 156) // checksum placeholder: spaces
  h[156] = 0x30 // '0' regular file
  writeString(h, 257, 6, 'ustar')
  writeString(h, 263, 2, '00')
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += h[i]
  writeString(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ')
  return h
}

export function paddingFor(size: number): number {
  const rem = size % BLOCK
  return rem === 0 ? 0 : BLOCK - rem
}

function readCString(buf: Buffer, offset: number, length: number): string {
  const end = buf.indexOf(0, offset)
  const stop = end === -1 || end > offset + length ? offset + length : end
  return buf.toString('utf8', offset, stop)
}

function readOctal(buf: Buffer, offset: number, length: number, field: string, where: string): number {
  if (buf[offset] & 0x80) throw new VerifyError('archive.bad_header', `${where}: base-256 ${field} field is not allowed`, {entry: where})
  const s = readCString(buf, offset, length).trim()
  if (s === '') return 0
  if (!/^[0-7]+$/.test(s)) throw new VerifyError('archive.bad_header', `${where}: invalid ${field} field ${JSON.stringify(s)}`, {entry: where})
  const n = Number.parseInt(s, 8)
  if (!Number.isSafeInteger(n)) throw new VerifyError('archive.bad_header', `${where}: ${field} field out of range`, {entry: where})
  return n
}

export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false
  return true
}

const TYPE_NAMES: Record<string, string> = {
  '1': 'hard link', '2': 'symbolic link', '3': 'character device', '4': 'block device', '5': 'directory',
  '6': 'FIFO', '7': 'contiguous file', x: 'PAX extended header', g: 'PAX global header',
  L: 'GNU long name', K: 'GNU long link', S: 'GNU sparse file',
}

/**
 * Parse one header block strictly. `index` is the entry's position, used in messages before a
 * name is known to be safe.
 */
export function parseHeader(h: Buffer, index: number): TarHeader {
  const rawName = readCString(h, 0, 100)
  const prefix = readCString(h, 345, 155)
  const magic = h.toString('latin1', 257, 263)
  const shownName = JSON.stringify(prefix ? `${prefix}/${rawName}` : rawName).slice(0, 120)
  const where = `entry #${index} ${shownName}`
  if (magic !== 'ustar\0' && magic !== 'ustar ') {
    throw new VerifyError('archive.bad_header', `${where}: not a ustar header (corrupt or truncated archive)`, {entry: shownName})
  }
  const stored = readOctal(h, 148, 8, 'checksum', where)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]
  if (stored !== sum) throw new VerifyError('archive.bad_header', `${where}: header checksum mismatch`, {entry: shownName})
  const typeflag = h[156] === 0 ? '0' : String.fromCharCode(h[156])
  if (typeflag !== '0') {
    const what = TYPE_NAMES[typeflag] ?? `type ${JSON.stringify(typeflag)}`
    throw new VerifyError('archive.bad_entry_type', `${where}: is a ${what}; only regular files are allowed`, {entry: shownName})
  }
  const name = prefix ? `${prefix}/${rawName}` : rawName
  return {
    name,
    size: readOctal(h, 124, 12, 'size', where),
    mode: readOctal(h, 100, 8, 'mode', where),
    mtime: readOctal(h, 136, 12, 'mtime', where),
    typeflag,
  }
}
