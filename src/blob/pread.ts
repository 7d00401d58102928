import {createHash} from 'node:crypto'
import {readSync} from 'node:fs'

/**
 * Synchronous positional reads over the parts of a split file, shared by the main thread and the
 * hashing threads (which get the descriptors, not the MultiFile object). Kept free of other
 * imports: every hashing thread loads it.
 */

/** Open parts: descriptors, sizes, and where each starts in the whole (as in `cat` of the parts). */
export interface PartLayout {
  readonly fds: readonly number[]
  readonly starts: readonly number[]
  readonly sizes: readonly number[]
}

/** Read up to `length` bytes at logical `position` into `buf` (fewer only at the end of the last part). */
export function preadParts(parts: PartLayout, buf: Uint8Array, offset: number, length: number, position: number): number {
  const {fds, starts, sizes} = parts
  let done = 0
  for (let i = 0; i < fds.length && done < length; i++) {
    const pos = position + done
    const end = starts[i] + sizes[i]
    if (pos < starts[i] || pos >= end) continue
    const n = Math.min(length - done, end - pos)
    const got = readSync(fds[i], buf, offset + done, n, pos - starts[i])
    done += got
    if (got < n) break
  }
  return done
}

/**
 * sha256 of `size` bytes at `offset`, read into `buf` piece by piece (no allocation per read);
 * undefined if the file ends first. `stop` is asked between two reads.
 */
export function hashRangeSync(parts: PartLayout, buf: Buffer, offset: number, size: number, stop?: () => boolean): Buffer | undefined {
  const h = createHash('sha256')
  let left = size
  let pos = offset
  while (left > 0) {
    if (stop?.()) return undefined
    const want = Math.min(left, buf.length)
    const got = preadParts(parts, buf, 0, want, pos)
    if (got === 0) return undefined
    h.update(got === buf.length ? buf : buf.subarray(0, got))
    left -= got
    pos += got
  }
  return h.digest()
}
