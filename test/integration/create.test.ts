import assert from 'node:assert/strict'
import {execFile, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {after, before, describe, it} from 'node:test'

import {splitTar} from '../helpers/archive.js'
import {buildImage, pushImage} from '../helpers/images.js'
import {Testbed, testbed} from '../helpers/testbed.js'
import {runCli} from '../helpers/cli.js'

const execFileP = promisify(execFile)
const DOCKER = '/usr/bin/docker'

let tb: Testbed
let dir: string
let archive: string
let created: CreateJson

interface CreateJson {
  archive: string
  images: {ref: string; name: string; digest: string; sourceDigest: string; platforms: string[]}[]
  blobs: number
  bytesWritten: number
  bytesReferenced: number
  dedupeSaved: number
  bytesPulled: number
  bytesCached: number
  signed: boolean
  signer?: {fingerprint: string}
  lockFile: string
}

function airlock(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(args, {cwd: dir, env: {...tb.processEnv, ...env}, timeout: 300_000})
}

async function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const {stdout} = await execFileP(cmd, args, {env: {...tb.processEnv, ...env}, maxBuffer: 64 * 1024 * 1024, timeout: 300_000})
  return stdout
}

const NAMES = {
  appA: '127.0.0.1:5301/testbed/app-a:1',
  appB: '127.0.0.1:5301/testbed/app-b:1',
  appC: '127.0.0.1:5301/testbed/app-c:1',
  multi: '127.0.0.1:5301/testbed/multi:1',
  multiAmd64: 'airlock.test/testbed/multi:amd64-only',
  secret: '127.0.0.1:5302/private/secret:1',
  big: '127.0.0.1:5301/testbed/big:1',
}

function bundleYaml(name: string, images: string, registries = ''): string {
  return `apiVersion: airlock/v1
kind: Bundle
metadata:
  name: ${name}
  version: 1.0.0
  description: create acceptance test
platforms: [linux/amd64]
images:
${images}
registries:
  127.0.0.1:5301: {insecure: true}
${registries}`
}

describe('airlock create against the real testbed', {timeout: 900_000}, () => {
  before(async () => {
    tb = await testbed()
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-create-test-'))
    // A realistically sized image (an incompressible 6 MB layer on the shared base): per-entry tar
    // overhead is fixed, so the 1% bound is about real-sized layers, not 1 KB test layers.
    const bigLayout = path.join(dir, 'layout-big')
    const {randomBytes} = await import('node:crypto')
    await buildImage({layers: [{files: {'data/blob.bin': randomBytes(6 * 1024 * 1024)}}], config: {Cmd: ['/bin/true']}}, bigLayout, '1')
    await pushImage(bigLayout, NAMES.big, {tag: '1'})
    const k = airlock(['key', 'generate', '--name', 'Create Test', '--email', 'create@airlock.invalid', '--out', path.join(dir, 'release')])
    assert.equal(k.code, 0, k.stderr)
    await writeFile(path.join(dir, 'bundle.yaml'), bundleYaml('acceptance', `  - ${NAMES.appA}
  - ${NAMES.appB}
  - ${NAMES.appC}
  - ref: ${NAMES.multi}
    platforms: [linux/amd64, linux/arm64/v8]
  - ref: ${NAMES.multi}
    platforms: [linux/amd64]
    name: ${NAMES.multiAmd64}
  - ${NAMES.secret}
  - ${NAMES.big}`, `  127.0.0.1:5302:
    auth: {usernameEnv: TB_USER, passwordEnv: TB_PASS}
`))
    archive = path.join(dir, 'bundle.tar')
    const r = airlock(['create', 'bundle.yaml', '--sign-key', 'release.key.asc', '-o', archive, '--cache-dir', path.join(dir, 'cache'), '--json'],
      {SOURCE_DATE_EPOCH: '1700000000', TB_USER: tb.auth.username, TB_PASS: tb.auth.password})
    assert.equal(r.code, 0, r.stderr + r.stdout)
    created = JSON.parse(r.stdout) as CreateJson
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('resolves every image, dedupes blobs, and stays within 1% of the unique blob bytes', async () => {
    assert.equal(created.images.length, 7)
    assert.equal(created.signed, true)
    const meta = JSON.parse(splitTar(await readFile(archive))[0].data.toString()) as {blobs: {bytes: number; count: number}; images: {name: string; digest: string; sourceDigest: string; platforms: string[]; manifests: {layers: string[]}[]}[]}
    assert.ok(created.bytesWritten <= meta.blobs.bytes * 1.01, `${created.bytesWritten} > ${meta.blobs.bytes} + 1%`)
    assert.ok(created.dedupeSaved > 0)
    const names = splitTar(await readFile(archive)).map((e) => e.name)
    assert.equal(names.filter((n) => n === `blobs/sha256/${tb.layers.base.slice(7)}`).length, 1, 'shared base layer stored once')
    assert.equal(names.filter((n) => n === `blobs/sha256/${tb.layers.middle.slice(7)}`).length, 1, 'shared middle layer stored once')
    const byName = new Map(meta.images.map((i) => [i.name, i]))
    assert.equal(byName.get(NAMES.appA)!.digest, tb.images['app-a'].digest)
    assert.equal(byName.get(NAMES.secret)!.digest, tb.images.secret.digest)
    const full = byName.get(NAMES.multi)!
    assert.equal(full.digest, tb.images.multi.digest, 'all platforms taken: the registry index is kept as is')
    assert.deepEqual(full.platforms, ['linux/amd64', 'linux/arm64/v8'])
    const subset = byName.get(NAMES.multiAmd64)!
    assert.notEqual(subset.digest, tb.images.multi.digest, 'a platform subset gets a new index')
    assert.equal(subset.sourceDigest, tb.images.multi.digest, 'and records the original index digest')
    assert.deepEqual(subset.platforms, ['linux/amd64'])
    // lock file beside bundle.yaml
    const lock = await readFile(path.join(dir, 'bundle.lock.yaml'), 'utf8')
    assert.match(lock, new RegExp(tb.images['app-b'].digest))
  })

  it('extracted archive passes sha256sum -c and gpg --verify with the exported public key', async () => {
    const x = path.join(dir, 'x')
    await mkdir(x)
    await sh('tar', ['-xf', archive, '-C', x])
    const sums = await sh('sha256sum', ['-c', 'checksums.sha256'].map(String), {}).catch(() => '')
    void sums
    const c = spawnSync('sha256sum', ['-c', 'checksums.sha256'], {cwd: x, encoding: 'utf8'})
    assert.equal(c.status, 0, c.stdout + c.stderr)
    const gnupg = await mkdtemp(path.join(os.tmpdir(), 'airlock-gpg-'))
    spawnSync('gpg', ['--batch', '--import', path.join(dir, 'release.pub.asc')], {env: {...process.env, GNUPGHOME: gnupg}})
    const v = spawnSync('gpg', ['--batch', '--status-fd', '1', '--verify', 'checksums.sha256.asc', 'checksums.sha256'], {cwd: x, env: {...process.env, GNUPGHOME: gnupg}, encoding: 'utf8'})
    assert.equal(v.status, 0, v.stderr)
    assert.match(v.stdout, /GOODSIG/)
    await rm(gnupg, {recursive: true, force: true})
  })

  it('the same file loads with docker load, and the loaded image runs', async () => {
    await sh(DOCKER, ['load', '-i', archive])
    try {
      const out = await sh(DOCKER, ['run', '--rm', '--network', 'none', NAMES.appA])
      assert.equal(out.trim(), 'hello from app-a')
      const outB = await sh(DOCKER, ['run', '--rm', '--network', 'none', NAMES.appB])
      assert.equal(outB.trim(), 'hello from app-b')
      const id = (await sh(DOCKER, ['image', 'inspect', '--format', '{{.Id}}', NAMES.multiAmd64])).trim()
      assert.match(id, /^sha256:/)
    } finally {
      await sh(DOCKER, ['rmi', '-f', NAMES.appA, NAMES.appB, NAMES.appC, NAMES.multi, NAMES.multiAmd64, NAMES.secret, NAMES.big]).catch(() => '')
    }
  })

  it('the same file loads with podman load', async () => {
    const out = await sh('podman', ['load', '-i', archive])
    try {
      assert.match(out, /Loaded image/)
      const images = await sh('podman', ['images', '--format', '{{.Repository}}:{{.Tag}}'])
      assert.match(images, /127\.0\.0\.1:5301\/testbed\/app-a:1/)
    } finally {
      await sh('podman', ['rmi', '-a', '-f']).catch(() => '')
    }
  })

  it('the same file imports with ctr images import under the full names', async () => {
    const a = tb.containerdAddress
    await sh('ctr', ['-a', a, '-n', 'airlock-create-test', 'images', 'import', '--all-platforms', '--no-unpack', archive])
    try {
      const ls = await sh('ctr', ['-a', a, '-n', 'airlock-create-test', 'images', 'ls', '-q'])
      for (const n of [NAMES.appA, NAMES.appB, NAMES.multi, NAMES.multiAmd64]) assert.ok(ls.split('\n').includes(n), `${n} missing from ${ls}`)
    } finally {
      const ls = await sh('ctr', ['-a', a, '-n', 'airlock-create-test', 'images', 'ls', '-q']).catch(() => '')
      for (const n of ls.split('\n').filter(Boolean)) await sh('ctr', ['-a', a, '-n', 'airlock-create-test', 'images', 'rm', n]).catch(() => '')
    }
  })

  it('skopeo reads it as oci-archive:FILE:FULL_REFERENCE', async () => {
    const out = JSON.parse(await sh('skopeo', ['inspect', '--raw', `oci-archive:${archive}:${NAMES.appB}`])) as {layers: unknown[]}
    assert.ok(out.layers.length >= 2)
    const info = JSON.parse(await sh('skopeo', ['inspect', `oci-archive:${archive}:${NAMES.appB}`])) as {Digest: string}
    assert.equal(info.Digest, tb.images['app-b'].digest)
  })

  it('two creates with the same SOURCE_DATE_EPOCH are byte-identical, whatever the concurrency and cache', async () => {
    const again = path.join(dir, 'again.tar')
    // the first create used a blob cache and 8 pulls at once; this one no cache and one pull at a time
    const r = airlock(['create', 'bundle.yaml', '--sign-key', 'release.key.asc', '-o', again, '--jobs', '1', '--json'],
      {SOURCE_DATE_EPOCH: '1700000000', TB_USER: tb.auth.username, TB_PASS: tb.auth.password})
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as CreateJson).bytesCached, 0)
    assert.ok((await readFile(again)).equals(await readFile(archive)))
  })

  it('a blob cache entry damaged on disk is noticed, pulled again and replaced; the archive is still identical', async () => {
    const cache = path.join(dir, 'cache')
    const m = tb.images['app-b'].manifests[0]
    const layer = {digest: m.layers.at(-1)!, size: m.layerSizes.at(-1)!}
    const entry = path.join(cache, 'blobs', 'sha256', layer.digest.slice(7))
    const bytes = await readFile(entry)
    bytes[bytes.length >> 1] ^= 0xff
    await writeFile(entry, bytes)
    const out = path.join(dir, 'cached-again.tar')
    const r = airlock(['create', 'bundle.yaml', '--sign-key', 'release.key.asc', '-o', out, '--cache-dir', cache, '--json'],
      {SOURCE_DATE_EPOCH: '1700000000', TB_USER: tb.auth.username, TB_PASS: tb.auth.password})
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, new RegExp(`cached blob ${layer.digest} is corrupt.*pulling it again`))
    const j = JSON.parse(r.stdout) as CreateJson
    assert.equal(j.bytesPulled, layer.size)
    assert.ok(j.bytesCached > 0)
    assert.ok((await readFile(out)).equals(await readFile(archive)))
    assert.equal(createHash('sha256').update(await readFile(entry)).digest('hex'), layer.digest.slice(7), 'the cache entry was not replaced')
  })

  it('private registry credentials from a docker config.json; without them a clear error and no output file', async () => {
    const cfgDir = path.join(dir, 'dockercfg')
    await mkdir(cfgDir)
    const auth = Buffer.from(`${tb.auth.username}:${tb.auth.password}`).toString('base64')
    await writeFile(path.join(cfgDir, 'config.json'), JSON.stringify({auths: {'127.0.0.1:5302': {auth}}}))
    await writeFile(path.join(dir, 'private.yaml'), bundleYaml('private', `  - ${NAMES.secret}`))
    const out = path.join(dir, 'private.tar')
    const ok = airlock(['create', 'private.yaml', '--sign-key', 'release.key.asc', '-o', out, '--cache-dir', path.join(dir, 'cache3'), '--registry-config', path.join(cfgDir, 'config.json'), '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal((JSON.parse(ok.stdout) as CreateJson).images[0].digest, tb.images.secret.digest)
    const out2 = path.join(dir, 'denied.tar')
    const denied = airlock(['create', 'private.yaml', '--sign-key', 'release.key.asc', '-o', out2, '--cache-dir', path.join(dir, 'cache4')], {DOCKER_CONFIG: path.join(dir, 'empty-docker-config')})
    assert.equal(denied.code, 1, denied.stderr)
    assert.match(denied.stderr, /127\.0\.0\.1:5302\/private\/secret:1/)
    assert.match(denied.stderr, /unauthori[sz]ed|authentication/i)
    assert.doesNotMatch(denied.stderr, /\n\s+at /)
    assert.ok(!existsSync(out2) && !existsSync(`${out2}.partial`))
    for (const text of [ok.stdout, ok.stderr, denied.stderr, await readFile(path.join(dir, 'private.lock.yaml'), 'utf8'), (await readFile(out)).toString('latin1')]) {
      assert.ok(!text.includes(tb.auth.password), 'the password must never appear in output, lock file or archive')
    }
  })

  it('a missing platform is a clear error naming the image and the platforms it has', async () => {
    await writeFile(path.join(dir, 'noplat.yaml'), bundleYaml('noplat', `  - ref: ${NAMES.multi}\n    platforms: [linux/s390x]`))
    const r = airlock(['create', 'noplat.yaml', '--unsigned', '-o', path.join(dir, 'noplat.tar'), '--cache-dir', path.join(dir, 'cache')])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /testbed\/multi:1 has no linux\/s390x image; it has: linux\/amd64, linux\/arm64\/v8/)
  })

  it('--locked fails after a tag is re-pushed to a new digest', async () => {
    const ref = '127.0.0.1:5301/testbed/locktest:1'
    const push = async (msg: string) => {
      const layout = path.join(dir, `layout-${msg}`)
      await buildImage({layers: [{files: {'msg.txt': msg}}], config: {Cmd: ['/msg.txt']}}, layout, '1')
      await pushImage(layout, ref, {tag: '1'})
    }
    await push('first')
    await writeFile(path.join(dir, 'lock.yaml'), bundleYaml('locktest', `  - ${ref}`))
    const first = airlock(['create', 'lock.yaml', '--unsigned', '-o', path.join(dir, 'lock1.tar'), '--cache-dir', path.join(dir, 'cache')])
    assert.equal(first.code, 0, first.stderr)
    const again = airlock(['create', 'lock.yaml', '--unsigned', '--locked', '-o', path.join(dir, 'lock2.tar'), '--cache-dir', path.join(dir, 'cache')])
    assert.equal(again.code, 0, again.stderr)
    await push('second')
    const locked = airlock(['create', 'lock.yaml', '--unsigned', '--locked', '-o', path.join(dir, 'lock3.tar'), '--cache-dir', path.join(dir, 'cache')])
    assert.equal(locked.code, 2, locked.stderr)
    assert.match(locked.stderr, /--locked: resolution differs/)
    assert.match(locked.stderr, /testbed\/locktest:1: locked to sha256:[a-f0-9]{64}, the registry now has sha256:/)
    assert.ok(!existsSync(path.join(dir, 'lock3.tar')))
  })
})
