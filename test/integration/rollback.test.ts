/**
 * Rollback/freeze protection: install records bundle name → version in a local state file and
 * refuses an OLDER version of the same bundle unless --allow-downgrade.
 */
import assert from 'node:assert/strict'

import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import * as openpgp from 'openpgp'

import {generateKeyPair} from '../../src/sign/keys.js'
import {writeArchive} from '../../src/transports/archive/writer.js'
import {syntheticArchive} from '../helpers/archive.js'
import {runCli} from '../helpers/cli.js'

type InstalledFile = {bundles: Record<string, {version: string; contentSha256: string; target: string}>}

let dir: string
let pub: string
const archives: Record<string, string> = {}

function airlock(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(args, {cwd: dir, env: {...process.env, ...env}, timeout: 60_000})
}

describe('rollback protection (installed-versions state file)', {timeout: 120_000}, () => {
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-rollback-'))
    const kp = await generateKeyPair({name: 'Rollback Test'})
    pub = path.join(dir, 'pub.asc')
    await writeFile(pub, kp.publicKeyArmored)
    const key = await openpgp.readPrivateKey({armoredKey: kp.privateKeyArmored})
    const blobsDir = path.join(dir, 'blobs')
    const meta = await syntheticArchive(blobsDir, path.join(dir, 'seed.tar'), [{name: 'rollback.test/app:1', layers: [Buffer.from('layer one')]}], {key})
    const blobs = [...new Map(meta.images.flatMap((i) => i.blobs).map((b) => [b.digest, {...b, path: path.join(blobsDir, b.digest.slice(7))}])).values()]
    for (const v of ['1.9.0', '1.10.0', '2.0.0-rc.1', '2.0.0']) {
      archives[v] = path.join(dir, `shop-${v}.tar`)
      await writeArchive(archives[v], {metadata: {...meta, bundle: {...meta.bundle, name: 'shop', version: v}}, blobs, signingKey: key, epoch: 0})
    }
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('records installs and refuses an older version of the same bundle on the same target unless --allow-downgrade', async () => {
    const state = path.join(dir, 'state', 'installed.json')
    const to = (n: string) => `oci:${path.join(dir, `oci-${n}`)}`
    const key = (n: string) => `shop → ${to(n)}`
    let r = airlock(['install', archives['1.10.0'], '--key', pub, '--to', to('a'), '--state-file', state])
    assert.equal(r.code, 0, r.stderr)
    const rec = JSON.parse(await readFile(state, 'utf8')) as InstalledFile
    assert.equal(rec.bundles[key('a')].version, '1.10.0')
    assert.match(rec.bundles[key('a')].contentSha256, /^[a-f0-9]{64}$/)
    assert.equal(rec.bundles[key('a')].target, to('a'))
    const indexA = await readFile(path.join(dir, 'oci-a', 'index.json'), 'utf8')

    // 1.9.0 < 1.10.0 (a string compare would say otherwise): refused, exit 3, target untouched
    r = airlock(['install', archives['1.9.0'], '--key', pub, '--to', to('a'), '--state-file', state])
    assert.equal(r.code, 3, r.stdout + r.stderr)
    assert.match(r.stderr, /bundle shop 1\.9\.0 is older than version 1\.10\.0, .*--allow-downgrade/)
    assert.equal(await readFile(path.join(dir, 'oci-a', 'index.json'), 'utf8'), indexA, 'the refused install changed the target')
    // the dry run refuses too, with --json giving the stable code
    r = airlock(['install', archives['1.9.0'], '--key', pub, '--to', to('a'), '--state-file', state, '--dry-run', '--json'])
    assert.equal(r.code, 3)
    assert.equal((JSON.parse(r.stdout) as {error: {code: string; message: string; details: string[]}}).error.code, 'bundle.downgrade')
    // another target has its own history: 1.9.0 is fine there
    r = airlock(['install', archives['1.9.0'], '--key', pub, '--to', to('b'), '--state-file', state])
    assert.equal(r.code, 0, r.stderr)

    // the same version again is fine (re-install), a newer one too
    assert.equal(airlock(['install', archives['1.10.0'], '--key', pub, '--to', to('a'), '--state-file', state]).code, 0)
    assert.equal(airlock(['install', archives['2.0.0'], '--key', pub, '--to', to('a')], {AIRLOCK_STATE_FILE: state}).code, 0)
    // a pre-release of the installed version is older
    r = airlock(['install', archives['2.0.0-rc.1'], '--key', pub, '--to', to('a')], {AIRLOCK_STATE_FILE: state})
    assert.equal(r.code, 3, r.stderr)
    // explicit rollback
    r = airlock(['install', archives['1.9.0'], '--key', pub, '--to', to('a'), '--state-file', state, '--allow-downgrade'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(await readFile(state, 'utf8')) as InstalledFile).bundles[key('a')].version, '1.9.0')
  })

  it('defaults to $XDG_STATE_HOME/airlock/installed.json and refuses a corrupt state file clearly', async () => {
    const xdg = path.join(dir, 'xdg')
    const r = airlock(['install', archives['2.0.0'], '--key', pub, '--to', `oci:${path.join(dir, 'oci-x')}`], {XDG_STATE_HOME: xdg, AIRLOCK_STATE_FILE: ''})
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(await readFile(path.join(xdg, 'airlock', 'installed.json'), 'utf8')) as InstalledFile).bundles[`shop → oci:${path.join(dir, 'oci-x')}`].version, '2.0.0')
    const bad = path.join(dir, 'bad.json')
    await writeFile(bad, '{not json')
    const r2 = airlock(['install', archives['2.0.0'], '--key', pub, '--to', `oci:${path.join(dir, 'oci-y')}`, '--state-file', bad])
    assert.equal(r2.code, 1)
    assert.match(r2.stderr, /install state file .*bad\.json is not valid JSON/)
  })
})
