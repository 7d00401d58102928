/**
 * Read buffers handed back by a sink (ArchiveSink.blob's `release`) and read into again: the
 * docker destination writes the tar straight into its request and releases each chunk once its
 * write completed. A chunk must never be reused while anything may still read it.
 */
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {mkdtemp} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {PassThrough, Writable} from 'node:stream'
import {after, before, describe, it} from 'node:test'

import {VerifiedTarStream} from '../src/install/tarstream.js'
import type {ImageRecord} from '../src/transports/archive/metadata.js'
import {readArchive, VerifiedHead} from '../src/transports/archive/reader.js'
import {randomLayer, syntheticArchive} from './helpers/archive.js'

const MB = 1024 * 1024
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** A writer whose writes complete only when the test says so. */
class HeldWriter extends Writable {
  readonly pending: (() => void)[] = []
  readonly got: Buffer[] = []
  constructor() {
    super({highWaterMark: 16 * 1024})
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.got.push(chunk)
    this.pending.push(cb)
  }

  completeOne(): void {
    this.pending.shift()?.()
  }
}

const image = (layer: string): ImageRecord => ({
  ref: 'x', name: 'x:1', mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:' + 'a'.repeat(64), size: 1,
  sourceDigest: 'sha256:' + 'a'.repeat(64), platforms: ['linux/amd64'],
  manifests: [{digest: 'sha256:' + 'a'.repeat(64), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1, platform: 'linux/amd64', config: 'sha256:' + 'c'.repeat(64), layers: [layer]}],
  dockerManifest: 'sha256:' + 'a'.repeat(64), blobs: [{digest: layer, size: 1}],
})

const tick = () => new Promise((r) => setImmediate(r))

describe('VerifiedTarStream: chunks released after their write completed', () => {
  const parts = [randomLayer(2 * MB), randomLayer(2 * MB), randomLayer(2 * MB)]
  const digest = sha(Buffer.concat(parts))
  async function* data() {
    for (const p of parts) yield p
  }

  it('releases each chunk only once its write completed, and holds the writer beyond 4 MiB on its way', async () => {
    const w = new HeldWriter()
    const t = new VerifiedTarStream(w, true)
    const released: Buffer[] = []
    await t.begin({} as VerifiedHead, [image(digest)], {ociLayout: false}) // manifest.json: 2 writes, not held
    let done = false
    const blob = t.blob(digest, 6 * MB, data(), (c) => released.push(c)).then(() => { done = true })
    for (let i = 0; i < 5; i++) await tick()
    // manifest.json, the blob's header and two chunks are on their way (4 MiB and more): the third waits
    assert.equal(done, false)
    assert.equal(released.length, 0)
    // The writer takes one write at a time (the rest wait in its buffer): complete them up to the first chunk's.
    for (;;) {
      const current = w.got.at(-1)
      w.completeOne()
      await tick()
      if (current === parts[0]) break
      assert.equal(released.length, 0, 'nothing released before the first chunk\'s write completed')
    }
    assert.deepEqual(released, [parts[0]], 'the first chunk, as soon as its write completed, and nothing else')
    for (let i = 0; i < 5; i++) await tick()
    assert.equal(done, true, '2 MiB on its way: room for the third chunk')
    while (w.pending.length > 0) {
      w.completeOne()
      await tick()
    }
    await blob
    assert.deepEqual(released, parts, 'every chunk, once, in order')
  })

  it('releases nothing into a stream that passes chunks on (a PassThrough, as by default)', async () => {
    const out = new PassThrough()
    const t = new VerifiedTarStream(out)
    out.resume()
    const released: Buffer[] = []
    await t.begin({} as VerifiedHead, [image(digest)], {ociLayout: false})
    await t.blob(digest, 6 * MB, data(), (c) => released.push(c))
    await t.finish()
    assert.equal(released.length, 0)
  })
})

describe('readArchive: buffers released by a sink are read into again, and only those', () => {
  let dir: string
  let archive: string
  const layers = [randomLayer(9 * MB + 12345), randomLayer(5 * MB)]

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-release-'))
    archive = path.join(dir, 'a.tar')
    await syntheticArchive(path.join(dir, 'blobs'), archive, [{name: 'example.com/a/one:1', layers}])
  })
  after(async () => {
    const {rm} = await import('node:fs/promises')
    await rm(dir, {recursive: true, force: true})
  })

  it('reuses released memory; a chunk kept by the sink is never overwritten', async () => {
    const seen = new Map<string, Buffer>()
    const kept: {chunk: Buffer; hash: string}[] = []
    const releasedBuffers = new Set<ArrayBufferLike>()
    let reused = 0
    let n = 0
    await readArchive([archive], {
      trustedKeys: [], allowUnsigned: true,
      sink: {
        async blob(d, _size, chunks, release) {
          const copies: Buffer[] = []
          for await (const c of chunks) {
            if (releasedBuffers.has(c.buffer)) reused++
            copies.push(Buffer.from(c))
            // Release every other chunk; keep the rest, and check at the end they are untouched.
            if (n++ % 2 === 0) {
              releasedBuffers.add(c.buffer)
              release?.(c)
            } else {
              kept.push({chunk: c, hash: sha(c)})
            }
          }
          seen.set(d, Buffer.concat(copies))
        },
      },
    })
    for (const l of layers) assert.ok(seen.get(sha(l))?.equals(l), 'every layer arrives intact')
    assert.ok(reused > 0, 'released buffers were read into again')
    assert.ok(kept.length > 4)
    for (const k of kept) assert.equal(sha(k.chunk), k.hash, 'a chunk the sink kept was not overwritten')
  })
})
