/**
 * Read buffers handed back by a sink (ArchiveSink.blob's `release`) and read into again: the
 * docker destination writes the tar straight into its request and releases each chunk once its
 * write completed. A chunk must never be reused while anything may still read it.
 */
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {mkdtemp, readFile, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {PassThrough, Writable} from 'node:stream'
import {after, before, describe, it} from 'node:test'

import {AirlockError, VerifyError} from '../../../../src/core/errors.js'
import {VerifiedTarStream} from '../../../../src/transports/docker-archive/tarstream.js'
import {WorkerHasher} from '../../../../src/blob/worker-hasher.js'
import type {ImageRecord} from '../../../../src/transports/archive/metadata.js'
import {readArchive, VerifiedHead} from '../../../../src/transports/archive/reader.js'
import {dataOffset, randomLayer, syntheticArchive} from '../../../helpers/archive.js'

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

  for (const releasesChunks of [true, false]) {
    it(`reuses released memory; a chunk kept by the sink is never overwritten (${releasesChunks ? 'hashed on a second thread, shared memory' : 'hashed inline'})`, async () => {
      const seen = new Map<string, Buffer>()
      const kept: {chunk: Buffer; hash: string; digest: string}[] = []
      const releasedBuffers = new Set<ArrayBufferLike>()
      let reused = 0
      let n = 0
      await readArchive([archive], {
        trustedKeys: [], allowUnsigned: true,
        sink: {
          releasesChunks,
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
                kept.push({chunk: c, hash: sha(c), digest: d})
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
      // (a manifest reaches the sink as one buffer of its own, read whole to be checked)
      const layerDigests = new Set(layers.map(sha))
      assert.equal(kept.filter((k) => layerDigests.has(k.digest)).every((k) => k.chunk.buffer instanceof SharedArrayBuffer), releasesChunks)
    })
  }
})

describe('WorkerHasher: sha256 on a second thread, of the memory the sink passes on', () => {
  it('gives each job the sha256 of its chunks, shared memory or not, jobs interleaved', async () => {
    const h = WorkerHasher.start()
    try {
      const a = [randomLayer(MB), randomLayer(300_000)]
      const b = [randomLayer(700_000), randomLayer(5)]
      const shared = (x: Buffer) => {
        const s = Buffer.from(new SharedArrayBuffer(x.length + 10), 5, x.length)
        x.copy(s)
        return s
      }
      const ja = h.job()
      const jb = h.job()
      await ja.update(shared(a[0]))
      await jb.update(b[0])
      await ja.update(a[1])
      await jb.update(shared(b[1]))
      assert.equal(await jb.hex(), sha(Buffer.concat(b)).slice(7))
      assert.equal(await ja.hex(), sha(Buffer.concat(a)).slice(7))
      assert.equal(await h.job().hex(), sha(Buffer.alloc(0)).slice(7))
    } finally {
      await h.close()
    }
  })

  it('afterHashed waits for the worker to have hashed the chunk; update waits when 16 MiB behind', async () => {
    const h = WorkerHasher.start()
    try {
      const j = h.job()
      const chunk = Buffer.from(new SharedArrayBuffer(MB))
      let waited = false
      for (let i = 0; i < 20; i++) {
        const w = j.update(chunk)
        if (w) {
          waited = true
          assert.ok(h.pending > 16 * MB)
          await w
          assert.ok(h.pending <= 8 * MB)
        }
      }
      assert.ok(waited, 'update() never waited for the worker')
      const last = Buffer.from(new SharedArrayBuffer(MB))
      void j.update(last)
      let ran = false
      h.afterHashed(last, () => { ran = true })
      assert.equal(ran, false, 'ran before the worker could have hashed the chunk')
      await j.hex()
      assert.equal(ran, true)
      let now = false
      h.afterHashed(Buffer.alloc(1), () => { now = true })
      assert.equal(now, true, 'a chunk never hashed here is free at once')
    } finally {
      await h.close()
    }
  })

  it('a worker that dies fails the job with a clear error', async () => {
    const h = WorkerHasher.start()
    const j = h.job()
    await j.update(Buffer.alloc(10))
    const pending = j.hex()
    await (h as unknown as {worker: {terminate(): Promise<number>}}).worker.terminate()
    await assert.rejects(pending.then(() => h.job().hex()), (e: unknown) => {
      assert.ok(e instanceof AirlockError)
      assert.equal(e.code, 'verify.hash_worker')
      return true
    })
    await h.close()
  })
})

describe('readArchive with a sink: a tampered multi-MiB blob is refused, hashed on a second thread or not', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-tamper-'))
  })
  after(async () => {
    const {rm} = await import('node:fs/promises')
    await rm(dir, {recursive: true, force: true})
  })

  for (const threads of ['2', '1']) {
    it(`AIRLOCK_HASH_THREADS=${threads}`, async () => {
      const layer = randomLayer(6 * MB)
      const file = path.join(dir, `t${threads}.tar`)
      await syntheticArchive(path.join(dir, `blobs${threads}`), file, [{name: 'example.com/a/one:1', layers: [layer]}])
      const buf = await readFile(file)
      const at = dataOffset(buf, `blobs/sha256/${sha(layer).slice(7)}`)
      buf[at + 3 * MB + 7] ^= 1
      await writeFile(file, buf)
      let received = 0
      await assert.rejects(readArchive([file], {trustedKeys: [], allowUnsigned: true, hashThreads: Number(threads), sink: {
          releasesChunks: true,
          async blob(_d, size, chunks) {
            for await (const c of chunks) received += c.length
            assert.ok(size > 0)
          },
        }}), (e: unknown) => {
          assert.ok(e instanceof VerifyError, String(e))
          assert.equal(e.code, 'archive.digest_mismatch')
          assert.match(e.message, new RegExp(sha(layer).slice(7)))
          return true
        })
      assert.ok(received < layer.length, 'the sink got the whole tampered blob')
    })
  }
})
