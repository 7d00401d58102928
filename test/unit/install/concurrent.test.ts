/**
 * Installs at the same time keep each other's work: records in one state file, and images merged
 * into one OCI layout, are never lost (read-modify-write under a lock), and no temp name is shared.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {mkdtemp, readdir, readFile, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {describe, it} from 'node:test'

import * as openpgp from 'openpgp'

import {installArchive} from '../../../src/install/install.js'
import {readState, recordInstall, stateKey} from '../../../src/install/state.js'
import {randomLayer, syntheticArchive} from '../../helpers/archive.js'

describe('concurrent installs', () => {
  it('20 records written at once into one state file are all kept', async () => {
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'airlock-state-')), 'installed.json')
    const names = Array.from({length: 20}, (_, i) => `bundle-${i}`)
    await Promise.all(names.map((name) => recordInstall(file, {name, version: '1.0.0', archive: 'a.tar', target: 'docker', installedAt: new Date(0).toISOString()})))
    const state = await readState(file)
    assert.deepEqual(Object.keys(state.bundles).sort(), names.map((n) => stateKey(n, 'docker')).sort())
    assert.deepEqual((await readdir(path.dirname(file))).filter((n) => n !== 'installed.json'), [], 'no temp or lock file left')
  })

  it('another process holding the state file lock is waited for, then the record is written', async () => {
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'airlock-state-')), 'installed.json')
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], {stdio: 'ignore'})
    await writeFile(`${file}.lock`, JSON.stringify({pid: holder.pid, command: 'install'}))
    setTimeout(() => holder.kill(), 300) // the holder dies: its lock is taken over
    await recordInstall(file, {name: 'late', version: '1.0.0', archive: 'a.tar', target: 'docker', installedAt: new Date(0).toISOString()})
    assert.ok((await readState(file)).bundles[stateKey('late', 'docker')])
  })

  it('two bundles installed at once into one oci: layout both end up in index.json', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-oci-two-'))
    const {privateKey, publicKey} = await openpgp.generateKey({type: 'ecc', curve: 'curve25519Legacy', userIDs: [{name: 't'}], format: 'armored', date: new Date(0)})
    const key = await openpgp.readPrivateKey({armoredKey: privateKey})
    const pub = path.join(dir, 'pub.asc')
    await writeFile(pub, publicKey)
    // The same base layer in both: a blob both write.
    const shared = randomLayer(300_000)
    const archives = await Promise.all(['a', 'b'].map(async (n) => {
      const file = path.join(dir, `${n}.tar`)
      await syntheticArchive(path.join(dir, `blobs-${n}`), file, [{name: `example.test/${n}:1`, layers: [shared, randomLayer(200_000)]}], {key})
      return file
    }))
    const target = path.join(dir, 'layout')
    await Promise.all(archives.map((archive, i) => installArchive({archive, keys: [pub], to: `oci:${target}`, stateFile: path.join(dir, `state-${i}.json`)})))
    const index = JSON.parse(await readFile(path.join(target, 'index.json'), 'utf8')) as {manifests: {annotations: Record<string, string>}[]}
    assert.deepEqual(index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']).sort(), ['example.test/a:1', 'example.test/b:1'])
    assert.deepEqual((await readdir(path.join(target, 'blobs', 'sha256'))).filter((n) => !/^[a-f0-9]{64}$/.test(n)), [], 'no temp file left')
    assert.ok(!(await readdir(target)).some((n) => n.includes('lock')), 'no lock left')
  })
})
