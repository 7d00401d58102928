/**
 * Plain verify (no sink) reads the blobs with positional reads on several threads, and starts
 * hashing before the signature has been checked (from bin/run.js, before the CLI has loaded).
 * Whatever the archive, it must come to exactly the verdict of the sequential reader (the path
 * `install` streams through): the same report on success, the same error code and message on
 * failure, on one thread and on several (AIRLOCK_HASH_THREADS), for whole and split archives. The same through the built CLI:
 * test/integration/verify-parallel-cli.test.ts.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import type * as openpgp from 'openpgp'

import {BLOCK} from '../../../../src/transports/archive/tar.js'
import {entries, outcome as outcomeFor, parallelFixture, type Outcome} from '../../../helpers/verify-parallel.js'

let dir: string
let pub: openpgp.Key
let valid: Buffer
let validFile: string

const outcome = (parts: string[], mode: 'sequential' | number): Promise<Outcome> => outcomeFor(pub, parts, mode)

function fixChecksum(h: Buffer): void {
  h.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += h[i]
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
}

/** Tamperings of the valid archive, each named; the blob entries are where the fast path differs. */
function tamperings(buf: Buffer): [string, Buffer][] {
  const out: [string, Buffer][] = []
  const all = entries(buf)
  const blobs = all.filter((e) => e.name.startsWith('blobs/'))
  const last = all.at(-1)!
  const add = (what: string, f: (b: Buffer) => Buffer) => out.push([what, f(Buffer.from(buf))])
  for (const [i, e] of blobs.entries()) {
    const tag = `blob #${i + 1}/${blobs.length} (${e.size} bytes)`
    if (e.size > 0) {
      add(`${tag}: first data byte flipped`, (b) => { b[e.off + BLOCK] ^= 1; return b })
      add(`${tag}: last data byte flipped`, (b) => { b[e.off + BLOCK + e.size - 1] ^= 0x80; return b })
    }
    add(`${tag}: header byte changed, checksum not fixed`, (b) => { b[e.off + 20] ^= 0x41; return b })
    add(`${tag}: header mtime changed, checksum fixed (still valid)`, (b) => { b.write('00000000001\0', e.off + 136, 'latin1'); fixChecksum(b.subarray(e.off, e.off + BLOCK)); return b })
    for (const delta of [-1, 1, 512]) {
      if (e.size + delta < 0) continue
      add(`${tag}: size field ${delta > 0 ? '+' : ''}${delta}`, (b) => {
        b.write((e.size + delta).toString(8).padStart(11, '0') + '\0', e.off + 124, 'latin1')
        fixChecksum(b.subarray(e.off, e.off + BLOCK))
        return b
      })
    }
    add(`${tag}: typeflag symlink`, (b) => { b[e.off + 156] = 0x32; fixChecksum(b.subarray(e.off, e.off + BLOCK)); return b })
    add(`${tag}: renamed to an unknown blob`, (b) => { b.write('f'.repeat(64), e.off + 13, 'latin1'); fixChecksum(b.subarray(e.off, e.off + BLOCK)); return b })
    add(`${tag}: dropped`, (b) => Buffer.concat([b.subarray(0, e.off), b.subarray(e.end)]))
    add(`${tag}: twice`, (b) => Buffer.concat([b.subarray(0, e.end), b.subarray(e.off, e.end), b.subarray(e.end)]))
    add(`${tag}: replaced by a zero block`, (b) => Buffer.concat([b.subarray(0, e.off), Buffer.alloc(BLOCK), b.subarray(e.end)]))
    if (e.end > e.off + BLOCK + e.size) add(`${tag}: padding byte set`, (b) => { b[e.end - 1] = 7; return b })
    for (const at of [e.off + 100, e.off + BLOCK, e.off + BLOCK + Math.floor(e.size / 2), e.end - 1]) {
      add(`${tag}: truncated at ${at - e.off} into the entry`, (b) => b.subarray(0, at))
    }
  }
  for (let i = 0; i + 1 < blobs.length; i++) {
    const [a, c] = [blobs[i], blobs[i + 1]]
    add(`blobs #${i + 1} and #${i + 2} swapped`, (b) => Buffer.concat([b.subarray(0, a.off), b.subarray(c.off, c.end), b.subarray(a.off, c.off), b.subarray(c.end)]))
  }
  add('blob data flipped in the first AND the last blob', (b) => { b[blobs[0].off + BLOCK] ^= 1; b[blobs.at(-1)!.off + BLOCK] ^= 1; return b })
  add('first blob flipped, last blob header broken', (b) => { b[blobs[0].off + BLOCK] ^= 1; b[blobs.at(-1)!.off + 3] ^= 1; return b })
  add('last blob flipped, first blob header broken', (b) => { b[blobs.at(-1)!.off + BLOCK] ^= 1; b[blobs[0].off + 3] ^= 1; return b })
  add('end-of-archive marker: first block not zero', (b) => { b[last.end + 10] = 1; return b })
  add('end-of-archive marker: second block not zero', (b) => { b[last.end + BLOCK + 10] = 1; return b })
  add('data after the end-of-archive marker', (b) => Buffer.concat([b, Buffer.from('garbage'), Buffer.alloc(BLOCK)]))
  add('zero padding after the end-of-archive marker (accepted)', (b) => Buffer.concat([b, Buffer.alloc(10 * BLOCK)]))
  add('no end-of-archive marker', (b) => b.subarray(0, last.end))
  add('half an end-of-archive marker', (b) => b.subarray(0, last.end + BLOCK))
  add('an extra entry after the last blob', (b) => Buffer.concat([b.subarray(0, last.end), b.subarray(blobs[0].off, blobs[0].end), b.subarray(last.end)]))
  const idx = all.find((e) => e.name === 'index.json')!
  if (idx.end > idx.off + BLOCK + idx.size) add('a head entry\'s padding byte set', (b) => { b[idx.end - 1] = 9; return b })
  add('a signed head entry flipped', (b) => { b[all.find((e) => e.name === 'index.json')!.off + BLOCK + 3] ^= 1; return b })
  return out
}

describe('plain verify on several threads agrees with the sequential reader', {timeout: 300_000}, () => {
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-parallel-'))
    const fixture = await parallelFixture(dir)
    pub = fixture.pub
    valid = fixture.valid
    validFile = fixture.validFile
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('reports a valid archive exactly as the sequential reader does', async () => {
    const want = await outcome([validFile], 'sequential')
    assert.ok('ok' in want, JSON.stringify(want))
    for (const threads of [1, 2, 3]) assert.deepEqual(await outcome([validFile], threads), want, `${threads} threads`)
  })

  it('refuses every tampering with the same code and message, on one thread and on three', async () => {
    const file = path.join(dir, 'case.tar')
    const cases = tamperings(valid)
    assert.ok(cases.length > 100)
    const problems: string[] = []
    let refused = 0
    for (const [what, bytes] of cases) {
      await writeFile(file, bytes)
      const want = await outcome([file], 'sequential')
      if ('error' in want) refused++
      for (const threads of [1, 3]) {
        const got = await outcome([file], threads)
        if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`${what}, ${threads} threads:\n  sequential: ${JSON.stringify(want)}\n  fast:       ${JSON.stringify(got)}`)
      }
    }
    assert.deepEqual(problems, [])
    assert.ok(refused > cases.length - 20, `only ${refused} of ${cases.length} refused`)
  })

  it('non-zero padding after an entry is refused, naming the entry, on every path', async () => {
    const file = path.join(dir, 'pad.tar')
    const blob = entries(valid).find((e) => e.name.startsWith('blobs/') && e.end > e.off + BLOCK + e.size)!
    const bytes = Buffer.from(valid)
    bytes[blob.end - 1] = 0x5a
    await writeFile(file, bytes)
    for (const mode of ['sequential', 1, 3] as const) {
      const got = await outcome([file], mode)
      assert.ok('error' in got && got.error.startsWith(`archive.bad_padding: ${blob.name}:`), `${mode}: ${JSON.stringify(got)}`)
    }
  })

  it('a split archive: the same verdicts across parts (valid, a byte flipped in the last part, a part cut short)', async () => {
    const parts = (await readdir(dir)).filter((n) => /^split\.tar\.\d{3}$/.test(n)).sort().map((n) => path.join(dir, n))
    assert.ok(parts.length >= 3, `${parts.length} parts`)
    const want = await outcome(parts, 'sequential')
    assert.ok('ok' in want, JSON.stringify(want))
    for (const threads of [1, 3]) assert.deepEqual(await outcome(parts, threads), want)

    const lastPart = parts.at(-1)!
    const original = await readFile(lastPart)
    try {
      const flipped = Buffer.from(original)
      flipped[Math.floor(flipped.length / 3)] ^= 1
      await writeFile(lastPart, flipped)
      const bad = await outcome(parts, 'sequential')
      assert.ok('error' in bad && /digest_mismatch/.test(bad.error), JSON.stringify(bad))
      for (const threads of [1, 3]) assert.deepEqual(await outcome(parts, threads), bad)

      const middle = parts[1]
      const mid = await readFile(middle)
      await writeFile(lastPart, original)
      await writeFile(middle, mid.subarray(0, mid.length - 1000))
      try {
        const short = await outcome(parts, 'sequential')
        assert.ok('error' in short, JSON.stringify(short))
        for (const threads of [1, 3]) assert.deepEqual(await outcome(parts, threads), short)
      } finally {
        await writeFile(middle, mid)
      }
    } finally {
      await writeFile(lastPart, original)
    }
  })
})
