/**
 * Hostile archives through the built CLI: a sample of the seeded mutations of
 * test/unit/transports/archive/hostile.test.ts must make `verify` exit 3 and
 * `install --to oci:` write nothing anywhere.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdir, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {BIN as bin} from '../helpers/cli.js'
import {hostileFixture, MUTATIONS, prng, SEED} from '../helpers/hostile.js'

let dir: string
let valid: Buffer
let pubFile: string

describe('hostile archives (seeded fuzz)', {timeout: 240_000}, () => {
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-hostile-'))
    const fixture = await hostileFixture(dir)
    valid = fixture.valid
    pubFile = fixture.pubFile
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
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
      assert.match((JSON.parse(v.stdout) as {error: {code: string}}).error.code, /^(archive|signature)\./)
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
