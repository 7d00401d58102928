/**
 * Which gzip layers go to dockerd's classic store inflated, and the size their tar header
 * announces (see inflatedSizeFor).
 */
import {MultiFile} from '../../blob/multi-file.js'

/** What decides whether a layer is sent inflated: its gzip magic and ISIZE trailer, read by offset. */
export interface GzipProbe {
  magic: boolean
  /** ISIZE: the inflated size modulo 2^32, as the (not yet verified) blob claims it. */
  untrustedIsize: number
}

const TWO_32 = 2 ** 32

/**
 * The size to announce for a gzip layer sent inflated, or undefined to send it as it is.
 *
 * Only layers that gzip made at least 10% smaller are worth it: inflating stored (incompressible)
 * data costs us CPU while streaming and saves dockerd next to nothing. ISIZE is only the size
 * modulo 4 GiB and only that of the last gzip member: it is also refused when a true size of
 * ISIZE + 4 GiB would still mean a compression ratio of 16 or less (a layer of 4 GiB or more must
 * not be mistaken for a small one). A wrong guess is caught while inflating (InflatedSizeError)
 * and the load is done again with the layer as it is.
 */
export function inflatedSizeFor(size: number, probe: GzipProbe): number | undefined {
  if (!probe.magic || size < 20) return undefined
  const isize = probe.untrustedIsize
  if (isize < size * 1.1) return undefined
  if (isize + TWO_32 <= 16 * size) return undefined
  return isize
}

export async function probeGzip(archive: MultiFile, offset: number, size: number): Promise<GzipProbe> {
  const head = Buffer.alloc(3)
  const tail = Buffer.alloc(4)
  const [a, b] = await Promise.all([archive.read(head, 0, 3, offset), archive.read(tail, 0, 4, offset + size - 4)])
  return {magic: a.bytesRead === 3 && b.bytesRead === 4 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 8, untrustedIsize: tail.readUInt32LE(0)}
}
