import assert from 'node:assert/strict'
import {readFile, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {AirlockError} from '../../../src/core/errors.js'
import type {Progress} from '../../../src/core/progress.js'
import {BlobCache} from '../../../src/copy/cache.js'
import {CacheSource} from '../../../src/copy/cache-source.js'
import {SourceChain} from '../../../src/copy/source.js'
import {fillArchive} from '../../../src/create/fill.js'
import {Journal, journalPath, readJournal} from '../../../src/create/journal.js'
import {openPartial} from '../../../src/create/partial.js'
import {MemorySource} from '../../../src/create/sources.js'
import {blobsOf, fakeSource, laidOut, planFor, readBlob, tempDir} from './fixtures.js'

function recorder(): Progress & {events: string[]} {
  const events: string[] = []
  return {events, begin: (n, l) => events.push(`begin ${l} ${n}`), advance() {}, note: (m) => events.push(`note ${m}`), end: () => events.push('end')}
}

describe('filling an archive from the chained sources', () => {
  let dir: string
  before(async () => {
    dir = await tempDir()
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('resumed, then memory, then cache, then registry; counts bytes per origin and journals each blob', async () => {
    const output = path.join(dir, 'all.tar')
    const blobs = blobsOf(10_000, 20_000, 30_000, 40_000, 50_000)
    const [resumed, inMemory, cached, corrupt, pulled] = [...blobs.keys()]
    const plan = await planFor(blobs)
    const size = (d: string) => blobs.get(d)!.length

    // An interrupted run that had written `resumed`.
    const killed = await laidOut(output, plan)
    const pr = plan.blobs.find((b) => b.digest === resumed)!
    await killed.write([blobs.get(resumed)!], pr.dataOffset)
    await (await Journal.start(output, plan.total)).done(resumed, pr.size, pr.dataOffset)
    await killed.close()

    const cache = new BlobCache(path.join(dir, 'cache'))
    for (const d of [cached, corrupt]) await cache.putBytes(d, blobs.get(d)!)
    const bad = Buffer.from(blobs.get(corrupt)!)
    bad[0] ^= 1
    await writeFile(cache.path(corrupt), bad)

    const opened = await openPartial(output, plan, await readJournal(output))
    const journal = await Journal.start(output, plan.total, plan.partSize, opened.hints)
    const log: string[] = []
    const progress = recorder()
    const chain = new SourceChain([
      opened.resumed!,
      new MemorySource(new Map([[inMemory, blobs.get(inMemory)!]])),
      new CacheSource(cache),
      fakeSource('registry', blobs, log, {remote: true, fresh: true}),
    ], {keep: cache, onMiss: (m) => m.warning && progress.note(`WARNING: ${m.warning}`)})
    let pull: {blobs: number; bytes: number} | undefined
    const r = await fillArchive({
      file: opened.file, blobs: plan.blobs, chain, journal, journaled: opened.hints, jobs: 3, progress, keepGoing: false,
      beforePull: (p) => (pull = p),
    })
    assert.deepEqual(r.tally, {resumed: size(resumed), memory: size(inMemory), cache: size(cached), registry: size(corrupt) + size(pulled), file: 0})
    assert.deepEqual(pull, {blobs: 2, bytes: size(corrupt) + size(pulled)}, 'the corrupt cache entry is counted to pull')
    assert.equal(r.failed.size, 0)
    assert.deepEqual(log.filter((l) => l.includes('provide')).sort(), [corrupt, pulled].map((d) => `registry:provide:${d.slice(7, 15)}`).sort())
    assert.ok(progress.events.some((e) => /^note WARNING: cached blob .* is corrupt/.test(e)), progress.events.join('\n'))
    assert.deepEqual(progress.events.filter((e) => !e.startsWith('note')), [`begin pulling ${size(corrupt) + size(pulled)}`, 'end'])
    for (const b of plan.blobs) assert.deepEqual(await readBlob(opened.file, b), blobs.get(b.digest))
    // the pulled and in-memory blobs went into the cache too, the bad entry replaced
    for (const d of [inMemory, corrupt, pulled]) assert.deepEqual(await readFile(cache.path(d)), blobs.get(d))
    // every blob is in the journal exactly once, except those from memory (rewritten from memory by a rerun)
    const lines = (await readFile(journalPath(output), 'utf8')).trim().split('\n').slice(1).map((l) => l.split(' ')[0]).sort()
    assert.deepEqual(lines, [...blobs.keys()].filter((d) => d !== inMemory).sort())
    await journal.remove()
    await opened.file.discard()
  })

  it('a failed pull is reported; without keepGoing the queued blobs are skipped, with it they are pulled', async () => {
    const blobs = blobsOf(1000, 2000, 3000, 4000)
    const [failing] = [...blobs.keys()].sort()
    const plan = await planFor(blobs)
    for (const keepGoing of [false, true]) {
      const output = path.join(dir, `kg-${keepGoing}.tar`)
      const file = await laidOut(output, plan)
      const journal = await Journal.start(output, plan.total)
      const log: string[] = []
      const registry = fakeSource('registry', blobs, log, {remote: true})
      const flaky = {...registry, async provide(b: Parameters<typeof registry.provide>[0], t: Parameters<typeof registry.provide>[1]) {
        if (b.digest === failing) throw new AirlockError('registry.not_found', 'gone')
        return registry.provide(b, t)
      }}
      const r = await fillArchive({file, blobs: plan.blobs, chain: new SourceChain([flaky]), journal, journaled: new Map(), jobs: 1, progress: recorder(), keepGoing})
      assert.deepEqual([...r.failed], [[failing, 'gone']])
      assert.equal(r.filled.size, keepGoing ? 3 : 0, `keepGoing ${keepGoing}`)
      await journal.remove()
      await file.discard()
    }
  })

  it('an error that is not a pull failure (e.g. the disk) fails the fill', async () => {
    const blobs = blobsOf(1000)
    const plan = await planFor(blobs)
    const output = path.join(dir, 'hard.tar')
    const file = await laidOut(output, plan)
    const journal = await Journal.start(output, plan.total)
    const chain = new SourceChain([fakeSource('memory', blobs, [], {fail: Object.assign(new Error('no space'), {code: 'ENOSPC'})})])
    await assert.rejects(fillArchive({file, blobs: plan.blobs, chain, journal, journaled: new Map(), jobs: 2, progress: recorder(), keepGoing: true}), /no space/)
    await journal.remove()
    await file.discard()
  })
})
