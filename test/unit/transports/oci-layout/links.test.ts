/**
 * install --to oci:DIR never follows a link it did not make below DIR: a link at blobs/,
 * blobs/sha256/, a blob, index.json or oci-layout is refused, nothing is written outside DIR,
 * and no message carries the content of the linked file.
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, readdir, readFile, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {before, describe, test} from 'node:test'

import * as openpgp from 'openpgp'

import {AirlockError} from '../../../../src/core/errors.js'
import {installArchive} from '../../../../src/install/install.js'
import {removeStaleTemps} from '../../../../src/transports/oci-layout/files.js'
import {randomLayer, syntheticArchive} from '../../../helpers/archive.js'

const SECRET = 'root:$6$not-for-your-eyes:19000:0:99999:7:::\n'

describe('install --to oci: and symbolic links below DIR', () => {
  let dir: string
  let archive: string
  let pubFile: string
  let blobHex: string
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-oci-links-'))
    const {privateKey, publicKey} = await openpgp.generateKey({type: 'ecc', curve: 'curve25519Legacy', userIDs: [{name: 't'}], format: 'armored', date: new Date(0)})
    pubFile = path.join(dir, 'pub.asc')
    await writeFile(pubFile, publicKey)
    archive = path.join(dir, 'x.tar')
    const meta = await syntheticArchive(path.join(dir, 'blobs'), archive, [{name: 'example.com/x:1', layers: [randomLayer(5000)]}], {key: await openpgp.readPrivateKey({armoredKey: privateKey})})
    blobHex = meta.images[0].manifests[0].layers[0].slice(7)
  })

  /** A fresh target with a bait directory and a bait file outside it; `plant` places the link. */
  async function attempt(name: string, plant: (target: string, baitDir: string, baitFile: string) => Promise<void>) {
    const root = path.join(dir, name)
    const target = path.join(root, 'target')
    const baitDir = path.join(root, 'elsewhere')
    const baitFile = path.join(root, 'shadow')
    await mkdir(target, {recursive: true})
    await mkdir(baitDir, {recursive: true})
    await writeFile(baitFile, SECRET)
    await plant(target, baitDir, baitFile)
    let error: unknown
    try {
      await installArchive({archive, keys: [pubFile], to: `oci:${target}`, stateFile: path.join(root, 'state.json')})
    } catch (error_) {
      error = error_
    }
    assert.ok(error instanceof AirlockError, `refused with a clear error, got ${String(error)}`)
    assert.match(error.message, /symbolic link/)
    assert.doesNotMatch(`${error.message} ${error.details.join(' ')}`, /not-for-your-eyes|root:/)
    assert.deepEqual(await readdir(baitDir), [], 'nothing written outside DIR')
    assert.equal(await readFile(baitFile, 'utf8'), SECRET, 'the linked file is untouched')
  }

  test('blobs/ is a link to another directory', () => attempt('blobs-dir', async (t, bait) => {
    await symlink(bait, path.join(t, 'blobs'))
  }))

  test('blobs/sha256 is a link to another directory', () => attempt('sha256-dir', async (t, bait) => {
    await mkdir(path.join(t, 'blobs'))
    await symlink(bait, path.join(t, 'blobs', 'sha256'))
  }))

  test('a blob is a link to a file elsewhere', () => attempt('blob-file', async (t, _bait, file) => {
    await mkdir(path.join(t, 'blobs', 'sha256'), {recursive: true})
    await symlink(file, path.join(t, 'blobs', 'sha256', blobHex))
  }))

  test('index.json is a link to a file elsewhere', () => attempt('index', async (t, _bait, file) => {
    await symlink(file, path.join(t, 'index.json'))
  }))

  test('oci-layout is a link to a file elsewhere', () => attempt('layout', async (t, _bait, file) => {
    await symlink(file, path.join(t, 'oci-layout'))
  }))

  test('a broken index.json is refused without quoting it', async () => {
    const target = path.join(dir, 'broken', 'target')
    await mkdir(target, {recursive: true})
    await writeFile(path.join(target, 'index.json'), SECRET)
    await assert.rejects(installArchive({archive, keys: [pubFile], to: `oci:${target}`, stateFile: path.join(dir, 'broken', 'state.json')}), (e: unknown) => {
      assert.ok(e instanceof AirlockError)
      assert.equal(e.code, 'install.oci_bad_index')
      assert.doesNotMatch(e.message, /not-for-your-eyes|root:/)
      return true
    })
  })

  test('without links the same install succeeds (the cases above fail for the link alone)', async () => {
    const target = path.join(dir, 'clean', 'target')
    const r = await installArchive({archive, keys: [pubFile], to: `oci:${target}`, stateFile: path.join(dir, 'clean', 'state.json')})
    assert.equal(r.images.length, 1)
    assert.ok((await readdir(path.join(target, 'blobs', 'sha256'))).includes(blobHex))
    assert.deepEqual((await readdir(path.join(target, 'blobs', 'sha256'))).filter((n) => n.includes('partial')), [])
  })
})

describe('temporary files of an oci: layout', () => {
  test('those of a process that is gone are removed; those of a running one are left alone', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-oci-temps-'))
    const dead = `.${'a'.repeat(64)}.${2 ** 22 + 4321}.0123abcd.airlock-partial`
    const live = `.${'b'.repeat(64)}.${process.pid}.89abcdef.airlock-partial`
    const other = 'not-ours.partial'
    for (const n of [dead, live, other]) await writeFile(path.join(dir, n), 'x')
    await removeStaleTemps(dir)
    assert.deepEqual((await readdir(dir)).sort(), [live, other].sort())
  })
})
