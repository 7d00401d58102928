/**
 * Hostile archives: a seeded fuzz/property test. A valid signed archive is mutated (header fields,
 * sizes, names, types, order, truncation, huge declared sizes, duplicates, PAX 'x'/'g', GNU 'L',
 * prefix-field names, base-256 sizes, bad checksums, non-zero trailer, flipped data bytes) and
 * every case must be refused by readArchive with a VerifyError: never a crash, a hang (per-case
 * timeout), unbounded memory, or a write outside the target. A sample also goes through the CLI
 * (`verify`, `install --to oci:`).
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import * as openpgp from 'openpgp'

import {VerifyError} from '../src/core/errors.js'
import {generateKeyPair} from '../src/sign/keys.js'
import {readArchive} from '../src/transports/archive/reader.js'
import {BLOCK, paddingFor} from '../src/transports/archive/tar.js'
import {syntheticArchive} from './helpers/archive.js'
import {BIN as bin} from './helpers/cli.js'

const SEED = 0xa1c0ffee
const CASES = 320
const CASE_TIMEOUT_MS = 5000

let dir: string
let valid: Buffer
let pub: openpgp.Key
let pubFile: string

/** mulberry32: small, fast, seeded. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Hdr {
  off: number
  size: number
}

/** Header offsets of our (trusted) archive. */
function headers(buf: Buffer): Hdr[] {
  const out: Hdr[] = []
  let off = 0
  while (off + BLOCK <= buf.length && !buf.subarray(off, off + BLOCK).every((b) => b === 0)) {
    const size = Number.parseInt(buf.toString('latin1', off + 124, off + 135), 8)
    out.push({off, size})
    off += BLOCK + size + paddingFor(size)
  }
  return out
}

function fixChecksum(h: Buffer): void {
  h.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += h[i]
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
}

function header(name: string, size: number, type: string, prefix = ''): Buffer {
  const h = Buffer.alloc(BLOCK)
  h.write(name.slice(0, 100), 0, 'utf8')
  h.write('0000644\0', 100, 'latin1')
  h.write('0000000\0', 108, 'latin1')
  h.write('0000000\0', 116, 'latin1')
  h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1')
  h.write('00000000000\0', 136, 'latin1')
  h[156] = type.charCodeAt(0)
  h.write('ustar\0', 257, 'latin1')
  h.write('00', 263, 'latin1')
  if (prefix) h.write(prefix.slice(0, 155), 345, 'utf8')
  fixChecksum(h)
  return h
}

function entry(name: string, data: Buffer, type = '0', prefix = ''): Buffer {
  return Buffer.concat([header(name, data.length, type, prefix), data, Buffer.alloc(paddingFor(data.length))])
}

type Mutation = (buf: Buffer, r: () => number) => Buffer

const pick = <T>(r: () => number, xs: T[]): T => xs[Math.floor(r() * xs.length)]

const MUTATIONS: Record<string, Mutation> = {
  headerGarbage(b, r) {
    const h = pick(r, headers(b))
    const i = h.off + Math.floor(r() * BLOCK)
    b[i] = (b[i] + 1 + Math.floor(r() * 254)) & 0xff // always a different value; checksum not fixed
    return b
  },
  sizeField(b, r) {
    const h = pick(r, headers(b))
    const delta = pick(r, [-513, -512, -1, 1, 511, 512, 4096, 1 << 20])
    const size = Math.max(0, h.size + delta)
    b.write(size.toString(8).padStart(11, '0') + '\0', h.off + 124, 'latin1')
    fixChecksum(b.subarray(h.off, h.off + BLOCK))
    return b
  },
  hugeSize(b, r) {
    const h = pick(r, headers(b))
    b.write(pick(r, ['77777777777\0', '7777777777 \0', '77777777770\0']), h.off + 124, 'latin1')
    fixChecksum(b.subarray(h.off, h.off + BLOCK))
    return b
  },
  base256Size(b, r) {
    const h = pick(r, headers(b))
    b.fill(0, h.off + 124, h.off + 136)
    b[h.off + 124] = 0x80
    b.writeUIntBE(h.size, h.off + 130, 6)
    fixChecksum(b.subarray(h.off, h.off + BLOCK))
    return b
  },
  name(b, r) {
    const h = pick(r, headers(b))
    const n = pick(r, ['../../etc/passwd', '/etc/passwd', 'blobs/sha256/../../x', 'blobs/sha256/' + 'a'.repeat(64), 'oci-layout', './airlock.json', 'airlock.json/', 'blobs\\sha256\\x', 'x'.repeat(100), 'index.json\u0000evil', 'AIRLOCK.JSON'])
    b.fill(0, h.off, h.off + 100)
    b.write(n.slice(0, 100), h.off, 'utf8')
    fixChecksum(b.subarray(h.off, h.off + BLOCK))
    return b
  },
  prefixField(b, r) {
    const h = pick(r, headers(b))
    b.write(pick(r, ['../..', '/tmp', 'evil', 'blobs/sha256/..']), h.off + 345, 'utf8')
    fixChecksum(b.subarray(h.off, h.off + BLOCK))
    return b
  },
  type(b, r) {
    const h = pick(r, headers(b))
    b[h.off + 156] = pick(r, ['1', '2', '3', '4', '5', '6', '7', 'x', 'g', 'L', 'K', 'S', 'V', 'Z']).charCodeAt(0)
    if (b[h.off + 156] === 0x32 || b[h.off + 156] === 0x31) b.write('/etc/passwd', h.off + 157, 'utf8')
    fixChecksum(b.subarray(h.off, h.off + BLOCK))
    return b
  },
  badChecksum(b, r) {
    const h = pick(r, headers(b))
    b.write(pick(r, ['000000\0 ', '777777\0 ', 'zzzzzz\0 ', '        ']), h.off + 148, 'latin1')
    return b
  },
  swap(b, r) {
    const hs = headers(b)
    const i = Math.floor(r() * (hs.length - 1))
    const a = hs[i]
    const c = hs[i + 1]
    const endC = c.off + BLOCK + c.size + paddingFor(c.size)
    return Buffer.concat([b.subarray(0, a.off), b.subarray(c.off, endC), b.subarray(a.off, c.off), b.subarray(endC)])
  },
  duplicate(b, r) {
    const hs = headers(b)
    const h = pick(r, hs)
    const end = h.off + BLOCK + h.size + paddingFor(h.size)
    const at = pick(r, [h.off, end, hs.at(-1)!.off])
    return Buffer.concat([b.subarray(0, at), b.subarray(h.off, end), b.subarray(at)])
  },
  drop(b, r) {
    const h = pick(r, headers(b))
    const end = h.off + BLOCK + h.size + paddingFor(h.size)
    return Buffer.concat([b.subarray(0, h.off), b.subarray(end)])
  },
  insertExtension(b, r) {
    const hs = headers(b)
    const at = pick(r, hs).off
    const kind = pick(r, ['x', 'g', 'L', 'K'])
    const data = kind === 'L' || kind === 'K'
      ? Buffer.from(`blobs/sha256/${'../'.repeat(40)}etc/passwd\0`)
      : Buffer.from(`30 path=../../../etc/passwd\n${pick(r, ['20 size=99999999999\n', '16 linkpath=/x\n'])}`)
    return Buffer.concat([b.subarray(0, at), entry(kind === 'L' || kind === 'K' ? '././@LongLink' : 'PaxHeader/x', data, kind), b.subarray(at)])
  },
  longNameViaPrefix(b, r) {
    // a valid-looking entry whose full name only exists through the prefix field
    const hs = headers(b)
    const at = pick(r, hs.slice(1)).off
    const e = entry('x'.repeat(100), Buffer.from('hi'), '0', 'blobs/sha256/' + 'b'.repeat(64))
    return Buffer.concat([b.subarray(0, at), e, b.subarray(at)])
  },
  truncate(b, r) {
    return b.subarray(0, Math.floor(r() * (b.length - 1)))
  },
  trailer(b, r) {
    const last = headers(b).at(-1)!
    const end = last.off + BLOCK + last.size + paddingFor(last.size)
    const i = end + Math.floor(r() * (b.length - end))
    b[i] = 1 + Math.floor(r() * 255)
    return b
  },
  appendGarbage(b, r) {
    return Buffer.concat([b, Buffer.from(`garbage ${r()}`), Buffer.alloc(BLOCK)])
  },
  dataByte(b, r) {
    const h = pick(r, headers(b).filter((x) => x.size > 0))
    const i = h.off + BLOCK + Math.floor(r() * h.size)
    b[i] ^= 1 << Math.floor(r() * 8)
    return b
  },
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`HANG: ${what}`)), ms)))])
  } finally {
    clearTimeout(t)
  }
}

describe('hostile archives (seeded fuzz)', {timeout: 240_000}, () => {
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-hostile-'))
    const kp = await generateKeyPair({name: 'Hostile Test'})
    pub = await openpgp.readKey({armoredKey: kp.publicKeyArmored})
    pubFile = path.join(dir, 'pub.asc')
    await writeFile(pubFile, kp.publicKeyArmored)
    const key = await openpgp.readPrivateKey({armoredKey: kp.privateKeyArmored})
    const out = path.join(dir, 'valid.tar')
    await syntheticArchive(path.join(dir, 'blobs'), out, [
      {name: 'hostile.test/a:1', layers: [Buffer.alloc(3000, 7), Buffer.from('small layer')]},
      {name: 'hostile.test/b:1', layers: [Buffer.alloc(3000, 7), Buffer.alloc(1024, 9)]},
    ], {key})
    valid = await readFile(out)
    const ok = await readArchive([out], {trustedKeys: [pub]})
    assert.equal(ok.images.length, 2)
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it(`${CASES} seeded mutations are each refused with a VerifyError, fast and in bounded memory`, async () => {
    const r = prng(SEED)
    const names = Object.keys(MUTATIONS)
    const codes = new Map<string, number>()
    const problems: string[] = []
    const file = path.join(dir, 'case.tar')
    const rss0 = process.memoryUsage().rss
    let maxRss = rss0
    const t0 = Date.now()
    for (let i = 0; i < CASES; i++) {
      const m = names[i % names.length]
      const bytes = MUTATIONS[m](Buffer.from(valid), r)
      if (bytes.equals(valid)) continue
      await writeFile(file, bytes)
      const what = `case ${i} (${m}, seed ${SEED.toString(16)})`
      try {
        await withTimeout(readArchive([file], {trustedKeys: [pub]}), CASE_TIMEOUT_MS, what)
        problems.push(`${what}: ACCEPTED`)
      } catch (error) {
        if (!(error instanceof VerifyError)) problems.push(`${what}: ${(error as Error).name}: ${(error as Error).message}`)
        else {
          codes.set(error.code, (codes.get(error.code) ?? 0) + 1)
          assert.ok(error.message.length > 10 && error.message.length < 600, `${what}: message ${JSON.stringify(error.message)}`)
        }
      }
      maxRss = Math.max(maxRss, process.memoryUsage().rss)
    }
    const ms = Date.now() - t0
    assert.deepEqual(problems, [])
    // huge declared sizes are refused before any buffering
    assert.ok(maxRss - rss0 < 200 * 1024 * 1024, `rss grew by ${maxRss - rss0}`)
    assert.ok(codes.size >= 8, JSON.stringify([...codes]))
    console.log(`  ${CASES} cases in ${ms} ms, rss +${Math.round((maxRss - rss0) / 1048576)} MiB; codes: ${[...codes].map(([c, n]) => `${c}×${n}`).join(', ')}`)
  })

  it('hostile archives through the CLI: verify exits 3, install --to oci: writes nothing anywhere', async () => {
    const r = prng(SEED ^ 0x5555)
    for (const m of ['name', 'type', 'insertExtension', 'hugeSize', 'dataByte', 'duplicate']) {
      const bytes = MUTATIONS[m](Buffer.from(valid), r)
      const caseDir = path.join(dir, `cli-${m}`)
      await mkdir(caseDir)
      const file = path.join(caseDir, 'hostile.tar')
      await writeFile(file, bytes)
      const v = spawnSync(process.execPath, [bin, 'verify', file, '--key', pubFile, '--json'], {encoding: 'utf8', timeout: 30_000})
      assert.equal(v.status, 3, `${m}: ${v.stdout}${v.stderr}`)
      assert.match((JSON.parse(v.stdout) as {error: {code: string; message: string; details: string[]}}).error.code, /^(archive|signature)\./)
      const target = path.join(caseDir, 'target')
      const inst = spawnSync(process.execPath, [bin, 'install', file, '--key', pubFile, '--to', `oci:${target}`, '--state-file', path.join(dir, 'state.json')], {encoding: 'utf8', timeout: 30_000, cwd: caseDir})
      assert.equal(inst.status, 3, `${m}: ${inst.stderr}`)
      assert.match(inst.stderr, /^error: /)
      assert.doesNotMatch(inst.stderr, /\n\s+at /, 'stack trace')
      // nothing written: not the target, not beside it
      assert.deepEqual(await readdir(caseDir), ['hostile.tar'], m)
    }
  })
})
