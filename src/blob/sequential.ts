import {VerifyError} from '../core/errors.js'
import type {MultiFile} from './multi-file.js'
import {READ_CHUNK} from './sizes.js'

/**
 * Sequential reader over a MultiFile, read once, front to back; the caller asks for exact byte
 * counts. Two ways of reading:
 * - streaming (`stream`): each part from where it stands (pipes too), in READ_CHUNK reads, the
 *   next one started before the current one is consumed, into buffers handed back by recycle();
 *   `shared` reads into SharedArrayBuffers, so that a hashing thread can hash the chunks handed
 *   out from that same memory (see WorkerHasher);
 * - positional (`at`): synchronous reads of `chunk` bytes from a logical offset on (plain verify:
 *   the head, and what follows the blobs).
 * The owner closes the file.
 */
export class SequentialReader {
  position = 0
  private partIndex = 0
  private buf: Buffer = Buffer.alloc(0)
  private eof = false
  /** Positional mode: the next offset to read, and the read size. */
  private filePos = 0
  private positional = false
  private chunk = READ_CHUNK

  private constructor(private readonly file: MultiFile, private readonly shared = false) {}

  /** Streaming reads from the start of the first part. */
  static stream(file: MultiFile, opts: {shared?: boolean} = {}): SequentialReader {
    return new SequentialReader(file, opts.shared)
  }

  /** Positional reads from logical offset `start`, `chunk` bytes at a time. */
  static at(file: MultiFile, start: number, chunk: number): SequentialReader {
    const r = new SequentialReader(file)
    r.positional = true
    r.filePos = start
    r.position = start
    r.chunk = chunk
    return r
  }

  /** The read of the next chunk, started before the current one is consumed (read/hash overlap). */
  private ahead?: Promise<Buffer>

  /** Read buffers handed back by a consumer that no longer uses them (see recycle). */
  private spare: ArrayBufferLike[] = []

  /**
   * Give back a whole read buffer (a READ_CHUNK ArrayBuffer that came from this reader and that
   * nothing references any more) to be read into again: saves allocating and faulting in fresh memory.
   */
  recycle(buf: ArrayBufferLike): void {
    if (buf.byteLength === READ_CHUNK && (buf instanceof SharedArrayBuffer) === this.shared && this.spare.length < 8) this.spare.push(buf)
  }

  /** recycle() the buffer of a chunk handed out, if the chunk covers all of it (a partial one shares it with what follows). */
  recycleWhole(b: Buffer): void {
    if (b.byteOffset === 0 && b.length === b.buffer.byteLength) this.recycle(b.buffer)
  }

  private startRead(): Promise<Buffer> {
    const spare = this.spare.pop()
    const chunk = spare ? Buffer.from(spare) : this.shared ? Buffer.from(new SharedArrayBuffer(READ_CHUNK)) : Buffer.allocUnsafe(READ_CHUNK)
    return this.file.readNext(this.partIndex, chunk, 0, READ_CHUNK).then((n) => chunk.subarray(0, n))
  }

  private fillPositional(): boolean {
    if (this.eof) return false
    const chunk = Buffer.allocUnsafe(this.chunk)
    const n = this.file.readSync(chunk, 0, this.chunk, this.filePos)
    if (n === 0) {
      this.eof = true
      return false
    }
    this.filePos += n
    this.append(chunk.subarray(0, n))
    return true
  }

  private append(got: Buffer): void {
    this.buf = this.buf.length === 0 ? got : Buffer.concat([this.buf, got])
  }

  private async fill(): Promise<boolean> {
    if (this.positional) return this.fillPositional()
    while (!this.eof) {
      const pending = this.ahead ?? this.startRead()
      this.ahead = undefined
      const got = await pending
      if (got.length > 0) {
        this.append(got)
        if (got.length === READ_CHUNK) this.ahead = this.startRead()
        return true
      }
      this.partIndex++
      if (this.partIndex >= this.file.fds.length) this.eof = true
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

  /** Stop reading: wait for a read in flight (the owner may close the file after this). */
  async close(): Promise<void> {
    this.eof = true
    await this.ahead?.catch(() => undefined)
    this.ahead = undefined
  }
}
