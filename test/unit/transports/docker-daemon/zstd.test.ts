/** zstd layers decompressed for a Docker Engine that cannot unpack them (src/transports/docker-daemon/zstd.ts). */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdtemp, readdir, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {AirlockError} from '../../../../src/core/errors.js'
import {hasZstdMagic, peek, ZstdSpool} from '../../../../src/transports/docker-daemon/zstd.js'

async function* chunks(buf: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size)
}

describe('ZstdSpool', () => {
  let dir: string
  // Compressible and incompressible parts; two frames concatenated, as zstd allows.
  const plain = Buffer.concat([Buffer.alloc(300_000, 'airlock '), randomBytes(200_000)])
  const zst = (b: Buffer, level: string) => execFileSync('zstd', ['-q', '-c', level], {input: b})
  let packed: Buffer
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-zstd-test-'))
    packed = Buffer.concat([zst(plain.subarray(0, 123_457), '-1'), zst(plain.subarray(123_457), '-19')])
  })
  after(() => rm(dir, {recursive: true, force: true}))

  it('sniffs the magic and decompresses every frame, whatever the chunking', async () => {
    assert.ok(hasZstdMagic(packed))
    assert.ok(!hasZstdMagic(Buffer.from([0x1f, 0x8b, 8, 0])))
    for (const size of [1, 7, 65_536, packed.length]) {
      const spool = new ZstdSpool(dir)
      const {first, all} = await peek(chunks(packed, size))
      assert.ok(first && hasZstdMagic(first) || size < 4)
      await spool.add('sha256:' + 'a'.repeat(64), all)
      const [layer] = await spool.layers()
      assert.equal(layer.size, plain.length)
      assert.ok((await readFile(layer.path)).equals(plain))
      await spool.close()
    }
    assert.deepEqual(await readdir(dir), [], 'the private directory is removed')
  })

  it('not zstd after its magic: decompressed only once the whole blob was read, then an error naming zstd', async () => {
    // (A damaged block may decode to other bytes: dockerd's diff_id check refuses those.)
    const bad = Buffer.from(packed)
    bad[4] |= 8 // a reserved bit of the frame header
    let read = 0
    async function* counted() {
      for await (const c of chunks(bad, 4096)) {
        read += c.length
        yield c
      }
    }
    const spool = new ZstdSpool(dir)
    await spool.add('sha256:' + 'b'.repeat(64), counted())
    assert.equal(read, bad.length)
    await assert.rejects(spool.layers(), (e: unknown) => e instanceof AirlockError && /zstd/.test(e.message))
    await spool.close()
  })
})
