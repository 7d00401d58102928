import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {readdir, readFile, rm} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {AirlockError} from '../../../src/core/errors.js'
import {BlobCache} from '../../../src/copy/cache.js'
import {SourceChain, SourceMiss} from '../../../src/copy/source.js'
import {blobsOf, fakeSource, laidOut, planFor, readBlob, tempDir} from '../create/fixtures.js'

describe('SourceChain', () => {
  let dir: string
  before(async () => {
    dir = await tempDir()
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('asks the sources in chain order and takes the blob from the first that has it', async () => {
    const blobs = blobsOf(1000, 3000)
    const [a, b] = [...blobs.keys()]
    const plan = await planFor(blobs)
    const file = await laidOut(path.join(dir, 'order.tar'), plan)
    const log: string[] = []
    const chain = new SourceChain([
      fakeSource('resumed', new Map(), log),
      fakeSource('memory', new Map([[b, blobs.get(b)!]]), log),
      fakeSource('cache', blobs, log),
      fakeSource('registry', blobs, log, {remote: true}),
    ])
    const pa = plan.blobs.find((x) => x.digest === a)!
    const pb = plan.blobs.find((x) => x.digest === b)!
    assert.equal((await chain.fill(pa, file, 'local'))?.origin, 'cache')
    assert.equal((await chain.fill(pb, file, 'local'))?.origin, 'memory')
    const s = (d: string) => d.slice(7, 15)
    assert.deepEqual(log, [
      `resumed:has:${s(a)}`, `memory:has:${s(a)}`, `cache:has:${s(a)}`, `cache:provide:${s(a)}`,
      `resumed:has:${s(b)}`, `memory:has:${s(b)}`, `memory:provide:${s(b)}`,
    ])
    assert.deepEqual(await readBlob(file, pa), blobs.get(a))
    assert.deepEqual(await readBlob(file, pb), blobs.get(b))
    await file.discard()
  })

  it('local fills never reach a remote source, remote fills skip the local ones', async () => {
    const blobs = blobsOf(500)
    const plan = await planFor(blobs)
    const file = await laidOut(path.join(dir, 'reach.tar'), plan)
    const log: string[] = []
    const chain = new SourceChain([fakeSource('cache', blobs, log), fakeSource('registry', blobs, log, {remote: true})])
    const chainNoLocal = new SourceChain([fakeSource('registry', blobs, log, {remote: true})])
    assert.equal(await chainNoLocal.fill(plan.blobs[0], file, 'local'), undefined)
    assert.equal((await chain.fill(plan.blobs[0], file, 'remote'))?.origin, 'registry')
    assert.ok(!log.some((l) => l.startsWith('cache')), log.join(' '))
    await file.discard()
  })

  it('a SourceMiss falls through to the next source and is reported; any other error fails the fill', async () => {
    const blobs = blobsOf(800)
    const plan = await planFor(blobs)
    const file = await laidOut(path.join(dir, 'miss.tar'), plan)
    const log: string[] = []
    const misses: string[] = []
    const chain = new SourceChain([
      fakeSource('cache', blobs, log, {fail: new SourceMiss('bad entry', 'cached blob is corrupt')}),
      fakeSource('registry', blobs, log, {remote: true}),
    ], {onMiss: (m, s) => misses.push(`${s.origin}: ${m.warning}`)})
    assert.equal(await chain.fill(plan.blobs[0], file, 'local'), undefined)
    assert.deepEqual(misses, ['cache: cached blob is corrupt'])
    assert.equal((await chain.fill(plan.blobs[0], file, 'remote'))?.origin, 'registry')
    assert.deepEqual(await readBlob(file, plan.blobs[0]), [...blobs.values()][0])

    const failing = new SourceChain([fakeSource('registry', blobs, log, {remote: true, fail: new AirlockError('registry.unreachable', 'down')})])
    await assert.rejects(failing.fill(plan.blobs[0], file, 'remote'), /down/)
    await file.discard()
  })

  it('fresh bytes are kept in the cache (entry only after the blob is complete); a failed provide leaves no temp file', async () => {
    const blobs = blobsOf(2000, 100)
    const [good, bad] = [...blobs.keys()]
    const plan = await planFor(blobs)
    const file = await laidOut(path.join(dir, 'tee.tar'), plan)
    const cache = new BlobCache(path.join(dir, 'cache'))
    const log: string[] = []
    const chain = new SourceChain([
      fakeSource('cache', new Map(), log),
      fakeSource('registry', new Map([[good, blobs.get(good)!]]), log, {remote: true, fresh: true}),
    ], {keep: cache})
    await chain.fill(plan.blobs.find((b) => b.digest === good)!, file, 'remote')
    assert.deepEqual(await readFile(cache.path(good)), blobs.get(good))

    const broken = new SourceChain([fakeSource('registry', blobs, log, {remote: true, fresh: true, fail: new AirlockError('registry.size_mismatch', 'cut off')})], {keep: cache})
    await assert.rejects(broken.fill(plan.blobs.find((b) => b.digest === bad)!, file, 'remote'))
    assert.ok(!existsSync(cache.path(bad)))
    assert.deepEqual(await readdir(path.join(dir, 'cache', 'tmp')), [])

    // A source that is not fresh (e.g. the cache itself) is not copied into the cache.
    const other = new BlobCache(path.join(dir, 'cache2'))
    const local = new SourceChain([fakeSource('resumed', blobs, log)], {keep: other})
    await local.fill(plan.blobs[0], file, 'local')
    assert.ok(!existsSync(path.join(dir, 'cache2')))
    await file.discard()
  })
})
