/**
 * install --to docker (and podman) of several images where the engine refuses one after loading another: the
 * whole install is undone (nothing visible on failure holds for the bundle, not only until the
 * first image), and a name that pointed at another image before points there again.
 */
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {after, before, describe, it} from 'node:test'

import * as openpgp from 'openpgp'

import {AirlockError} from '../../src/core/errors.js'
import {installArchive} from '../../src/install/install.js'
import {BLOCK, encodeHeader, paddingFor} from '../../src/transports/archive/tar.js'
import {randomLayer, syntheticArchive} from '../helpers/archive.js'
import {Testbed, testbed} from '../helpers/testbed.js'

const execFileP = promisify(execFile)

for (const engine of ['docker', 'podman'] as const) describe(`install --to ${engine}: a load that fails half way is undone`, () => {
  let tb: Testbed
  let dir: string
  let pub: string
  let key: openpgp.PrivateKey
  const stamp = Date.now().toString(36)
  const good = `rollback.test/${engine}-good-${stamp}:1`
  const bad = `rollback.test/${engine}-bad-${stamp}:1`
  const third = `rollback.test/${engine}-third-${stamp}:1`

  const imageId = async (ref: string) => {
    try {
      return (await execFileP(engine, ['image', 'inspect', '--format', '{{.Id}}', ref], {env: tb.processEnv})).stdout.trim()
    } catch {
      return undefined
    }
  }
  /**
   * Three images; the bad one's config names a diff_id its layer does not have, so the engine
   * refuses it after loading those before it. `badLast`: the bad one is the last of the three.
   */
  const archiveOf = async (name: string, firstLayer: Buffer, badLast = false) => {
    const file = path.join(dir, `${name}.tar`)
    const broken = {name: bad, layers: [randomLayer(4096)], diffIds: [`sha256:${'0'.repeat(64)}`]}
    const other = {name: third, layers: [tarOf(`third ${name}`)]}
    await syntheticArchive(path.join(dir, `blobs-${name}`), file, [{name: good, layers: [firstLayer]}, ...(badLast ? [other, broken] : [broken, other])], {key})
    return file
  }

  before(async () => {
    tb = await testbed()
    Object.assign(process.env, tb.env) // CONTAINERS_* for podman, as the engines are set up in the testbed
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-docker-rollback-'))
    const pair = await openpgp.generateKey({type: 'ecc', curve: 'curve25519Legacy', userIDs: [{name: 't'}], format: 'armored', date: new Date(0)})
    key = await openpgp.readPrivateKey({armoredKey: pair.privateKey})
    pub = path.join(dir, 'pub.asc')
    await writeFile(pub, pair.publicKey)
  })
  after(async () => {
    await execFileP(engine, ['rmi', '-f', good, bad, third], {env: tb.processEnv}).catch(() => {})
    await rm(dir, {recursive: true, force: true})
  })

  const install = (archive: string) => installArchive({archive, keys: [pub], to: engine, dockerHost: tb.dockerHost, stateFile: path.join(dir, 'state.json')})
  const failed = (e: unknown) => e instanceof AirlockError && e.code === `install.${engine}_failed`

  it('the second of three images fails: none of the three is left', async () => {
    for (const ref of [good, bad, third]) assert.equal(await imageId(ref), undefined, `${ref}: a clean start`)
    const archive = await archiveOf('fresh', tarOf('hello'))
    await assert.rejects(install(archive), failed)
    for (const ref of [good, bad, third]) assert.equal(await imageId(ref), undefined, `${ref} is left in ${engine}`)
  })

  it('the last of three images fails: the two loaded before it are removed again', async () => {
    for (const ref of [good, bad, third]) assert.equal(await imageId(ref), undefined, `${ref}: a clean start`)
    const archive = await archiveOf('last', tarOf('hello last'), true)
    await assert.rejects(install(archive), failed)
    for (const ref of [good, bad, third]) assert.equal(await imageId(ref), undefined, `${ref} is left in ${engine}`)
  })

  it('a name that held another image before holds it again', async () => {
    // First load the good image alone, so its name exists with one image ID.
    const alone = path.join(dir, 'alone.tar')
    await syntheticArchive(path.join(dir, 'blobs-alone'), alone, [{name: good, layers: [tarOf('before')]}], {key})
    await install(alone)
    const was = await imageId(good)
    assert.ok(was)
    await assert.rejects(install(await archiveOf('moved', tarOf('after'))), failed)
    assert.equal(await imageId(good), was)
  })
})

/** A one-file layer tar (uncompressed), so that its diff_id is its sha256. */
function tarOf(text: string): Buffer {
  const data = Buffer.from(`${text}\n`)
  return Buffer.concat([encodeHeader('hello.txt', data.length, 0), data, Buffer.alloc(paddingFor(data.length)), Buffer.alloc(2 * BLOCK)])
}
