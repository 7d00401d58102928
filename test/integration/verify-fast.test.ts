/**
 * `airlock verify` runs without oclif when its command line is in the plain form
 * (src/cli/fast.ts). Whatever the command line and the archive, the fast path must print exactly
 * what the oclif command prints and exit the same way: every case below runs both ways
 * (AIRLOCK_NO_FAST=1 forces oclif) and the two results are compared whole.
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import vm from 'node:vm'
import {after, before, describe, it} from 'node:test'

import * as openpgp from 'openpgp'

import {parseFastVerify} from '../../src/cli/fast.js'
import {generateKeyPair} from '../../src/sign/keys.js'
import {encodePgpCodeCache, loadCommonJs, readPgpCodeCache} from '../../src/sign/pgp.js'
import {randomLayer, syntheticArchive} from '../helpers/archive.js'
import {ROOT, runCli} from '../helpers/cli.js'

let dir: string

/** The child's environment: ours without AIRLOCK_TRUSTED_KEYS / AIRLOCK_CONTENT_TYPE, plus `extra`. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e = {...process.env, ...extra}
  for (const k of ['AIRLOCK_TRUSTED_KEYS', 'AIRLOCK_CONTENT_TYPE', 'AIRLOCK_NO_FAST', 'AIRLOCK_DEBUG']) if (!(k in extra)) delete e[k]
  return e
}

describe('verify: the fast path and the oclif command give the same result', {timeout: 300_000}, () => {
  const f = (name: string) => path.join(dir, name)

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-fast-'))
    const good = await generateKeyPair({name: 'Fast Path', email: 'fast@example.test'})
    const other = await generateKeyPair({name: 'Someone Else'})
    await writeFile(f('good.asc'), good.publicKeyArmored)
    await writeFile(f('other.asc'), other.publicKeyArmored)
    await mkdir(f('keys.d'))
    await writeFile(path.join(f('keys.d'), 'good.asc'), good.publicKeyArmored)
    const key = await openpgp.readPrivateKey({armoredKey: good.privateKeyArmored})
    const images = [
      {name: 'fast.test/a:1', layers: [randomLayer(400_000), randomLayer(900)]},
      {name: 'fast.test/b:1', layers: [randomLayer(200_000)]},
    ]
    await syntheticArchive(f('blobs'), f('signed.tar'), images, {key})
    await syntheticArchive(f('blobs'), f('unsigned.tar'), images)
    await syntheticArchive(f('blobs'), f('expired.tar'), images, {key, expires: '2001-01-01T00:00:00Z'})
    await syntheticArchive(f('blobs'), f('split.tar'), images, {key, partSize: 150_000})
    const tampered = await readFile(f('signed.tar'))
    tampered[tampered.length - 1024 - 700] ^= 1 // in the last blob's data
    await writeFile(f('tampered.tar'), tampered)
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  // [argv after `verify`, environment additions, is it the plain form the fast path takes?]
  const cases: [string[], Record<string, string>, boolean][] = [
    [['signed.tar', '--key', 'good.asc'], {}, true],
    [['signed.tar', '--key', 'good.asc', '--json'], {}, true],
    [['--json', '--key=good.asc', 'signed.tar'], {}, true],
    [['-k', 'other.asc', 'signed.tar'], {}, true],
    [['-k', 'other.asc', 'signed.tar', '--json'], {}, true],
    [['-k', 'other.asc', '-k', 'good.asc', 'signed.tar'], {}, true],
    [['signed.tar', '--key', 'keys.d'], {}, true],
    [['signed.tar'], {}, true],
    [['signed.tar', '--json'], {}, true],
    [['signed.tar'], {AIRLOCK_TRUSTED_KEYS: 'other.asc, good.asc'}, true],
    [['signed.tar', '--key', 'other.asc'], {AIRLOCK_TRUSTED_KEYS: 'good.asc'}, true],
    [['signed.tar', '--key', 'good.asc,other.asc'], {}, true],
    [['unsigned.tar', '--key', 'good.asc'], {}, true],
    [['unsigned.tar', '--allow-unsigned'], {}, true],
    [['unsigned.tar', '--allow-unsigned', '--json'], {}, true],
    [['tampered.tar', '--key', 'good.asc'], {}, true],
    [['tampered.tar', '--key', 'good.asc', '--json'], {}, true],
    [['expired.tar', '--key', 'good.asc'], {}, true],
    [['split.tar.000', '--key', 'good.asc'], {}, true],
    [['split.tar.*', '--key', 'good.asc', '--json'], {}, true],
    [['missing.tar', '--key', 'good.asc'], {}, true],
    [['signed.tar', '--key', 'missing.asc', '--json'], {}, true],
    [['signed.tar', '--key', 'good.asc'], {AIRLOCK_DEBUG: '1'}, true],
    [['signed.tar', '--key', 'good.asc', '--quiet'], {}, true],
    [['-q', 'tampered.tar', '--key', 'good.asc'], {}, true],
    [['signed.tar', '--key', 'good.asc', '-q', '--json'], {}, true],
    // Left to oclif (both runs take the same path; the parse must say so).
    [['signed.tar', '--key', 'good.asc', '--no-such-flag'], {}, false],
    [['signed.tar', 'unsigned.tar', '--key', 'good.asc'], {}, false],
    [['signed.tar', '--key'], {}, false],
    [['signed.tar', '--json', '--json', '--key', 'good.asc'], {}, false],
    [['--', 'signed.tar'], {}, false],
    [['signed.tar', '-kgood.asc'], {}, false],
    [['signed.tar', '--key', 'good.asc'], {AIRLOCK_CONTENT_TYPE: 'json'}, false],
    [[], {}, false],
  ]

  for (const [argv, extra, plain] of cases) {
    const label = `verify ${argv.join(' ')}${Object.keys(extra).length ? ` (${Object.entries(extra).map(([k, v]) => `${k}=${v}`).join(' ')})` : ''}`
    it(label, () => {
      assert.equal(parseFastVerify(argv, env(extra)) !== undefined, plain, `the fast path ${plain ? 'takes' : 'leaves'} this command line`)
      const fast = runCli(['verify', ...argv], {cwd: dir, env: env(extra)})
      const slow = runCli(['verify', ...argv], {cwd: dir, env: env({...extra, AIRLOCK_NO_FAST: '1'})})
      assert.ok(fast.code !== null, 'the fast path finished')
      // Stack traces name the modules they pass through: compare the messages only.
      const noStack = (s: string) => s.split('\n').filter((l) => !/^\s+at /.test(l)).join('\n')
      assert.deepEqual({...fast, stderr: noStack(fast.stderr)}, {...slow, stderr: noStack(slow.stderr)})
    })
  }

  it('the outcomes above are the documented ones (so the comparison is not of two identical failures)', () => {
    const run = (argv: string[], extra: Record<string, string> = {}) => runCli(['verify', ...argv], {cwd: dir, env: env(extra)})
    const ok = run(['signed.tar', '--key', 'good.asc'])
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /^OK signed\.tar: synthetic 1\.0\.0, 2 images, \d+ blobs, \d+ entries verified\n {2}signed by [0-9A-F]{40} \(Fast Path <fast@example\.test>\)/)
    const json = JSON.parse(run(['signed.tar', '--key', 'good.asc', '--json']).stdout) as {images: unknown[]}
    assert.equal(json.images.length, 2)
    assert.equal(run(['-k', 'other.asc', 'signed.tar']).code, 3)
    assert.equal(run(['signed.tar'], {AIRLOCK_TRUSTED_KEYS: 'other.asc, good.asc'}).code, 0, 'a comma-separated AIRLOCK_TRUSTED_KEYS')
    assert.equal(run(['signed.tar'], {AIRLOCK_TRUSTED_KEYS: 'other.asc'}).code, 3)
    const noKey = run(['signed.tar', '--json'])
    assert.equal(noKey.code, 2)
    assert.equal((JSON.parse(noKey.stdout) as {error: {code: string; message: string; details: string[]}}).error.code.length > 0, true)
    const tampered = run(['tampered.tar', '--key', 'good.asc', '--json'])
    assert.equal(tampered.code, 3)
    assert.match((JSON.parse(tampered.stdout) as {error: {code: string; message: string; details: string[]}}).error.message, /blobs\/sha256\//)
    assert.equal(run(['split.tar.000', '--key', 'good.asc']).code, 0)
    assert.equal(run(['expired.tar', '--key', 'good.asc']).code, 3)
    assert.equal(run(['missing.tar', '--key', 'good.asc']).code, 2)
    // --quiet: nothing on success, the error still, and --json as always.
    assert.deepEqual(run(['signed.tar', '--key', 'good.asc', '--quiet']), {code: 0, stdout: '', stderr: ''})
    const quietBad = run(['-q', 'tampered.tar', '--key', 'good.asc'])
    assert.equal(quietBad.code, 3)
    assert.match(quietBad.stderr, /^error: .*blobs\/sha256\//)
    assert.equal((JSON.parse(run(['signed.tar', '--key', 'good.asc', '-q', '--json']).stdout) as {ok: boolean}).ok, true)
  })
})

describe('the fast path\'s code cache for openpgp.js', () => {
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-pgpcache-'))
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })
  it('the cache made by the build is accepted; a damaged one is not used; a stale one is rejected by V8', async () => {
    const file = path.join(ROOT, 'dist', 'openpgp.v8cache')
    const cache = readPgpCodeCache(file)
    assert.ok(cache, 'dist/openpgp.v8cache is there and intact')
    const good = loadCommonJs(cache)
    assert.equal(good.script.cachedDataRejected, false, 'dist/openpgp.v8cache matches this node and openpgp.js')
    // A damaged payload (V8 does not checksum it, and may crash on it) is caught by its sha256.
    const damaged = await readFile(file)
    damaged[damaged.length - 100] ^= 1
    const copy = path.join(dir, 'damaged.v8cache')
    await writeFile(copy, damaged)
    assert.equal(readPgpCodeCache(copy), undefined)
    await writeFile(copy, damaged.subarray(0, 20))
    assert.equal(readPgpCodeCache(copy), undefined)
    assert.equal(readPgpCodeCache(path.join(dir, 'no-such.v8cache')), undefined)
    // An intact cache for other code (another openpgp.js, node or V8 flags) is rejected by V8, and compiling goes on.
    await writeFile(copy, encodePgpCodeCache(new vm.Script('(function () { return 42 })').createCachedData()))
    const stale = loadCommonJs(readPgpCodeCache(copy))
    assert.equal(stale.script.cachedDataRejected, true)
    // Either way the library works: generate, sign, verify.
    for (const {exports: pg} of [good, stale]) {
      const {privateKey, publicKey} = await pg.generateKey({type: 'ecc', curve: 'curve25519Legacy', userIDs: [{name: 't'}], format: 'object'})
      const data = new Uint8Array([9, 8, 7])
      const signature = await pg.readSignature({armoredSignature: (await pg.sign({message: await pg.createMessage({binary: data}), signingKeys: privateKey, detached: true})) as string})
      const {signatures} = await pg.verify({message: await pg.createMessage({binary: data}), signature, verificationKeys: [publicKey]})
      assert.equal(await signatures[0].verified, true)
    }
  })
})
