/**
 * Plain verify through the built CLI (bin/run.js starts hashing before the CLI has loaded) on
 * several threads comes to the verdict of the sequential reader (the library side of this is
 * test/unit/transports/archive/verify-parallel.test.ts).
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import type * as openpgp from 'openpgp'

import {generateKeyPair} from '../../src/sign/keys.js'
import {BLOCK} from '../../src/transports/archive/tar.js'
import {BIN, runCli} from '../helpers/cli.js'
import {entries, outcome as outcomeFor, parallelFixture, type Outcome} from '../helpers/verify-parallel.js'

let dir: string
let pub: openpgp.Key
let pubFile: string
let valid: Buffer
let validFile: string

const outcome = (parts: string[], mode: 'sequential' | number): Promise<Outcome> => outcomeFor(pub, parts, mode)

describe('plain verify on several threads agrees with the sequential reader', {timeout: 300_000}, () => {
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-parallel-'))
    const fixture = await parallelFixture(dir)
    pub = fixture.pub
    pubFile = fixture.pubFile
    valid = fixture.valid
    validFile = fixture.validFile
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
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
})
