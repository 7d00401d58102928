import {createHash} from 'node:crypto'
import {open} from 'node:fs/promises'
import type {FileHandle} from 'node:fs/promises'

import {InputError, VerifyError} from '../../core/errors.js'

const RANGE_CHUNK = 1024 * 1024

/**
 * Random access over an archive that may be split into parts: positions count from the start of
 * the first part, as in `cat` of the parts. Each part is opened once and kept open.
 */
export class MultiFile {
  private constructor(readonly handles: FileHandle[], readonly sizes: number[]) {}

  static async open(parts: string[]): Promise<MultiFile> {
    const handles: FileHandle[] = []
    try {
      for (const p of parts) {
        handles.push(await open(p, 'r'))
      }
    } catch (error) {
      await Promise.all(handles.map((h) => h.close()))
      const code = (error as NodeJS.ErrnoException).code
      throw new InputError('archive.open', code === 'ENOENT' ? `archive not found: ${parts[handles.length]}` : `cannot open ${parts[handles.length]}: ${code ?? (error as Error).message}`)
    }
    const sizes = await Promise.all(handles.map(async (h) => (await h.stat()).size))
    return new MultiFile(handles, sizes)
  }

  /** Paths that name exactly the opened files (Linux), so later renames over the paths change nothing. */
  fdPaths(): string[] {
    return this.handles.map((h) => `/proc/self/fd/${h.fd}`)
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{bytesRead: number}> {
    let done = 0
    let start = 0
    for (const [i, size] of this.sizes.entries()) {
      const end = start + size
      const pos = position + done
      if (done < length && pos < end && pos >= start) {
        const n = Math.min(length - done, end - pos)
        const {bytesRead} = await this.handles[i].read(buffer, offset + done, n, pos - start)
        done += bytesRead
        if (bytesRead < n) break
      }
      start = end
    }
    return {bytesRead: done}
  }

  /**
   * The `size` bytes at `offset`, hashed again as they are read: the last piece is yielded only
   * once all of them hashed to `digest`; otherwise (the file changed or was cut short since it
   * was verified) the iteration throws a VerifyError.
   */
  async *verifiedRange(offset: number, size: number, digest: string, what: string): AsyncGenerator<Buffer> {
    const hash = createHash('sha256')
    let pos = 0
    let held: Buffer | undefined
    while (pos < size) {
      const want = Math.min(RANGE_CHUNK, size - pos)
      const buf = Buffer.allocUnsafe(want)
      const {bytesRead} = await this.read(buf, 0, want, offset + pos)
      if (bytesRead === 0) throw new VerifyError('archive.changed', `${what}: the archive is shorter than when it was verified`, {entry: what})
      const b = buf.subarray(0, bytesRead)
      hash.update(b)
      if (held) yield held
      held = b
      pos += bytesRead
    }
    if (`sha256:${hash.digest('hex')}` !== digest) throw new VerifyError('archive.changed', `${what}: the archive changed since it was verified (sha256 differs)`, {entry: what})
    if (held) yield held
  }

  async close(): Promise<void> {
    await Promise.all(this.handles.map((h) => h.close().catch(() => {})))
  }
}
