import {sha256Hex} from '../../core/digest.js'
import {MAX_MANIFEST_BYTES} from '../../core/model.js'
import {HashJobs} from '../../blob/hash-pool.js'
import type {MultiFile} from '../../blob/multi-file.js'
import {checkManifestContent, fail, ManifestWant} from './checks.js'
import type {BlobContext, BlobState} from './blobs-sequential.js'
import {BLOCK, isZeroBlock, paddingFor, parseHeader, TarHeader} from './tar.js'

/**
 * Plain verify of the blob entries, fast. After the head, the signed metadata fixes the layout
 * (docs/format.md): per blob, in sorted order, one header, the data, zero padding. The headers
 * are read and checked here, in order, as the sequential reader checks them; the data of every
 * blob before the first header that is not exactly the expected one is hashed with positional
 * reads on all threads (`jobs`: what the speculation started, if anything). Failures are
 * reported in archive order, as the sequential reader reports them: from the first unexpected
 * header on (or else from the end-of-archive marker), the sequential reader takes over.
 */

interface PlannedBlob {
  hex: string
  name: string
  header: number
  data: number
  size: number
  /** Offset just after its zero padding. */
  end: number
  manifest?: ManifestWant
  jobs?: HashJobs
  job?: number
}

/** Where every blob must be, from `start` on, as the signed metadata lays them out. */
function planBlobs(ctx: BlobContext, start: number): {plan: PlannedBlob[]; trailer: number} {
  const plan: PlannedBlob[] = []
  let off = start
  for (const [hex, size] of ctx.blobs) {
    const data = off + BLOCK
    const end = data + size + paddingFor(size)
    plan.push({hex, name: `blobs/sha256/${hex}`, header: off, data, size, end, manifest: ctx.manifests.get(`sha256:${hex}`)})
    off = end
  }
  return {plan, trailer: off}
}

/** How many blobs, from the first, have exactly the expected header and zero padding (as the sequential reader would see them). */
function goodHeaders(files: MultiFile, plan: PlannedBlob[], st: BlobState): number {
  const block = Buffer.allocUnsafe(BLOCK)
  let good = 0
  for (const b of plan) {
    if (b.end > files.total) break
    if (files.readSync(block, 0, BLOCK, b.header) !== BLOCK) break
    let h: TarHeader
    try {
      h = parseHeader(block, st.index + good + 1) // a zero block is not a ustar header either
    } catch {
      break
    }
    if (h.name !== b.name || h.size !== b.size) break
    if (b.manifest && b.size > MAX_MANIFEST_BYTES) break
    // Non-zero padding: the sequential reader names it (it re-reads this one blob to get there).
    const pad = b.end - b.data - b.size
    if (pad > 0 && (files.readSync(block, 0, pad, b.data + b.size) !== pad || !isZeroBlock(block.subarray(0, pad)))) break
    good++
  }
  return good
}

/**
 * Give every blob (but manifests, read below) its hashing job: the speculation's where it hashed
 * exactly this range, else one of a new set (returned) started on the other threads.
 */
function assignJobs(files: MultiFile, blobs: PlannedBlob[], jobs: HashJobs | undefined, threads: number): HashJobs | undefined {
  const needed = new Set<number>()
  const rest: PlannedBlob[] = []
  for (const b of blobs) {
    if (b.manifest) continue // read and hashed below, its content is needed
    const k = jobs?.find(b.data, b.size)
    if (k === undefined) {
      rest.push(b)
    } else {
      b.jobs = jobs
      b.job = k
      needed.add(k)
    }
  }
  jobs?.skipAllBut(needed)
  if (rest.length === 0) return undefined
  const own = HashJobs.start(files, rest.map((b) => ({offset: b.data, size: b.size})), jobs ? 0 : threads - 1)
  for (const b of rest) {
    b.jobs = own
    b.job = own.find(b.data, b.size)
  }
  return own
}

/** Hex digest of a planned blob once hashed, undefined when it could not be read whole; a manifest's content too. */
function plannedDigest(files: MultiFile, b: PlannedBlob): {got?: string; content?: Buffer} {
  if (!b.manifest) return {got: b.jobs!.digest(b.job!)}
  const content = Buffer.allocUnsafe(b.size)
  return {got: files.readSync(content, 0, b.size, b.data) === b.size ? sha256Hex(content) : undefined, content}
}

/**
 * Verify the blobs from `start` on; returns the offset from which the sequential reader goes on.
 * `at.position` follows the last blob checked (for messages about parts).
 */
export async function verifyBlobsPositional(files: MultiFile, start: number, st: BlobState, ctx: BlobContext, jobs: HashJobs | undefined, threads: number, at: {position?: number}): Promise<number> {
  const {plan, trailer} = planBlobs(ctx, start)
  const good = goodHeaders(files, plan, st)
  const prefix = plan.slice(0, good)
  const own = assignJobs(files, prefix, jobs, threads)
  try {
    await Promise.all([jobs?.finish(), own?.finish()])
    for (const b of prefix) {
      const {got, content} = plannedDigest(files, b)
      // Could not be read whole after all (the file shrank?): the sequential reader says what is wrong.
      if (got === undefined) return b.header
      st.index++
      st.seen.add(b.hex)
      st.prevHex = b.hex
      ctx.locations.set(b.name, {offset: b.data, size: b.size})
      at.position = b.end
      if (got !== b.hex) fail('archive.digest_mismatch', b.name, `content does not match its signed sha256 (got ${got})`)
      if (content) checkManifestContent(`sha256:${b.hex}`, content, b.manifest!)
    }
  } finally {
    await own?.close()
  }
  return good === plan.length ? trailer : plan[good].header
}
