import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {mkdir, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {BlobCache, defaultCacheDir} from '../../../src/copy/cache.js'
import {CacheSource} from '../../../src/copy/cache-source.js'
import {SourceChain, SourceMiss} from '../../../src/copy/source.js'
import {blobsOf, fakeSource, laidOut, planFor, readBlob, tempDir} from '../create/fixtures.js'

describe('blob cache', () => {
  let dir: string
  before(async () => {
    dir = await tempDir()
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('its default place comes from what the caller passes, not from the environment', () => {
    assert.equal(defaultCacheDir('/x/cache', '/home/u'), path.join('/x/cache', 'airlock'))
    assert.equal(defaultCacheDir(undefined, '/home/u'), path.join('/home/u', '.cache', 'airlock'))
    assert.equal(defaultCacheDir('', '/home/u'), path.join('/home/u', '.cache', 'airlock'))
  })

  it('a writer becomes an entry only on commit; abort leaves nothing', async () => {
    const cache = new BlobCache(path.join(dir, 'w'))
    const [[digest, data]] = [...blobsOf(3000)]
    const w = await cache.writer(digest)
    await w.write([data.subarray(0, 1000), data.subarray(1000)])
    assert.equal(await cache.has(digest, data.length), false)
    await w.commit()
    assert.equal(await cache.has(digest, data.length), true)
    assert.equal(await cache.has(digest, data.length + 1), false, 'a size mismatch is not a hit')
    assert.deepEqual(await readFile(cache.path(digest)), data)
    const [[other]] = [...blobsOf(10)]
    const aborted = await cache.writer(other)
    await aborted.write([Buffer.from('partial')])
    await aborted.abort()
    assert.equal(existsSync(cache.path(other)), false)
    assert.deepEqual(await readdir(path.join(dir, 'w', 'tmp')), [])
  })

  it('cleanStale removes temp files of dead processes only', async () => {
    const cache = new BlobCache(path.join(dir, 's'))
    const tmp = path.join(dir, 's', 'tmp')
    await mkdir(tmp, {recursive: true})
    const hex = 'a'.repeat(64)
    await writeFile(path.join(tmp, `${hex}.999999999.abcd`), 'x') // no such pid
    await writeFile(path.join(tmp, 'junk'), 'x')
    await writeFile(path.join(tmp, `${hex}.${process.pid}.beef`), 'x') // ours: kept
    assert.equal(await cache.cleanStale(), 2)
    assert.deepEqual(await readdir(tmp), [`${hex}.${process.pid}.beef`])
  })

  it('as a source: a sound entry is copied into its place, re-hashed on the way', async () => {
    const cache = new BlobCache(path.join(dir, 'src'))
    const blobs = blobsOf(5000)
    const [[digest, data]] = [...blobs]
    await cache.putBytes(digest, data)
    const plan = await planFor(blobs)
    const file = await laidOut(path.join(dir, 'good.tar'), plan)
    const source = new CacheSource(cache)
    assert.equal(await source.has(plan.blobs[0]), true)
    const chain = new SourceChain([source])
    assert.equal((await chain.fill(plan.blobs[0], file, 'local'))?.origin, 'cache')
    assert.deepEqual(await readBlob(file, plan.blobs[0]), data)
    await file.discard()
  })

  it('as a source: a corrupt entry is removed, reported and the next source is tried', async () => {
    const cache = new BlobCache(path.join(dir, 'bad'))
    const blobs = blobsOf(4000)
    const [[digest, data]] = [...blobs]
    await cache.putBytes(digest, data)
    const damaged = Buffer.from(data)
    damaged[17] ^= 0xff
    await writeFile(cache.path(digest), damaged) // same size: `has` still says yes
    const plan = await planFor(blobs)
    const file = await laidOut(path.join(dir, 'bad.tar'), plan)
    const source = new CacheSource(cache)
    await assert.rejects(source.provide(plan.blobs[0], {file, write: async () => {}}), (e: unknown) =>
      e instanceof SourceMiss && /cached blob .* is corrupt/.test(e.warning ?? '') && /pulling it again/.test(e.warning ?? ''))
    assert.equal(existsSync(cache.path(digest)), false, 'the corrupt entry was not removed')

    // In a chain: the cache misses, the registry (next) provides the blob.
    await writeFile(cache.path(digest), damaged)
    const log: string[] = []
    const warnings: string[] = []
    const chain = new SourceChain([source, fakeSource('registry', blobs, log, {remote: true, fresh: true})], {
      keep: cache, onMiss: (m) => warnings.push(m.warning ?? ''),
    })
    assert.equal(await chain.fill(plan.blobs[0], file, 'local'), undefined)
    assert.equal(warnings.length, 1)
    assert.equal((await chain.fill(plan.blobs[0], file, 'remote'))?.origin, 'registry')
    assert.deepEqual(await readBlob(file, plan.blobs[0]), data)
    assert.deepEqual(await readFile(cache.path(digest)), data, 'the pulled blob replaced the cache entry')
    await file.discard()
  })

  it('putBytes refuses bytes that do not match their digest', async () => {
    const cache = new BlobCache(path.join(dir, 'p'))
    const [[digest]] = [...blobsOf(10)]
    await assert.rejects(cache.putBytes(digest, Buffer.from('something else')), /refusing to cache/)
  })
})
