import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {describe, it} from 'node:test'

import {BlobCheck, BlobFault, checkChunks, digestChunks, verifiedChunks, VerifyHow} from '../../../src/blob/verified.js'
import {WorkerHasher} from '../../../src/blob/worker-hasher.js'

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

class Fault extends Error {
  constructor(readonly fault: BlobFault, readonly seen: number, readonly hex?: string) {
    super(`${fault} at ${seen}`)
  }
}

const how: VerifyHow = {fail: (fault, seen, hex) => new Fault(fault, seen, hex)}

async function* chunksOf(...bs: Buffer[]): AsyncGenerator<Buffer> {
  for (const b of bs) yield b
}

/** Everything the consumer received before the iteration ended, and how it ended. */
async function consume(it: AsyncIterable<Buffer>): Promise<{got: Buffer[]; error?: Fault}> {
  const got: Buffer[] = []
  try {
    for await (const c of it) got.push(c)
  } catch (error) {
    return {got, error: error as Fault}
  }
  return {got}
}

describe('verifiedChunks: size and digest checked on every byte, the last chunk held back', () => {
  const a = Buffer.from('a'.repeat(1000))
  const b = Buffer.from('b'.repeat(500))
  const c = Buffer.from('c'.repeat(7))
  const whole = Buffer.concat([a, b, c])
  const want = {digest: sha(whole), size: whole.length}

  it('a good blob passes whole, chunk by chunk, without copies', async () => {
    const {got, error} = await consume(verifiedChunks(chunksOf(a, b, c), want, how))
    assert.equal(error, undefined)
    assert.equal(got.length, 3)
    assert.equal(got[0], a, 'the same buffer, not a copy')
    assert.ok(Buffer.concat(got).equals(whole))
  })

  it('a wrong blob of the right size: the consumer never receives its last chunk', async () => {
    const bad = Buffer.from(c)
    bad[3] ^= 1
    const {got, error} = await consume(verifiedChunks(chunksOf(a, b, bad), want, how))
    assert.equal(error?.fault, 'digest')
    assert.equal(error?.hex, sha(Buffer.concat([a, b, bad])).slice(7))
    assert.deepEqual(got, [a, b])
  })

  it('too long fails as soon as the size is passed, before the end of the input', async () => {
    let pulled = 0
    async function* endless(): AsyncGenerator<Buffer> {
      for (;;) {
        pulled++
        yield a
      }
    }
    const {got, error} = await consume(verifiedChunks(endless(), {digest: want.digest, size: 2500}, how))
    assert.equal(error?.fault, 'long')
    assert.equal(error?.seen, 3000)
    assert.equal(pulled, 3)
    assert.equal(got.length, 2)
  })

  it('too short fails at the end, after the chunks that came', async () => {
    const {got, error} = await consume(verifiedChunks(chunksOf(a, b), want, how))
    assert.equal(error?.fault, 'short')
    assert.equal(error?.seen, 1500)
    assert.deepEqual(got, [a, b])
  })

  it('an empty blob: nothing passes, the empty digest is checked', async () => {
    assert.deepEqual(await consume(verifiedChunks(chunksOf(), {digest: sha(Buffer.alloc(0)), size: 0}, how)), {got: []})
    const {error} = await consume(verifiedChunks(chunksOf(), {digest: want.digest, size: 0}, how))
    assert.equal(error?.fault, 'digest')
  })

  it('pick: only a range goes out, all is hashed, the range\'s last piece held back', async () => {
    const {got} = await consume(verifiedChunks(chunksOf(a, b, c), want, {...how, pick: {from: 990, to: 1010}}))
    assert.ok(Buffer.concat(got).equals(whole.subarray(990, 1010)))
    const bad = Buffer.from(c)
    bad[0] ^= 1
    const cut = await consume(verifiedChunks(chunksOf(a, b, bad), want, {...how, pick: {from: 990, to: 1010}}))
    assert.equal(cut.error?.fault, 'digest')
    assert.ok(Buffer.concat(cut.got).equals(whole.subarray(990, 1000)), 'the piece that completes the range never went out')
  })

  it('hashes through a hashing thread the same way', async () => {
    const hasher = WorkerHasher.start()
    try {
      const ok = await consume(verifiedChunks(chunksOf(a, b, c), want, {...how, hashJob: hasher.job()}))
      assert.ok(Buffer.concat(ok.got).equals(whole))
      const bad = await consume(verifiedChunks(chunksOf(a, b, a.subarray(0, 7)), want, {...how, hashJob: hasher.job()}))
      assert.equal(bad.error?.fault, 'digest')
      assert.deepEqual(bad.got, [a, b])
    } finally {
      await hasher.close()
    }
  })
})

describe('BlobCheck, checkChunks and digestChunks', () => {
  it('BlobCheck: pass() holds back the chunk that completes the blob until endSync()', () => {
    const x = Buffer.from('xyz')
    const check = new BlobCheck({digest: sha(x), size: 3}, how)
    void check.add(x.subarray(0, 2))
    assert.ok(check.pass(x.subarray(0, 2))?.equals(Buffer.from('xy')))
    void check.add(x.subarray(2))
    assert.equal(check.pass(x.subarray(2)), undefined)
    assert.ok(check.complete)
    assert.ok(check.endSync()?.equals(Buffer.from('z')))
  })

  it('checkChunks verifies without passing on, each chunk handed back once hashed', async () => {
    const x = Buffer.from('hello world')
    const done: Buffer[] = []
    await checkChunks(chunksOf(x.subarray(0, 5), x.subarray(5)), {digest: sha(x), size: x.length}, {...how, done: (c) => done.push(c)})
    assert.equal(done.length, 2)
    await assert.rejects(checkChunks(chunksOf(x), {digest: sha(x), size: 5}, how), (e: unknown) => e instanceof Fault && e.fault === 'long')
  })

  it('digestChunks: the digest and size of what a stream yields', async () => {
    const x = Buffer.from('abc')
    const seen: number[] = []
    assert.deepEqual(await digestChunks(chunksOf(x.subarray(0, 1), x.subarray(1)), (_c, at) => {
      seen.push(at)
    }), {digest: sha(x), size: 3})
    assert.deepEqual(seen, [0, 1])
  })
})

describe('positionalChunks', () => {
  it('reads a range into one reused buffer; digestChunks hashes it with a callback per chunk', async () => {
    const src = Buffer.from('0123456789abcdef')
    const read = async (b: Buffer, pos: number) => src.copy(b, 0, pos, pos + b.length)
    const {positionalChunks} = await import('../../../src/blob/verified.js')
    const at: number[] = []
    const got = await digestChunks(positionalChunks(read, 3, 10, 4), (c, i) => {
      at.push(i)
      assert.ok(c.equals(src.subarray(3 + i, 3 + i + c.length)))
    })
    assert.deepEqual(got, {digest: sha(src.subarray(3, 13)), size: 10})
    assert.deepEqual(at, [0, 4, 8])
  })
})
