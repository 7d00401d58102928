/**
 * Two operators at once, through the built CLI as separate processes: concurrent installs into one
 * oci: layout and one state file lose nothing; creates sharing a blob cache all verify; two creates
 * onto one -o: one refuses at once, the other's archive verifies; an install into oci: killed
 * (-9) at random points and run again leaves a complete layout with no temporary file.
 */
import assert from 'node:assert/strict'
import {execFile, spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {after, before, describe, it} from 'node:test'

import * as openpgp from 'openpgp'

import {readArchive} from '../../src/transports/archive/reader.js'
import {randomLayer, syntheticArchive} from '../helpers/archive.js'
import {BIN} from '../helpers/cli.js'
import {FaultProxy, times} from '../helpers/fault-proxy.js'
import {Testbed, testbed} from '../helpers/testbed.js'

const execFileP = promisify(execFile)

interface Run {code: number | null; stdout: string; stderr: string}

/** The CLI as its own process, resolving when it ends. */
function cli(args: string[], env: NodeJS.ProcessEnv = process.env): {child: ReturnType<typeof spawn>; done: Promise<Run>} {
  const child = spawn(process.execPath, [BIN, ...args], {env, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  return {child, done: new Promise((resolve) => child.on('close', (code) => resolve({code, stdout, stderr})))}
}

type Index = {manifests: {digest: string; annotations: Record<string, string>}[]}

describe('concurrent airlock processes', () => {
  let tb: Testbed
  let dir: string
  let pub: string
  const bundles: {file: string; name: string; digest: string}[] = []

  before(async () => {
    tb = await testbed()
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-concurrent-'))
    const pair = await openpgp.generateKey({type: 'ecc', curve: 'curve25519Legacy', userIDs: [{name: 't'}], format: 'armored', date: new Date(0)})
    const key = await openpgp.readPrivateKey({armoredKey: pair.privateKey})
    pub = path.join(dir, 'pub.asc')
    await writeFile(pub, pair.publicKey)
    // 8 bundles sharing two base layers, each with a layer of its own.
    const base = [randomLayer(400_000), randomLayer(300_000)]
    for (let i = 0; i < 8; i++) {
      const name = `concurrent.test/app-${i}:1`
      const file = path.join(dir, `b${i}.tar`)
      const meta = await syntheticArchive(path.join(dir, `blobs-${i}`), file, [{name, layers: [...base, randomLayer(200_000 + i)]}], {key, bundleName: `bundle-${i}`})
      bundles.push({file, name, digest: meta.images[0].digest})
    }
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  async function checkLayout(oci: string, expected: typeof bundles): Promise<void> {
    const index = JSON.parse(await readFile(path.join(oci, 'index.json'), 'utf8')) as Index
    assert.deepEqual(index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']).sort(), expected.map((b) => b.name).sort())
    for (const dirPath of [oci, path.join(oci, 'blobs', 'sha256')]) {
      assert.deepEqual((await readdir(dirPath)).filter((n) => n.includes('partial') || n.includes('lock')), [], `temporary files left in ${dirPath}`)
    }
  }

  it('8 installs of 8 bundles at once into one oci: layout and one state file keep everything (5 rounds)', async () => {
    for (let round = 0; round < 5; round++) {
      const oci = path.join(dir, `oci-${round}`)
      const state = path.join(dir, `state-${round}.json`)
      const runs = await Promise.all(bundles.map((b) => cli(['install', b.file, '--key', pub, '--to', `oci:${oci}`, '--state-file', state]).done))
      for (const r of runs) assert.equal(r.code, 0, r.stderr)
      await checkLayout(oci, bundles)
      for (const b of bundles) {
        const {stdout} = await execFileP('skopeo', ['inspect', `oci:${oci}:${b.name}`], {env: tb.processEnv})
        assert.equal((JSON.parse(stdout) as {Digest: string}).Digest, b.digest)
      }
      const recorded = JSON.parse(await readFile(state, 'utf8')) as {bundles: Record<string, {name: string}>}
      assert.deepEqual(Object.values(recorded.bundles).map((r) => r.name).sort(), bundles.map((_, i) => `bundle-${i}`).sort(), 'every install recorded')
    }
  })

  it('an install into oci: killed -9 at random points, then run again, leaves a complete layout and no temporary file', async () => {
    const oci = path.join(dir, 'oci-killed')
    // A bundle large enough that the kills land while blobs are written (node starts in ~0.2 s).
    const big = path.join(dir, 'big.tar')
    const pair = await openpgp.generateKey({type: 'ecc', curve: 'curve25519Legacy', userIDs: [{name: 'k'}], format: 'armored', date: new Date(0)})
    const bigKey = path.join(dir, 'big.pub.asc')
    await writeFile(bigKey, pair.publicKey)
    const meta = await syntheticArchive(path.join(dir, 'blobs-big'), big, [{name: 'concurrent.test/big:1', layers: [randomLayer(24_000_000), randomLayer(24_000_000), randomLayer(100_000)]}], {key: await openpgp.readPrivateKey({armoredKey: pair.privateKey})})
    for (const delay of [250, 320, 400, 480, 560, 650, 750, 900]) {
      const {child, done} = cli(['install', big, '--key', bigKey, '--to', `oci:${oci}`, '--state-file', path.join(dir, 'state-killed.json')])
      setTimeout(() => child.kill('SIGKILL'), delay)
      await done
    }
    const last = await cli(['install', big, '--key', bigKey, '--to', `oci:${oci}`, '--state-file', path.join(dir, 'state-killed.json')]).done
    assert.equal(last.code, 0, last.stderr)
    await checkLayout(oci, [{file: big, name: 'concurrent.test/big:1', digest: meta.images[0].digest}])
  })

  const specFor = async (file: string, host: string) => {
    const images = ['app-a', 'app-b', 'app-c'] as const
    await writeFile(file, ['apiVersion: airlock/v1', 'kind: Bundle', 'metadata: {name: conc, version: 1.0.0}', 'platforms: [linux/amd64]', 'images:',
      ...images.map((n) => `  - ${host}/testbed/${n}:1`), 'registries:', `  ${host}: {insecure: true}`, ''].join('\n'))
    return file
  }

  it('4 creates sharing one --cache-dir all verify', async () => {
    const spec = await specFor(path.join(dir, 'bundle.yaml'), tb.registries.open)
    const cache = path.join(dir, 'cache')
    const creates = await Promise.all([0, 1, 2, 3].map((i) => cli(['create', spec, '--unsigned', '-o', path.join(dir, `c${i}.tar`), '--cache-dir', cache]).done))
    for (const [i, r] of creates.entries()) {
      assert.equal(r.code, 0, r.stderr)
      await readArchive([path.join(dir, `c${i}.tar`)], {trustedKeys: [], allowUnsigned: true})
    }
  })

  it('2 creates onto one -o: the second refuses at once naming the first, whose archive then verifies', async () => {
    // A layer of the first create pauses 3 s (layers are pulled only after the lock is taken), so that it is surely still writing.
    const proxy = await FaultProxy.start(tb.registries.open)
    try {
      proxy.rules = [times(1, new RegExp(tb.images['app-a'].manifests[0].layers[0]), {kind: 'stall', afterBytes: 0, ms: 3000})]
      const spec = await specFor(path.join(dir, 'slow.yaml'), proxy.host)
      const out = path.join(dir, 'same.tar')
      const first = cli(['create', spec, '--unsigned', '-o', out])
      const lock = `${out}.partial.lock`
      for (let i = 0; i < 200 && !existsSync(lock); i++) await new Promise((r) => setTimeout(r, 25))
      assert.ok(existsSync(lock), 'the first create never took its lock')
      const second = await cli(['create', spec, '--unsigned', '-o', out, '--json']).done
      assert.equal(second.code, 2, second.stdout + second.stderr)
      const err = (JSON.parse(second.stdout) as {error: {code: string; message: string}}).error
      assert.equal(err.code, 'create.busy')
      assert.match(err.message, new RegExp(`pid ${first.child.pid}`))
      const done = await first.done
      assert.equal(done.code, 0, done.stderr)
      await readArchive([out], {trustedKeys: [], allowUnsigned: true})
    } finally {
      await proxy.close()
    }
  })
})
