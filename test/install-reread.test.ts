/**
 * install --to registry uploads a verified blob by reading it again from the archive (no spool
 * copy). Those second reads are hashed too: if the archive changes after a blob verified and
 * before it is uploaded, the install fails with archive.changed and no tag appears.
 */
import assert from 'node:assert/strict'
import {closeSync, openSync, writeSync} from 'node:fs'
import {createHash} from 'node:crypto'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import * as openpgp from 'openpgp'

import {silentProgress} from '../src/core/progress.js'
import {MultiFile} from '../src/blob/multi-file.js'
import {readArchive, type ArchiveSink} from '../src/transports/archive/reader.js'
import {registryDestination} from '../src/transports/registry/destination.js'
import {VerifyError} from '../src/core/errors.js'
import {generateKeyPair} from '../src/sign/keys.js'
import {dataOffset, randomLayer, syntheticArchive} from './helpers/archive.js'
import {registryTags} from './helpers/registry-state.js'
import {Testbed, testbed} from './helpers/testbed.js'

let tb: Testbed
let dir: string
let pub: openpgp.Key
let key: openpgp.PrivateKey

describe('install → registry reads verified blobs again from the archive', {timeout: 300_000}, () => {
  before(async () => {
    tb = await testbed()
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-reread-'))
    const kp = await generateKeyPair({name: 'Reread Test'})
    pub = await openpgp.readKey({armoredKey: kp.publicKeyArmored})
    key = await openpgp.readPrivateKey({armoredKey: kp.privateKeyArmored})
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

  it('a blob changed in the archive after it verified is not uploaded; nothing is tagged', async () => {
    const archive = path.join(dir, 'toctou.tar')
    const images = [
      {name: 'reread.test/a:1', layers: [randomLayer(400_000), randomLayer(300_000)]},
      {name: 'reread.test/b:1', layers: [randomLayer(500_000)]},
    ]
    await syntheticArchive(path.join(dir, 'blobs'), archive, images, {key})
    const buf = await readFile(archive)
    const prefix = `reread-${Date.now().toString(36)}`
    const before = await registryTags(tb.registries.target)
    const dest = await registryDestination({
      selected: (h) => h.metadata.images, progress: silentProgress, parts: [archive],
      target: `registry://${tb.registries.target}/${prefix}`, insecure: true, jobs: 1,
    })
    let changed = ''
    // Once the first large blob has verified (and is queued for upload, which starts with a HEAD
    // round trip), change one of its bytes in the file.
    const sink: ArchiveSink = {
      begin: (h) => dest.begin!(h),
      blob: async (digest, size, data) => {
        await dest.blob!(digest, size, data)
        if (!changed && size >= 300_000) {
          const name = `blobs/sha256/${digest.slice(7)}`
          const at = dataOffset(buf, name) + 1000
          const fd = openSync(archive, 'r+')
          writeSync(fd, Buffer.from([buf[at] ^ 0x10]), 0, 1, at)
          closeSync(fd)
          changed = name
        }
      },
      commit: (h) => dest.commit!(h),
      abort: (e) => dest.abort!(e),
    }
    await assert.rejects(readArchive([archive], {trustedKeys: [pub], sink}),
      (e: unknown) => e instanceof VerifyError && e.code === 'archive.changed' && e.message.includes(changed))
    assert.ok(changed, 'a blob was changed')
    assert.equal(await registryTags(tb.registries.target), before, 'no tag appeared')
  })
})
