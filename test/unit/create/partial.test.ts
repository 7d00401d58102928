import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {readdir, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {SourceChain, SourceMiss} from '../../../src/copy/source.js'
import {Journal, readJournal} from '../../../src/create/journal.js'
import {hashAt, movePartial, openPartial} from '../../../src/create/partial.js'
import {ArchiveFile} from '../../../src/transports/archive/writer.js'
import {blobsOf, laidOut, planFor, readBlob, sha, tempDir} from './fixtures.js'

describe('resuming a partial archive', () => {
  let dir: string
  before(async () => {
    dir = await tempDir()
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('hashAt hashes a range (across parts), handing each piece on', async () => {
    const blobs = blobsOf(3 * 1024 * 1024 + 5)
    const [[digest, data]] = [...blobs]
    const plan = await planFor(blobs, 1024 * 1024)
    const file = await laidOut(path.join(dir, 'h.tar'), plan)
    const b = plan.blobs[0]
    await file.write([data], b.dataOffset)
    const seen: Buffer[] = []
    assert.equal(await hashAt(file, b.dataOffset, b.size, async (c, at) => {
      assert.equal(at, seen.reduce((a, x) => a + x.length, 0))
      seen.push(Buffer.from(c))
    }), digest)
    assert.deepEqual(Buffer.concat(seen), data)
    assert.equal(await hashAt(file, 0, 0), sha(Buffer.alloc(0)))
    await file.discard()
  })

  /** A killed run of `plan`: the given blobs written and journaled, the rest not. */
  async function killedRun(output: string, plan: Awaited<ReturnType<typeof planFor>>, blobs: Map<string, Buffer>, written: string[]): Promise<void> {
    const file = await laidOut(output, plan)
    const journal = await Journal.start(output, plan.total, plan.partSize)
    for (const b of plan.blobs.filter((x) => written.includes(x.digest))) {
      await file.write([blobs.get(b.digest)!], b.dataOffset)
      await journal.done(b.digest, b.size, b.dataOffset)
    }
    await file.close()
  }

  it('same layout: journaled blobs are re-hashed in place; a damaged one is a miss', async () => {
    const output = path.join(dir, 'same.tar')
    const blobs = blobsOf(70_000, 2000, 900)
    const [a, b, c] = [...blobs.keys()]
    const plan = await planFor(blobs)
    await killedRun(output, plan, blobs, [a, b])
    // flip a byte of b on disk (disk trouble, a meddler)
    const pb = plan.blobs.find((x) => x.digest === b)!
    const raw = await ArchiveFile.create(output, plan.total, plan.partSize, true)
    await raw.write([Buffer.from([blobs.get(b)![0] ^ 0xff])], pb.dataOffset)
    await raw.close()

    const opened = await openPartial(output, plan, await readJournal(output))
    assert.ok(opened.resumed)
    assert.deepEqual(new Set(opened.hints.keys()), new Set([a, b]), 'the journal lines are carried as hints')
    const resumed = opened.resumed
    const at = (d: string) => plan.blobs.find((x) => x.digest === d)!
    assert.equal(await resumed.has(at(a)), true)
    assert.equal(await resumed.has(at(c)), false)
    const chain = new SourceChain([resumed])
    assert.equal((await chain.fill(at(a), opened.file, 'local'))?.origin, 'resumed')
    await assert.rejects(resumed.provide(at(b), {file: opened.file, write: async () => assert.fail('in place: nothing is written')}), SourceMiss)
    assert.deepEqual(await readBlob(opened.file, at(a)), blobs.get(a))
    await resumed.release()
    assert.ok(existsSync(`${output}.partial`), 'the in-place file is the archive itself: kept')
    await opened.file.discard()
  })

  it('another layout: the blobs are moved into their new places (re-hashed), the old file removed', async () => {
    const output = path.join(dir, 'moved.tar')
    const old = blobsOf(40_000, 3000)
    const [a, b] = [...old.keys()]
    const oldPlan = await planFor(old)
    await killedRun(output, oldPlan, old, [a, b])
    const more = new Map([...old, ...blobsOf(5000)])
    const plan = await planFor(more)
    assert.notEqual(plan.total, oldPlan.total)

    const opened = await openPartial(output, plan, await readJournal(output))
    assert.ok(opened.resumed)
    assert.equal(opened.hints.size, 0)
    assert.ok((await readdir(dir)).includes('moved.tar.previous.partial'))
    const chain = new SourceChain([opened.resumed])
    for (const d of [a, b]) {
      const to = plan.blobs.find((x) => x.digest === d)!
      assert.equal((await chain.fill(to, opened.file, 'local'))?.origin, 'resumed')
      assert.deepEqual(await readBlob(opened.file, to), old.get(d))
    }
    await opened.resumed.release()
    assert.ok(!(await readdir(dir)).includes('moved.tar.previous.partial'))
    await opened.file.discard()
  })

  it('a journal without a usable partial file starts afresh; stale aside files are removed', async () => {
    const output = path.join(dir, 'fresh.tar')
    const blobs = blobsOf(1000)
    const plan = await planFor(blobs)
    await killedRun(output, plan, blobs, [...blobs.keys()])
    await rm(`${output}.partial`)
    await writeFile(`${output}.previous.partial`, 'left by a killed move')
    const opened = await openPartial(output, plan, await readJournal(output))
    assert.equal(opened.resumed, undefined)
    assert.ok(!existsSync(`${output}.previous.partial`))
    assert.ok(!existsSync(`${output}.partial.journal`))
    await opened.file.discard()
  })

  it('movePartial (a --keep-going relayout) moves the given blobs over from the live file', async () => {
    const output = path.join(dir, 'kg.tar')
    const blobs = blobsOf(9000, 800, 1200)
    const plan = await planFor(blobs)
    const file = await laidOut(output, plan)
    for (const b of plan.blobs) await file.write([blobs.get(b.digest)!], b.dataOffset)
    const keep = new Map([...blobs].slice(0, 2))
    const smaller = await planFor(keep)
    const places = new Map(plan.blobs.map((b) => [b.digest, {size: b.size, offset: b.dataOffset}]))
    const moved = await movePartial(output, file, places, smaller)
    const chain = new SourceChain([moved.resumed!])
    for (const b of smaller.blobs) assert.equal((await chain.fill(b, moved.file, 'local'))?.origin, 'resumed')
    await moved.resumed!.release()
    const files = await moved.file.commit()
    assert.deepEqual(files, [output])
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('kg.tar')), ['kg.tar'])
  })
})
