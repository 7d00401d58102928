/**
 * The real-service testbed itself: registries, dockerd, containerd, podman and the seeded images.
 * Brings the testbed up (and seeds it) if it is not already running.
 */
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {before, describe, test} from 'node:test'
import {promisify} from 'node:util'

import {OCI_INDEX, OCI_MANIFEST, buildImage, buildImageBlobs, layerTar, pushImage, sha256} from '../helpers/images.js'
import {type Testbed, testbed} from '../helpers/testbed.js'

const run = promisify(execFile)

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
const ACCEPT = [OCI_INDEX, 'application/vnd.docker.distribution.manifest.list.v2+json', OCI_MANIFEST, DOCKER_MANIFEST].join(', ')

let tb: Testbed

const basic = (t: Testbed) => 'Basic ' + Buffer.from(`${t.auth.username}:${t.auth.password}`).toString('base64')

async function manifest(host: string, repo: string, ref: string, auth?: string, method = 'GET') {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, {method, headers: {Accept: ACCEPT, ...(auth ? {Authorization: auth} : {})}})
  const body = method === 'GET' ? await res.text() : ''
  return {status: res.status, mediaType: res.headers.get('content-type')?.split(';')[0], digest: res.headers.get('docker-content-digest'), body}
}

before(async () => {
  tb = await testbed()
})

describe('testbed registries', () => {
  test('open and target registries answer /v2/ with 200', async () => {
    for (const host of [tb.registries.open, tb.registries.target]) {
      const res = await fetch(`http://${host}/v2/`)
      assert.equal(res.status, 200, host)
    }
  })

  test('auth registry: 401 with a Basic challenge without credentials, 401 with wrong ones, 200 with the right ones', async () => {
    const no = await fetch(`http://${tb.registries.auth}/v2/`)
    assert.equal(no.status, 401)
    assert.match(no.headers.get('www-authenticate') ?? '', /^Basic /i)
    const wrong = await fetch(`http://${tb.registries.auth}/v2/`, {headers: {Authorization: 'Basic ' + Buffer.from('airlock:nope').toString('base64')}})
    assert.equal(wrong.status, 401)
    const ok = await fetch(`http://${tb.registries.auth}/v2/`, {headers: {Authorization: basic(tb)}})
    assert.equal(ok.status, 200)
  })

  test('every listener is on 127.0.0.1', () => {
    for (const host of Object.values(tb.registries)) assert.match(host, /^127\.0\.0\.1:\d+$/)
    assert.match(tb.dockerHost, /^unix:\/\//)
  })
})

describe('seeded images', () => {
  test('env --json lists the six seeded images', () => {
    assert.equal(tb.seeded, true)
    assert.deepEqual(Object.keys(tb.images).sort(), ['app-a', 'app-b', 'app-c', 'base', 'multi', 'secret'])
    assert.equal(tb.images['app-a'].ref, `${tb.registries.open}/testbed/app-a:1`)
    assert.equal(tb.images.secret.ref, `${tb.registries.auth}/private/secret:1`)
    assert.equal(tb.images['app-a'].output, 'hello from app-a')
  })

  test('base, app-b and app-c are OCI manifests; app-a is Docker schema2; digests match env', async () => {
    const expect: Record<string, string> = {base: OCI_MANIFEST, 'app-a': DOCKER_MANIFEST, 'app-b': OCI_MANIFEST, 'app-c': OCI_MANIFEST}
    for (const [name, mt] of Object.entries(expect)) {
      const img = tb.images[name]
      const head = await manifest(img.registry, img.repository, img.tag, undefined, 'HEAD')
      assert.equal(head.status, 200, name)
      assert.equal(head.mediaType, mt, name)
      assert.equal(head.digest, img.digest, name)
      assert.equal(img.mediaType, mt)
      // OCI images are pushed byte for byte: the registry digest is the locally built one.
      if (mt === OCI_MANIFEST) assert.equal(img.digest, img.sourceDigest)
    }
  })

  test('multi is an OCI index of linux/amd64 and linux/arm64/v8 with distinct layers', async () => {
    const img = tb.images.multi
    const got = await manifest(img.registry, img.repository, img.tag)
    assert.equal(got.status, 200)
    assert.equal(got.mediaType, OCI_INDEX)
    assert.equal(got.digest, img.digest)
    const idx = JSON.parse(got.body) as {manifests: Array<{mediaType: string; digest: string; platform: {os: string; architecture: string; variant?: string}}>}
    assert.equal(idx.manifests.length, 2)
    assert.deepEqual(idx.manifests.map((m) => m.platform), [{os: 'linux', architecture: 'amd64'}, {os: 'linux', architecture: 'arm64', variant: 'v8'}])
    assert.deepEqual(img.platforms, ['linux/amd64', 'linux/arm64/v8'])
    for (const m of idx.manifests) assert.equal(m.mediaType, OCI_MANIFEST)
    const [amd, arm] = img.manifests
    assert.equal(amd.layers[0], tb.layers.base)
    assert.equal(arm.layers.length, 1)
    assert.ok(!amd.layers.includes(arm.layers[0]))
  })

  test('app-b and app-c share the base and middle layers (and app-a the base layer)', async () => {
    const layersOf = async (name: string) => {
      const img = tb.images[name]
      const got = await manifest(img.registry, img.repository, img.digest)
      return (JSON.parse(got.body) as {layers: Array<{digest: string}>}).layers.map((l) => l.digest)
    }
    const a = await layersOf('app-a')
    const b = await layersOf('app-b')
    const c = await layersOf('app-c')
    assert.equal(b.length, 3)
    assert.equal(c.length, 3)
    assert.deepEqual(b.slice(0, 2), [tb.layers.base, tb.layers.middle])
    assert.deepEqual(c.slice(0, 2), [tb.layers.base, tb.layers.middle])
    assert.notEqual(b[2], c[2])
    assert.equal(a.length, 2)
    assert.equal(a[0], tb.layers.base)
    // The shared blob is really served under both repositories.
    for (const repo of ['testbed/app-b', 'testbed/app-c', 'testbed/app-a']) {
      const res = await fetch(`http://${tb.registries.open}/v2/${repo}/blobs/${tb.layers.base}`, {method: 'HEAD'})
      assert.equal(res.status, 200, repo)
    }
  })

  test('the private image needs credentials', async () => {
    const img = tb.images.secret
    assert.equal(img.requiresAuth, true)
    const anon = await manifest(img.registry, img.repository, img.tag, undefined, 'HEAD')
    assert.equal(anon.status, 401)
    const authed = await manifest(img.registry, img.repository, img.tag, basic(tb), 'HEAD')
    assert.equal(authed.status, 200)
    assert.equal(authed.mediaType, OCI_MANIFEST)
    assert.equal(authed.digest, img.digest)
    // and it is not on the open registry
    const elsewhere = await manifest(tb.registries.open, img.repository, img.tag, undefined, 'HEAD')
    assert.equal(elsewhere.status, 404)
  })
})

describe('image helpers', () => {
  test('builds are deterministic and layers are real ustar archives', async () => {
    const spec = {layers: [{files: {'etc/hello.txt': 'hi\n', 'bin/run': {content: '#!/bin/sh\necho x\n', mode: 0o755}, 'bin/link': {symlink: 'run'}}}], config: {Cmd: ['/bin/run']}}
    const a = buildImageBlobs(spec)
    const b = buildImageBlobs(spec)
    assert.equal(a.digest, b.digest)
    assert.equal(a.layers[0].digest, b.layers[0].digest)
    const dir = await mkdtemp(path.join(tmpdir(), 'airlock-tb-'))
    try {
      const tarPath = path.join(dir, 'layer.tar')
      const tar = layerTar(spec.layers[0])
      assert.equal(sha256(tar), a.layers[0].diffId)
      await writeFile(tarPath, tar)
      const {stdout} = await run('tar', ['-tvf', tarPath], {env: {...process.env, TZ: 'UTC'}})
      const lines = stdout.trim().split('\n')
      assert.deepEqual(lines.map((l) => l.split(/\s+/).slice(5).join(' ')), ['bin/', 'bin/link -> run', 'bin/run', 'etc/', 'etc/hello.txt'])
      assert.match(lines[2], /^-rwxr-xr-x 0\/0 /)
      assert.match(lines[2], /2024-01-01/)
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })

  test('buildImage + pushImage round-trip to the target registry (OCI bytes kept, v2s2 converted)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'airlock-tb-'))
    const repo = `tbtest/roundtrip-${process.pid}`
    try {
      const img = await buildImage({layers: [{files: {'x.txt': `pid ${process.pid}\n`}}]}, path.join(dir, 'layout'), 'v1')
      const ociRef = `${tb.registries.target}/${repo}:oci`
      const pushed = await pushImage(img.dir, ociRef, {tag: 'v1'})
      assert.equal(pushed, img.digest)
      const head = await manifest(tb.registries.target, repo, 'oci', undefined, 'HEAD')
      assert.equal(head.digest, img.digest)
      assert.equal(head.mediaType, OCI_MANIFEST)
      const v2 = await pushImage(img.dir, `${tb.registries.target}/${repo}:v2s2`, {tag: 'v1', format: 'v2s2'})
      const head2 = await manifest(tb.registries.target, repo, 'v2s2', undefined, 'HEAD')
      assert.equal(head2.mediaType, DOCKER_MANIFEST)
      assert.equal(head2.digest, v2)
      // pushing with credentials to the auth registry
      const authRef = `${tb.registries.auth}/${repo}:oci`
      assert.equal(await pushImage(img.dir, authRef, {tag: 'v1', creds: tb.auth}), img.digest)
      // leave the target registry clean (delete is enabled)
      for (const [host, d, auth] of [[tb.registries.target, img.digest, undefined], [tb.registries.target, v2, undefined], [tb.registries.auth, img.digest, basic(tb)]] as const) {
        const del = await fetch(`http://${host}/v2/${repo}/manifests/${d}`, {method: 'DELETE', headers: auth ? {Authorization: auth} : {}})
        assert.equal(del.status, 202)
      }
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})

describe('testbed engines', () => {
  test('docker answers on DOCKER_HOST', async () => {
    const {stdout} = await run('docker', ['version', '--format', '{{.Server.Version}}'], {env: tb.processEnv})
    assert.match(stdout.trim(), /^\d+\.\d+/)
    const info = await run('docker', ['info', '--format', '{{.Driver}} {{.DockerRootDir}}'], {env: tb.processEnv})
    assert.equal(info.stdout.trim(), `vfs ${tb.stateDir}/docker/data`)
  })

  test('containerd answers on its own socket', async () => {
    const {stdout} = await run('ctr', ['-a', tb.containerdAddress, 'version'], {env: tb.processEnv})
    assert.match(stdout, /Server:\s*\n\s*Version:/)
    assert.ok(tb.containerdAddress.startsWith(tb.stateDir + '/'))
  })

  test('podman uses the testbed storage', async () => {
    const {stdout} = await run('podman', ['info', '--format', '{{.Store.GraphDriverName}} {{.Store.GraphRoot}}'], {env: tb.processEnv})
    assert.equal(stdout.trim(), `vfs ${tb.stateDir}/podman/graph`)
  })

  test('docker pulls app-a from the testbed registry and runs it', async () => {
    const ref = tb.images['app-a'].ref
    try {
      await run('docker', ['pull', '-q', ref], {env: tb.processEnv})
      const {stdout} = await run('docker', ['run', '--rm', '--network', 'none', ref], {env: tb.processEnv})
      assert.equal(stdout.trim(), 'hello from app-a')
      const {stdout: digests} = await run('docker', ['image', 'inspect', '--format', '{{join .RepoDigests " "}}', ref], {env: tb.processEnv})
      assert.ok(digests.includes(tb.images['app-a'].digest), digests)
    } finally {
      await run('docker', ['rmi', '-f', ref], {env: tb.processEnv}).catch(() => undefined)
    }
    const {stdout: left} = await run('docker', ['images', '-q', ref], {env: tb.processEnv})
    assert.equal(left.trim(), '')
  })
})
