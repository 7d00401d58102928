/**
 * MultiFile.verifiedRange reads a blob again after it verified (install --to registry uploads from
 * the archive itself): the bytes are hashed again, and a changed byte fails before the last piece.
 */
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {closeSync, openSync, writeSync} from 'node:fs'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {VerifyError} from '../../../src/core/errors.js'
import {MultiFile} from '../../../src/blob/multi-file.js'
import {randomLayer} from '../../helpers/archive.js'

let dir: string

describe('MultiFile: verified blobs read again from the archive', () => {
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-reread-'))
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('MultiFile.verifiedRange: the bytes as verified; a changed byte fails before the last piece is given out', async () => {
    const file = path.join(dir, 'range.bin')
    const data = randomLayer(3 * 1024 * 1024 + 5)
    await writeFile(file, Buffer.concat([Buffer.from('head'), data]))
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
    const mf = await MultiFile.open([file])
    try {
      const got: Buffer[] = []
      for await (const c of mf.verifiedRange(4, data.length, digest, 'x')) got.push(c)
      assert.ok(Buffer.concat(got).equals(data))
      const fd = openSync(file, 'r+')
      writeSync(fd, Buffer.from([data[2_000_000] ^ 1]), 0, 1, 4 + 2_000_000)
      closeSync(fd)
      let yielded = 0
      await assert.rejects(async () => {
        for await (const c of mf.verifiedRange(4, data.length, digest, 'blobs/sha256/x')) yielded += c.length
      }, (e: unknown) => e instanceof VerifyError && e.code === 'archive.changed' && /blobs\/sha256\/x/.test(e.message))
      assert.ok(yielded < data.length, 'the whole range was never given out')
    } finally {
      await mf.close()
    }
  })
})
