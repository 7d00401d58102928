import assert from 'node:assert/strict'
import {createHash, randomBytes} from 'node:crypto'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {InputError, VerifyError} from '../../../src/core/errors.js'
import {HashJobs} from '../../../src/blob/hash-pool.js'
import {MultiFile} from '../../../src/blob/multi-file.js'
import {hashRangeSync} from '../../../src/blob/pread.js'
import {SequentialReader} from '../../../src/blob/sequential.js'
import {READ_CHUNK} from '../../../src/blob/sizes.js'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

describe('MultiFile: the parts of a split file read as one', () => {
  let dir: string
  let whole: Buffer
  let parts: string[]
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-multifile-'))
    whole = randomBytes(3 * READ_CHUNK + 12_345)
    const cuts = [0, 700_000, 700_001, 2 * READ_CHUNK + 5, whole.length]
    parts = []
    for (let i = 0; i + 1 < cuts.length; i++) {
      const p = path.join(dir, `f.tar.${String(i).padStart(3, '0')}`)
      await writeFile(p, whole.subarray(cuts[i], cuts[i + 1]))
      parts.push(p)
    }
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('sync and async reads across part boundaries are the bytes of `cat`', async () => {
    const f = await MultiFile.open(parts)
    try {
      assert.equal(f.total, whole.length)
      for (const [pos, len] of [[0, 10], [699_990, 20], [700_000, 1], [650_000, 2 * READ_CHUNK], [whole.length - 5, 100]]) {
        const a = Buffer.alloc(len)
        const n = f.readSync(a, 0, len, pos)
        assert.ok(a.subarray(0, n).equals(whole.subarray(pos, pos + len)), `sync ${pos}+${len}`)
        const b = Buffer.alloc(len)
        const {bytesRead} = await f.read(b, 0, len, pos)
        assert.equal(bytesRead, n)
        assert.ok(b.subarray(0, bytesRead).equals(a.subarray(0, n)), `async ${pos}+${len}`)
      }
      assert.equal(hashRangeSync(f, Buffer.alloc(4096), 100, whole.length - 100)?.toString('hex'), sha(whole.subarray(100)))
      assert.equal(hashRangeSync(f, Buffer.alloc(4096), 100, whole.length), undefined, 'past the end')
      const range: Buffer[] = []
      for await (const c of f.range(600_000, 1_500_000, 400_000)) range.push(c)
      assert.deepEqual(range.map((c) => c.length), [400_000, 400_000, 400_000, 300_000])
      assert.ok(Buffer.concat(range).equals(whole.subarray(600_000, 2_100_000)))
    } finally {
      await f.close()
    }
  })

  it('the sequential reader streams the parts as one, in shared memory if asked, and reuses recycled buffers', async () => {
    const f = MultiFile.openSync(parts)
    try {
      const r = SequentialReader.stream(f, {shared: true})
      const head = await r.readExact(1000, 'head')
      assert.ok(head.equals(whole.subarray(0, 1000)))
      const got: Buffer[] = [head]
      let first: Buffer | undefined
      for (;;) {
        const b = await r.readSome(READ_CHUNK)
        if (b.length === 0) break
        assert.ok(b.buffer instanceof SharedArrayBuffer)
        got.push(Buffer.from(b))
        first ??= b
      }
      assert.ok(Buffer.concat(got).equals(whole))
      assert.equal(r.position, whole.length)
      await assert.rejects(r.readExact(1, 'more'), (e: unknown) => e instanceof VerifyError && e.code === 'archive.truncated')
      await r.close()
      const positional = SequentialReader.at(f, 699_999, 3)
      assert.ok((await positional.readExact(5, 'x')).equals(whole.subarray(699_999, 700_004)))
    } finally {
      await f.close()
    }
  })

  it('hashes ranges on threads; names a missing part as the old readers did', async () => {
    const f = MultiFile.openSync(parts)
    try {
      const ranges = [{offset: 0, size: whole.length}, {offset: 699_000, size: 2000}, {offset: 5, size: 2_500_000}]
      const jobs = HashJobs.start(f, ranges, 2)
      await jobs.finish()
      for (const r of ranges) assert.equal(jobs.digest(jobs.find(r.offset, r.size)!), sha(whole.subarray(r.offset, r.offset + r.size)))
      await jobs.close()
    } finally {
      await f.close()
    }
    const missing = path.join(dir, 'nope.tar')
    for (const open of [() => MultiFile.open([parts[0], missing]), async () => MultiFile.openSync([parts[0], missing])]) {
      await assert.rejects(open(), (e: unknown) => e instanceof InputError && e.code === 'archive.open' && e.message === `archive not found: ${missing}`)
    }
  })

  it('verifiedRange: a range that changed since it was verified fails before its last piece', async () => {
    const f = await MultiFile.open(parts)
    try {
      const digest = `sha256:${sha(whole.subarray(10, 2_000_010))}`
      let n = 0
      for await (const c of f.verifiedRange(10, 2_000_000, digest, 'x')) n += c.length
      assert.equal(n, 2_000_000)
      n = 0
      await assert.rejects(async () => {
        for await (const c of f.verifiedRange(11, 2_000_000, digest, 'blobs/sha256/x')) n += c.length
      }, (e: unknown) => e instanceof VerifyError && e.code === 'archive.changed' && e.message === 'blobs/sha256/x: the archive changed since it was verified (sha256 differs)')
      assert.ok(n < 2_000_000)
      await assert.rejects(async () => {
        for await (const _ of f.verifiedRange(whole.length - 10, 20, digest, 'y')) { /* drain */ }
      }, (e: unknown) => e instanceof VerifyError && e.message === 'y: the archive is shorter than when it was verified')
    } finally {
      await f.close()
    }
  })
})
