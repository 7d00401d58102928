/**
 * The content-addressed blob cache (src/copy/cache.ts): entries appear under their digest only
 * complete, by rename; a short entry is not a hit and is replaced; temp files of dead runs go.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {mkdir, mkdtemp, readdir, readFile, rm, truncate, utimes, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {after, before, describe, it} from 'node:test'

import {BlobCache} from '../../../src/copy/cache.js'
import {AirlockError} from '../../../src/core/errors.js'

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

let root: string
let n = 0
/** A fresh, empty cache folder for each test. */
const freshCache = () => new BlobCache(path.join(root, `cache-${n++}`))

describe('BlobCache: put, look up, corrupt entries, stale temp files', () => {
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'airlock-cache-'))
  })
  after(async () => {
    await rm(root, {recursive: true, force: true})
  })

  it('putBytes stores a blob under blobs/sha256/HEX; has() needs the right size; no temp file is left', async () => {
    const cache = freshCache()
    const data = randomBytes(5000)
    const digest = sha(data)
    assert.equal(cache.path(digest), path.join(cache.dir, 'blobs', 'sha256', digest.slice(7)))
    assert.equal(await cache.has(digest, data.length), false)
    await cache.putBytes(digest, data)
    assert.equal(await cache.has(digest, data.length), true)
    assert.equal(await cache.has(digest, data.length + 1), false)
    assert.ok((await readFile(cache.path(digest))).equals(data))
    assert.deepEqual(await readdir(path.join(cache.dir, 'tmp')), [])
  })

  it('putBytes refuses bytes that do not match the digest, and stores nothing', async () => {
    const cache = freshCache()
    const data = randomBytes(100)
    const wrong = sha(Buffer.from('something else'))
    await assert.rejects(cache.putBytes(wrong, data), (e: unknown) => e instanceof AirlockError && e.code === 'cache.digest_mismatch' && e.message.includes(wrong))
    assert.equal(await cache.has(wrong, data.length), false)
  })

  it('a truncated entry on disk is not a hit, and putting the blob again replaces it whole', async () => {
    const cache = freshCache()
    const data = randomBytes(4096)
    const digest = sha(data)
    await cache.putBytes(digest, data)
    await truncate(cache.path(digest), 1000)
    assert.equal(await cache.has(digest, data.length), false)
    await cache.putBytes(digest, data)
    assert.equal(await cache.has(digest, data.length), true)
    assert.ok((await readFile(cache.path(digest))).equals(data))
  })

  it('a folder where an entry should be is not a hit', async () => {
    const cache = freshCache()
    const digest = sha(Buffer.from('x'))
    await mkdir(cache.path(digest), {recursive: true})
    assert.equal(await cache.has(digest, 0), false)
  })

  it('putStream renames into place only after the stream ended cleanly; a failing stream leaves no entry and no temp file', async () => {
    const cache = freshCache()
    const data = randomBytes(300_000)
    const digest = sha(data)
    let counted = 0
    await cache.putStream(digest, Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), (b) => { counted += b })
    assert.equal(counted, data.length)
    assert.ok((await readFile(cache.path(digest))).equals(data))

    const other = randomBytes(200_000)
    const otherDigest = sha(other)
    async function* failing() {
      yield other.subarray(0, 50_000)
      throw new Error('digest mismatch upstream')
    }
    await assert.rejects(cache.putStream(otherDigest, Readable.from(failing())), /digest mismatch upstream/)
    assert.equal(await cache.has(otherDigest, other.length), false)
    await assert.rejects(readFile(cache.path(otherDigest)), {code: 'ENOENT'})
    assert.deepEqual(await readdir(path.join(cache.dir, 'tmp')), [])
  })

  it('writer(): nothing under the digest before commit(); commit() makes the entry; abort() leaves nothing', async () => {
    const cache = freshCache()
    const data = randomBytes(70_000)
    const digest = sha(data)
    const w = await cache.writer(digest)
    await w.write([data.subarray(0, 10), data.subarray(10, 40_000)])
    await w.write([data.subarray(40_000)])
    assert.equal(await cache.has(digest, data.length), false, 'visible before commit')
    await w.commit()
    assert.ok((await readFile(cache.path(digest))).equals(data))

    const other = randomBytes(1000)
    const a = await cache.writer(sha(other))
    await a.write([other])
    await a.abort()
    assert.equal(await cache.has(sha(other), other.length), false)
    assert.deepEqual(await readdir(path.join(cache.dir, 'tmp')), [])
  })

  it('cleanStale removes temp files of dead runs, foreign names and old files; keeps its own and a live run\'s fresh ones', async () => {
    const cache = freshCache()
    const tmp = path.join(cache.dir, 'tmp')
    await mkdir(tmp, {recursive: true})
    const hex = 'a'.repeat(64)
    // a process that has exited: its pid is (almost surely) not running any more
    const gone = spawn(process.execPath, ['-e', ''])
    const deadPid = gone.pid!
    await new Promise((r) => gone.once('exit', r))
    // a live node process
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'])
    try {
      const names = {
        dead: `${hex}.${deadPid}.0a0b`,
        own: `${hex}.${process.pid}.0c0d`,
        live: `${hex}.${live.pid}.0e0f`,
        liveOld: `${'b'.repeat(64)}.${live.pid}.1a1b`,
        foreign: 'not-a-temp-file',
      }
      for (const name of Object.values(names)) await writeFile(path.join(tmp, name), 'partial')
      const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000)
      await utimes(path.join(tmp, names.liveOld), twoDaysAgo, twoDaysAgo)
      await utimes(path.join(tmp, names.own), twoDaysAgo, twoDaysAgo) // ours however old: this run may still be writing it
      assert.equal(await cache.cleanStale(), 3)
      assert.deepEqual((await readdir(tmp)).sort(), [names.live, names.own].sort())
    } finally {
      live.kill('SIGKILL')
    }
    assert.equal(await freshCache().cleanStale(), 0, 'a cache without a tmp folder')
  })
})
