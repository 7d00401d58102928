import {open} from 'node:fs/promises'
import type {FileHandle} from 'node:fs/promises'

import {InputError, VerifyError} from '../../core/errors.js'
import type {PartFiles} from './hash-pool.js'

export const READ_CHUNK = 1024 * 1024

/**
 * Sequential reader over one file (or the ordered parts of a split archive), read once,
 * front to back, in 1 MiB reads. The caller asks for exact byte counts.
 */
export class ByteReader {
  position = 0
  private fh?: FileHandle
  private partIndex = -1
  private buf: Buffer = Buffer.alloc(0)
  private eof = false

  /** Positional mode: synchronous reads of `files` from `filePos` on, `chunk` bytes at a time. */
  private files?: PartFiles
  private filePos = 0
  private chunk = READ_CHUNK

  /**
   * `shared`: read into SharedArrayBuffers, so that a hashing thread can read the chunks this
   * reader hands out from the same memory (see WorkerHasher).
   */
  constructor(private readonly parts: string[], private readonly shared = false) {}

  /** Read already opened parts from logical offset `start` (plain verify: the head, and what follows the blobs). */
  static over(files: PartFiles, start: number, chunk: number): ByteReader {
    const r = new ByteReader(files.paths)
    r.files = files
    r.filePos = start
    r.position = start
    r.chunk = chunk
    return r
  }

  static async open(parts: string[], opts: {shared?: boolean} = {}): Promise<ByteReader> {
    const r = new ByteReader(parts, opts.shared)
    await r.nextPart()
    return r
  }

  private async nextPart(): Promise<boolean> {
    await this.ahead?.catch(() => undefined)
    this.ahead = undefined
    await this.fh?.close()
    this.fh = undefined
    this.partIndex++
    if (this.partIndex >= this.parts.length) {
      this.eof = true
      return false
    }
    const p = this.parts[this.partIndex]
    try {
      this.fh = await open(p, 'r')
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      throw new InputError('archive.open', code === 'ENOENT' ? `archive not found: ${p}` : `cannot open ${p}: ${code ?? (error as Error).message}`)
    }
    return true
  }

  /** The read of the next chunk, started before the current one is consumed (read/hash overlap). */
  private ahead?: Promise<Buffer>

  /** Read buffers handed back by a consumer that no longer uses them (see recycle). */
  private spare: ArrayBufferLike[] = []

  /**
   * Give back a whole read buffer (a 1 MiB ArrayBuffer that came from this reader and that
   * nothing references any more) to be read into again: saves allocating and faulting in fresh memory.
   */
  recycle(buf: ArrayBufferLike): void {
    if (buf.byteLength === READ_CHUNK && (buf instanceof SharedArrayBuffer) === this.shared && this.spare.length < 8) this.spare.push(buf)
  }

  private startRead(): Promise<Buffer> {
    const spare = this.spare.pop()
    const chunk = spare ? Buffer.from(spare) : this.shared ? Buffer.from(new SharedArrayBuffer(READ_CHUNK)) : Buffer.allocUnsafe(READ_CHUNK)
    return this.fh!.read(chunk, 0, READ_CHUNK, null).then(({bytesRead}) => chunk.subarray(0, bytesRead))
  }

  private async fill(): Promise<boolean> {
    if (this.files) {
      if (this.eof) return false
      const chunk = Buffer.allocUnsafe(this.chunk)
      const n = this.files.read(chunk, 0, this.chunk, this.filePos)
      if (n === 0) {
        this.eof = true
        return false
      }
      this.filePos += n
      const got = chunk.subarray(0, n)
      this.buf = this.buf.length === 0 ? got : Buffer.concat([this.buf, got])
      return true
    }
    while (!this.eof) {
      const pending = this.ahead ?? this.startRead()
      this.ahead = undefined
      const got = await pending
      if (got.length > 0) {
        this.buf = this.buf.length === 0 ? got : Buffer.concat([this.buf, got])
        if (got.length === READ_CHUNK) this.ahead = this.startRead()
        return true
      }
      await this.nextPart()
    }
    return false
  }

  /** Up to `max` bytes (at least 1 unless at end of input). */
  async readSome(max: number): Promise<Buffer> {
    if (this.buf.length === 0 && !(await this.fill())) return Buffer.alloc(0)
    const n = Math.min(max, this.buf.length)
    const out = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(n)
    this.position += n
    return out
  }

  /** Exactly `n` bytes, or a VerifyError naming `what` when the input ends first. */
  async readExact(n: number, what: string): Promise<Buffer> {
    const parts: Buffer[] = []
    let need = n
    while (need > 0) {
      const b = await this.readSome(need)
      if (b.length === 0) throw new VerifyError('archive.truncated', `archive is truncated: ${what} ends early (at byte ${this.position})`, {entry: what})
      parts.push(b)
      need -= b.length
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts)
  }

  async close(): Promise<void> {
    if (this.files) {
      this.eof = true
      return // the owner closes the files
    }
    await this.ahead?.catch(() => undefined)
    this.ahead = undefined
    await this.fh?.close()
    this.fh = undefined
    this.eof = true
  }
}
