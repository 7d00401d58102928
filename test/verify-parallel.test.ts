/**
 * Plain verify (no sink) reads the blobs with positional reads on several threads, and starts
 * hashing before the signature has been checked (from bin/run.js, before the CLI has loaded).
 * Whatever the archive, it must come to exactly the verdict of the sequential reader (the path
 * `install` streams through): the same report on success, the same error code and message on
 * failure, on one thread and on several (AIRLOCK_HASH_THREADS), for whole and split archives.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import * as openpgp from 'openpgp'

import {VerifyError} from '../src/core/errors.js'
import {generateKeyPair} from '../src/sign/keys.js'
import {HASH_CHUNK} from '../src/blob/sizes.js'
import {readArchive} from '../src/transports/archive/reader.js'
import {BLOCK, paddingFor} from '../src/transports/archive/tar.js'
import {archiveArgument} from '../src/verify/early.js'
import {randomLayer, splitTar, syntheticArchive} from './helpers/archive.js'
import {BIN, runCli} from './helpers/cli.js'

let dir: string
let pub: openpgp.Key
let pubFile: string
let valid: Buffer
let validFile: string

type Outcome = {ok: unknown} | {error: string}

/** The verdict of readArchive on `parts`: sequentially (through an empty sink) or fast on `threads` threads. */
async function outcome(parts: string[], mode: 'sequential' | number): Promise<Outcome> {
  const prev = process.env.AIRLOCK_HASH_THREADS
  if (mode !== 'sequential') process.env.AIRLOCK_HASH_THREADS = String(mode)
  try {
    const r = await readArchive(parts, {trustedKeys: [pub], ...(mode === 'sequential' ? {sink: {}} : {})})
    return {ok: {entries: r.entries, blobs: r.blobs, bytes: r.bytes, locations: [...r.head.locations]}}
  } catch (error) {
    if (!(error instanceof VerifyError)) return {error: `NOT A VerifyError: ${(error as Error).stack}`}
    return {error: `${error.code}: ${error.message}`}
  } finally {
    if (prev === undefined) delete process.env.AIRLOCK_HASH_THREADS
    else process.env.AIRLOCK_HASH_THREADS = prev
  }
}

interface Hdr {
  name: string
  off: number
  size: number
  end: number
}

function entries(buf: Buffer): Hdr[] {
  return splitTar(buf).map((e) => ({name: e.name, off: e.offset!, size: e.data.length, end: e.offset! + BLOCK + e.data.length + paddingFor(e.data.length)}))
}

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
    const kp = await generateKeyPair({name: 'Parallel Test'})
    pub = await openpgp.readKey({armoredKey: kp.publicKeyArmored})
    pubFile = path.join(dir, 'pub.asc')
    await writeFile(pubFile, kp.publicKeyArmored)
    const key = await openpgp.readPrivateKey({armoredKey: kp.privateKeyArmored})
    // Layers of several reads (HASH_CHUNK), of exactly one, of less than one, a small one, an empty one.
    assert.equal(HASH_CHUNK, 1_048_576, 'the layer sizes below are chosen around one read')
    const images = [
      {name: 'parallel.test/a:1', layers: [randomLayer(2_700_000), randomLayer(700), Buffer.alloc(0)]},
      {name: 'parallel.test/b:1', layers: [randomLayer(600_000), randomLayer(1_048_576), randomLayer(3000)]},
    ]
    validFile = path.join(dir, 'valid.tar')
    await syntheticArchive(path.join(dir, 'blobs'), validFile, images, {key})
    valid = await readFile(validFile)
    await syntheticArchive(path.join(dir, 'blobs'), path.join(dir, 'split.tar'), images, {key, partSize: 300_000})
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

  it('the CLI (early start from bin/run.js) verifies on several threads and names the damaged last blob', async () => {
    const env = {...process.env, AIRLOCK_HASH_THREADS: '3'}
    let r = runCli(['verify', validFile, '--key', pubFile], {env})
    assert.equal(r.code, 0, JSON.stringify(r))
    assert.match(r.stdout, /^OK .*2 images, \d+ blobs/)
    r = runCli(['verify', '--json', validFile, '-k', pubFile], {env})
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as {ok: boolean}).ok, true)

    const blobs = entries(valid).filter((e) => e.name.startsWith('blobs/'))
    const lastBlob = blobs.at(-1)!
    const bad = Buffer.from(valid)
    bad[lastBlob.off + BLOCK + lastBlob.size - 1] ^= 1
    const badFile = path.join(dir, 'bad-last.tar')
    await writeFile(badFile, bad)
    const want = await outcome([badFile], 'sequential')
    assert.ok('error' in want)
    for (const threads of ['1', '2', '3']) {
      r = runCli(['verify', badFile, '--key', pubFile], {env: {...process.env, AIRLOCK_HASH_THREADS: threads}})
      assert.equal(r.code, 3, r.stderr)
      assert.equal(r.stderr.trim(), `error: ${want.error.replace(/^[^:]+: /, '')}`)
    }

    // A bad signature is what is reported, however far the hashing got meanwhile.
    const otherKey = await generateKeyPair({name: 'Someone Else'})
    const otherFile = path.join(dir, 'other.asc')
    await writeFile(otherFile, otherKey.publicKeyArmored)
    r = runCli(['verify', badFile, '--key', otherFile], {env})
    assert.equal(r.code, 3)
    assert.match(r.stderr, /not among the trusted keys/)

    // A key problem is reported before anything about the archive.
    r = runCli(['verify', path.join(dir, 'nope.tar'), '--key', path.join(dir, 'nope.asc')], {env})
    assert.equal(r.code, 2)
    assert.match(r.stderr, /trusted key not found/)

    const parts = (await readdir(dir)).filter((n) => /^split\.tar\.\d{3}$/.test(n)).sort()
    r = runCli(['verify', path.join(dir, parts[0]), '--key', pubFile], {env})
    assert.equal(r.code, 0, r.stderr)

    // A pipe is not a file to read at offsets: it is read front to back, as before.
    const viaPipe = (file: string) => spawnSync('sh', ['-c', 'cat "$1" | "$2" "$3" verify /dev/stdin --key "$4"', 'sh', file, process.execPath, BIN, pubFile], {env, encoding: 'utf8'})
    const piped = viaPipe(validFile)
    assert.equal(piped.status, 0, piped.stderr)
    const pipedBad = viaPipe(badFile)
    assert.equal(pipedBad.status, 3)
    assert.equal(pipedBad.stderr.trim(), `error: ${want.error.replace(/^[^:]+: /, '')}`)
  })

  it('reads the archive argument of `verify` from the command line as oclif would', () => {
    assert.equal(archiveArgument(['a.tar', '--key', 'k.asc']), 'a.tar')
    assert.equal(archiveArgument(['a.tar', '--key', 'k.asc', '--key', 'k2.asc', '--json']), 'a.tar')
    assert.equal(archiveArgument(['--json', 'a.tar', '-k', 'k.asc']), 'a.tar')
    assert.equal(archiveArgument(['--allow-unsigned', 'a.tar']), 'a.tar')
    assert.equal(archiveArgument(['--key=k.asc', '--json', 'a.tar']), 'a.tar')
    assert.equal(archiveArgument(['-kk.asc', '--json', 'a.tar']), 'a.tar')
    assert.equal(archiveArgument(['--key', 'k.asc', '--', 'a.tar']), 'a.tar')
    // --key takes one value per flag: the word after that value is the archive.
    assert.equal(archiveArgument(['--key', 'k.asc', 'a.tar']), 'a.tar')
    assert.equal(archiveArgument(['--key=k.asc', 'a.tar']), 'a.tar')
    assert.equal(archiveArgument(['--key', 'k.asc', 'k2.asc', 'a.tar']), undefined) // oclif refuses the extra argument
    assert.equal(archiveArgument(['a.tar', '--help']), undefined)
    assert.equal(archiveArgument(['a.tar', 'b.tar']), undefined)
    assert.equal(archiveArgument(['a.tar', '--frobnicate']), undefined)
    assert.equal(archiveArgument(['--key', 'k.asc']), undefined)
  })
})
