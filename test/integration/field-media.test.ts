import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {copyFile, mkdtemp, readFile, readdir, rename, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {after, before, describe, it} from 'node:test'

import {registryTags} from '../helpers/registry-state.js'
import {Testbed, testbed} from '../helpers/testbed.js'
import {BIN as bin, runCli} from '../helpers/cli.js'

const execFileP = promisify(execFile)
const DOCKER = '/usr/bin/docker'

let tb: Testbed
let dir: string
let pub: string

function airlock(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(args, {cwd: dir, env: {...tb.processEnv, AIRLOCK_STATE_FILE: path.join(dir, 'installed.json'), ...env}, timeout: 300_000})
}

const BASE_YAML = `apiVersion: airlock/v1
kind: Bundle
metadata: {name: field, version: 1.0.0}
images:
  - 127.0.0.1:5301/testbed/app-a:1
  - 127.0.0.1:5301/testbed/app-b:1
`
const NEXT_YAML = `apiVersion: airlock/v1
kind: Bundle
metadata: {name: field, version: 1.1.0}
images:
  - 127.0.0.1:5301/testbed/app-a:1
  - 127.0.0.1:5301/testbed/app-c:1
  - ref: 127.0.0.1:5301/testbed/multi:1
    platforms: all
`

describe('field media: split archives and differential bundles', {timeout: 600_000}, () => {
  const parts = () => readdir(dir).then((n) => n.filter((x) => /^split\.tar\.\d{3}$/.test(x)).sort())
  before(async () => {
    tb = await testbed()
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-field-'))
    assert.equal(airlock(['key', 'generate', '--name', 'Field', '--out', 'release']).code, 0)
    pub = path.join(dir, 'release.pub.asc')
    await writeFile(path.join(dir, 'base.yaml'), BASE_YAML)
    await writeFile(path.join(dir, 'next.yaml'), NEXT_YAML)
    const cache = path.join(dir, 'cache')
    let r = airlock(['create', 'base.yaml', '--sign-key', 'release.key.asc', '-o', 'base.tar', '--cache-dir', cache])
    assert.equal(r.code, 0, r.stderr)
    r = airlock(['create', 'base.yaml', '--sign-key', 'release.key.asc', '-o', 'split.tar', '--split', '400K', '--cache-dir', cache, '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual((JSON.parse(r.stdout) as {files: string[]}).files.map((f) => path.basename(f)), ['split.tar.000', 'split.tar.001', 'split.tar.002'])
    r = airlock(['create', 'next.yaml', '--sign-key', 'release.key.asc', '-o', 'next.tar', '--since', 'base.tar', '--cache-dir', cache, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout) as {base: {name: string; version: string; blobsLeftOut: number}}
    assert.equal(j.base.version, '1.0.0')
    assert.ok(j.base.blobsLeftOut >= 2, 'the shared busybox and middle layers are left out')
  })
  after(async () => {
    await execFileP(DOCKER, ['rmi', '-f', '127.0.0.1:5301/testbed/app-a:1', '127.0.0.1:5301/testbed/app-b:1', '127.0.0.1:5301/testbed/app-c:1', '127.0.0.1:5301/testbed/multi:1'], {env: tb.processEnv}).catch(() => '')
    await rm(dir, {recursive: true, force: true})
  })

  it('parts are ≤ SIZE, metadata and signature sit in the first part, and cat of the parts is the archive', async () => {
    const names = await parts()
    const sizes = await Promise.all(names.map(async (n) => (await readFile(path.join(dir, n))).length))
    assert.ok(sizes.every((s) => s <= 400 * 1024))
    const first = await readFile(path.join(dir, names[0]))
    assert.equal(first.toString('latin1', 0, 12), 'airlock.json')
    assert.ok(first.includes('-----BEGIN PGP SIGNATURE-----'))
    const joined = Buffer.concat(await Promise.all(names.map((n) => readFile(path.join(dir, n)))))
    await writeFile(path.join(dir, 'joined.tar'), joined)
    assert.equal(airlock(['verify', 'joined.tar', '--key', pub]).code, 0)
    const i = airlock(['inspect', 'split.tar.000', '--json'])
    const ij = JSON.parse(i.stdout) as {parts: {file: string}[]; partSize: number}
    assert.equal(ij.parts.length, 3)
    assert.equal(ij.partSize, 400 * 1024)
  })

  it('a 3-part split installs straight from its parts into docker, and runs', async () => {
    const r = airlock(['install', 'split.tar.000', '--key', pub, '--to', 'docker'])
    assert.equal(r.code, 0, r.stderr)
    const {stdout} = await execFileP(DOCKER, ['run', '--rm', '--network', 'none', '127.0.0.1:5301/testbed/app-b:1'], {env: tb.processEnv})
    assert.equal(stdout.trim(), 'hello from app-b')
    // a glob of the parts works too
    assert.equal(airlock(['verify', 'split.tar.*', '--key', pub]).code, 0)
  })

  it('serve reads a split archive straight from its parts', async () => {
    const {spawn} = await import('node:child_process')
    const child = spawn(process.execPath, [bin, 'serve', 'split.tar.000', '--key', pub, '--listen', '127.0.0.1:0', '--json'], {cwd: dir, env: tb.processEnv, stdio: ['ignore', 'pipe', 'pipe']})
    try {
      const ready = await new Promise<{address: string}>((resolve, reject) => {
        let buf = ''
        child.stdout.on('data', (c: Buffer) => {
          buf += c.toString()
          const line = buf.split('\n').find((l) => l.includes('"ready"'))
          if (line) resolve(JSON.parse(line) as {address: string})
        })
        child.on('exit', (code) => reject(new Error(`serve exited ${code}`)))
      })
      const addr = ready.address.replace(/^https?:\/\//, '')
      const {stdout} = await execFileP('skopeo', ['inspect', '--tls-verify=false', `docker://${addr}/testbed/app-b:1`], {env: tb.processEnv})
      assert.equal((JSON.parse(stdout) as {Digest: string}).Digest, tb.images['app-b'].digest)
    } finally {
      child.kill('SIGTERM')
    }
  })

  it('a missing, reordered, duplicated or foreign part is detected and named', async () => {
    const p = (n: number) => path.join(dir, `split.tar.00${n}`)
    // missing
    await rename(p(1), path.join(dir, 'hold'))
    let r = airlock(['verify', 'split.tar.000', '--key', pub])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /part .*split\.tar\.001 is missing/)
    await rename(path.join(dir, 'hold'), p(1))
    // reordered: swap .000 and .001 contents is caught at once; swap .001/.002 is caught by content
    await copyFile(p(1), path.join(dir, 'hold'))
    await copyFile(p(0), p(1))
    r = airlock(['verify', 'split.tar.000', '--key', pub])
    assert.equal(r.code, 3, r.stderr)
    assert.match(r.stderr, /split\.tar\.00\d.*a part may be missing, reordered, duplicated or foreign/)
    await copyFile(path.join(dir, 'hold'), p(1))
    // duplicated last part (an extra .003)
    await copyFile(p(2), p(3))
    r = airlock(['verify', 'split.tar.000', '--key', pub])
    assert.equal(r.code, 3, r.stderr)
    assert.match(r.stderr, /split\.tar\.00[23]/)
    await rm(p(3))
    // foreign part: same size, other content
    const other = Buffer.from(await readFile(p(1)))
    other.fill(0x41, 1000, 2000)
    await copyFile(p(1), path.join(dir, 'hold'))
    await writeFile(p(1), other)
    r = airlock(['verify', 'split.tar.000', '--key', pub])
    assert.equal(r.code, 3)
    assert.match(r.stderr, /split\.tar\.00[12]/)
    await copyFile(path.join(dir, 'hold'), p(1))
    assert.equal(airlock(['verify', 'split.tar.000', '--key', pub]).code, 0)
  })

  it('a differential bundle records its base, refuses a target without it, and installs on top of it', async () => {
    const i = JSON.parse(airlock(['inspect', 'next.tar', '--json']).stdout) as {base: {name: string; version: string; blobs: number}}
    assert.deepEqual([i.base.name, i.base.version], ['field', '1.0.0'])
    const size = (await readFile(path.join(dir, 'next.tar'))).length
    const full = (await readFile(path.join(dir, 'base.tar'))).length
    assert.ok(size < full / 4, `differential ${size} bytes should be far smaller than the base ${full}`)
    const target = tb.registries.target
    const before = await registryTags(target)
    let r = airlock(['install', 'next.tar', '--key', pub, '--to', `registry://${target}/field-empty`])
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /target lacks \d+ of the \d+ blob\(s\) this differential bundle expects from field 1\.0\.0/)
    assert.equal(await registryTags(target), before, 'nothing was tagged')
    r = airlock(['install', 'base.tar', '--key', pub, '--to', `registry://${target}/field`])
    assert.equal(r.code, 0, r.stderr)
    r = airlock(['install', 'next.tar', '--key', pub, '--to', `registry://${target}/field`, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const res = await fetch(`http://${target}/v2/field/testbed/multi/manifests/1`, {method: 'HEAD', headers: {Accept: 'application/vnd.oci.image.index.v1+json'}})
    assert.equal(res.headers.get('docker-content-digest'), tb.images.multi.digest)
    const {stdout} = await execFileP('skopeo', ['inspect', '--tls-verify=false', `docker://${target}/field/testbed/app-c:1`], {env: tb.processEnv})
    assert.equal((JSON.parse(stdout) as {Digest: string}).Digest, tb.images['app-c'].digest)
  })

  it('docker cannot load a partial archive: a clear explanation, and --base streams the missing layers', async () => {
    await execFileP(DOCKER, ['rmi', '-f', '127.0.0.1:5301/testbed/app-c:1'], {env: tb.processEnv}).catch(() => '')
    let r = airlock(['install', 'next.tar', '--key', pub, '--to', 'docker'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /differential bundle.*docker cannot load a partial archive\. Pass --base/)
    r = airlock(['install', 'next.tar', '--key', pub, '--to', 'docker', '--base', 'split.tar.000', '--allow-downgrade'])
    assert.equal(r.code, 0, r.stderr)
    const {stdout} = await execFileP(DOCKER, ['run', '--rm', '--network', 'none', '127.0.0.1:5301/testbed/app-c:1'], {env: tb.processEnv})
    assert.equal(stdout.trim(), 'hello from app-c')
    r = airlock(['install', 'next.tar', '--key', pub, '--to', 'docker', '--base', 'next.tar', '--allow-downgrade'])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /--base is field 1\.1\.0, but this bundle was made against field 1\.0\.0|lacks/)
  })
})
