/** Small real archives (no registry) for the create and copy unit tests. */
import {createHash, randomBytes} from 'node:crypto'
import {mkdtemp} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type {BlobSource, BlobTarget} from '../../../src/copy/source.js'
import {FORMAT_VERSION} from '../../../src/transports/archive/metadata.js'
import {ArchiveFile, ArchivePlan, planArchive, PlannedBlob, writeLayout} from '../../../src/transports/archive/writer.js'

export const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

export function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'airlock-unit-create-'))
}

/** Random blobs of the given sizes, by digest. */
export function blobsOf(...sizes: number[]): Map<string, Buffer> {
  return new Map(sizes.map((n) => {
    const b = randomBytes(n)
    return [sha(b), b]
  }))
}

/** The signed-metadata layout of an unsigned archive holding `blobs` (no images: enough for positional tests). */
export function planFor(blobs: Map<string, Buffer>, partSize?: number): Promise<ArchivePlan> {
  const list = [...blobs].map(([digest, b]) => ({digest, size: b.length}))
  return planArchive({
    metadata: {
      formatVersion: FORMAT_VERSION, tool: {name: 'airlock', version: 'test'},
      bundle: {name: 'unit', version: '1', created: new Date(0).toISOString()}, images: [],
      blobs: {count: list.length, bytes: list.reduce((a, b) => a + b.size, 0), referencedBytes: 0},
    },
    blobs: list, epoch: 0, ...(partSize ? {partSize} : {}),
  })
}

/** A new `.partial` for `plan`, laid out (headers and padding written, blob data still zeros). */
export async function laidOut(output: string, plan: ArchivePlan): Promise<ArchiveFile> {
  const file = await ArchiveFile.create(output, plan.total, plan.partSize)
  await writeLayout(file, plan)
  return file
}

/** Read a planned blob's bytes back from an archive file. */
export async function readBlob(file: ArchiveFile, b: PlannedBlob): Promise<Buffer> {
  const buf = Buffer.alloc(b.size)
  await file.read(buf, b.dataOffset)
  return buf
}

/** A source over a map of blobs that records what it was asked (`log`: "origin:has|provide:digest"). */
export function fakeSource(origin: BlobSource['origin'], blobs: Map<string, Buffer>, log: string[], opts: {remote?: boolean; fresh?: boolean; fail?: Error} = {}): BlobSource {
  return {
    origin,
    remote: opts.remote ?? false,
    fresh: opts.fresh ?? false,
    async has(b: PlannedBlob) {
      log.push(`${origin}:has:${b.digest.slice(7, 15)}`)
      return blobs.has(b.digest)
    },
    async provide(b: PlannedBlob, target: BlobTarget) {
      log.push(`${origin}:provide:${b.digest.slice(7, 15)}`)
      if (opts.fail) throw opts.fail
      const data = blobs.get(b.digest)!
      // two writes, to exercise offsets within the blob
      const half = Math.floor(data.length / 2)
      await target.write([data.subarray(0, half)], 0)
      await target.write([data.subarray(half)], half)
    },
  }
}
