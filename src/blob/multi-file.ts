import {close, closeSync, fstat, fstatSync, open, openSync, read} from 'node:fs'
import {isatty} from 'node:tty'
import {promisify} from 'node:util'

import {InputError, VerifyError} from '../core/errors.js'
import {PartLayout, preadParts} from './pread.js'
import {RANGE_CHUNK} from './sizes.js'
import {verifiedChunks} from './verified.js'

const openAsync = promisify(open)
const fstatAsync = promisify(fstat)
const closeAsync = promisify(close)

/**
 * The archive name that means standard input (as `tar -f -` and `docker load` read it): read from
 * descriptor 0 as it stands, front to back, once; never opened by path (a socket, as ssh may give,
 * cannot be) and never closed here.
 */
export const STDIN = '-'

/** Wait before reading again a descriptor that had nothing yet (a non-blocking stdin another program set up). */
const EAGAIN_WAIT_MS = 5

function readAsync(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): Promise<number> {
  return new Promise((resolve, reject) => {
    const attempt = () => read(fd, buf, offset, length, position, (error, bytesRead) => {
      if (error?.code === 'EAGAIN') setTimeout(attempt, EAGAIN_WAIT_MS)
      else if (error) reject(error)
      else resolve(bytesRead)
    })
    attempt()
  })
}

function openError(p: string, error: unknown): InputError {
  const code = (error as NodeJS.ErrnoException).code
  return new InputError('archive.open', code === 'ENOENT' ? `archive not found: ${p}` : `cannot open ${p}: ${code ?? (error as Error).message}`)
}

/** Descriptor 0 for STDIN (refused when it is a terminal: an archive is piped or redirected in). */
function stdinFd(): number {
  if (isatty(0)) throw new InputError('archive.stdin_terminal', 'archive "-" is standard input, which is a terminal: pipe or redirect the archive into it (`airlock verify - < release.tar`)')
  return 0
}

function openPartSync(p: string): number {
  if (p === STDIN) return stdinFd()
  try {
    return openSync(p, 'r')
  } catch (error) {
    throw openError(p, error)
  }
}

/** Close what this module opened (standard input stays open: it is not ours). */
function closePartSync(fd: number, p: string): void {
  if (p !== STDIN) closeSync(fd)
}

/**
 * Random access over the ordered parts of a (possibly split) file: positions count from the start
 * of the first part, as in `cat` of the parts. Each part is opened once, when the MultiFile is,
 * and stays open until close(). Synchronous reads serve the hashing threads (which get the same
 * descriptors), asynchronous ones the rest; a part that is not a regular file (a pipe, STDIN) can
 * only be read front to back (readNext).
 */
export class MultiFile implements PartLayout {
  /** Size of the whole: the sum of the parts' sizes. */
  readonly total: number
  readonly starts: number[]
  private closed = false

  private constructor(readonly paths: string[], readonly fds: number[], readonly sizes: number[]) {
    this.starts = []
    let at = 0
    for (const s of sizes) {
      this.starts.push(at)
      at += s
    }
    this.total = at
  }

  /** Open every part (without blocking the event loop); 'archive.open' names the one that fails. */
  static async open(paths: string[]): Promise<MultiFile> {
    const fds: number[] = []
    try {
      for (const p of paths) {
        fds.push(p === STDIN ? stdinFd() : await openAsync(p, 'r').catch((error: unknown) => {
          throw openError(p, error)
        }))
      }
      const sizes = await Promise.all(fds.map(async (fd) => (await fstatAsync(fd)).size))
      return new MultiFile(paths, fds, sizes)
    } catch (error) {
      await Promise.all(fds.map((fd, i) => paths[i] === STDIN ? Promise.resolve() : closeAsync(fd).catch(() => {})))
      throw error
    }
  }

  /** open(), synchronously (plain verify opens its file before anything else runs). */
  static openSync(paths: string[]): MultiFile {
    const fds: number[] = []
    try {
      for (const p of paths) fds.push(openPartSync(p))
      return new MultiFile(paths, fds, fds.map((fd) => fstatSync(fd).size))
    } catch (error) {
      for (const [i, fd] of fds.entries()) closePartSync(fd, paths[i])
      throw error
    }
  }

  /** Paths that name exactly the opened files (Linux), so later renames over the paths change nothing. */
  fdPaths(): string[] {
    return this.fds.map((fd) => `/proc/self/fd/${fd}`)
  }

  /** Read up to `length` bytes at `position` into `buf` (fewer only at the end of the last part). */
  readSync(buf: Uint8Array, offset: number, length: number, position: number): number {
    return preadParts(this, buf, offset, length, position)
  }

  /** readSync(), without blocking the event loop. */
  async read(buf: Uint8Array, offset: number, length: number, position: number): Promise<{bytesRead: number}> {
    let done = 0
    for (let i = 0; i < this.fds.length && done < length; i++) {
      const pos = position + done
      const end = this.starts[i] + this.sizes[i]
      if (pos < this.starts[i] || pos >= end) continue
      const n = Math.min(length - done, end - pos)
      const got = await readAsync(this.fds[i], buf, offset + done, n, pos - this.starts[i])
      done += got
      if (got < n) break
    }
    return {bytesRead: done}
  }

  /** Up to `length` bytes from where part `i` was last read (works on pipes too); 0 at its end. */
  readNext(i: number, buf: Uint8Array, offset: number, length: number): Promise<number> {
    return readAsync(this.fds[i], buf, offset, length, null)
  }

  /**
   * The `size` bytes at `offset`, `chunk` bytes at a time, each in a buffer of its own (a consumer
   * may keep them). Ends early, without an error, where the file ends: not trusted.
   */
  async *range(offset: number, size: number, chunk = RANGE_CHUNK): AsyncGenerator<Buffer> {
    let pos = 0
    while (pos < size) {
      const want = Math.min(chunk, size - pos)
      const buf = Buffer.allocUnsafe(want)
      const {bytesRead} = await this.read(buf, 0, want, offset + pos)
      if (bytesRead === 0) return
      yield buf.subarray(0, bytesRead)
      pos += bytesRead
    }
  }

  /**
   * range() of bytes verified before, hashed again as they are read: the last piece is given out
   * only once all of them hashed to `digest`; otherwise (the file changed or was cut short since
   * it was verified) the iteration throws 'archive.changed'.
   */
  verifiedRange(offset: number, size: number, digest: string, what: string): AsyncGenerator<Buffer> {
    return verifiedChunks(this.range(offset, size), {digest, size}, {
      fail: (fault) => new VerifyError('archive.changed', fault === 'short'
        ? `${what}: the archive is shorter than when it was verified`
        : `${what}: the archive changed since it was verified (sha256 differs)`, {entry: what}),
    })
  }

  /** Close every part (again: nothing). Synchronous underneath: the hashing threads have stopped reading by then. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const [i, fd] of this.fds.entries()) {
      try {
        closePartSync(fd, this.paths[i])
      } catch { /* already gone */ }
    }
  }
}
