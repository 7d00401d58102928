/**
 * Install destinations for the real engines of the testbed: Docker Engine (API over its unix
 * socket), podman (`podman load`) and containerd (`ctr images import`).
 *
 * Each engine gets a signed archive of a docker-schema2 image, an OCI image and a multi-platform
 * OCI index, confirms them, and (docker) runs one. Then tampered archives (a flipped byte in the
 * last blob, in a large middle blob, and junk after the end-of-archive marker — found only after
 * every blob was streamed to the engine) must fail with a VerifyError and leave the engine's image
 * list exactly as before. Images get names unique to this run and are removed afterwards.
 */
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {gzipSync} from 'node:zlib'
import {after, before, describe, it} from 'node:test'

import type * as openpgp from 'openpgp'

import {AirlockError, VerifyError} from '../../src/core/errors.js'
import {createBundle} from '../../src/create/create.js'
import type {Progress} from '../../src/core/progress.js'
import type {Destination, DestinationContext} from '../../src/transports/types.js'
import {generateKeyPair, loadPrivateKey, loadTrustedKeys} from '../../src/sign/keys.js'
import {readArchive, VerifiedHead} from '../../src/transports/archive/reader.js'
import {AirlockMetadata, FORMAT_VERSION, ImageRecord} from '../../src/transports/archive/metadata.js'
import {BlobFile, writeArchive} from '../../src/transports/archive/writer.js'
import {containerdDestination} from '../../src/transports/containerd/destination.js'
import {dockerDestination} from '../../src/transports/docker-daemon/destination.js'
import {InflatedSizeError} from '../../src/transports/docker-archive/tarstream.js'
import {installArchive} from '../../src/install/install.js'
import {podmanDestination} from '../../src/transports/podman/destination.js'
import {randomLayer, splitTar, syntheticArchive} from '../helpers/archive.js'
import {layerTar} from '../helpers/images.js'
import {Testbed, testbed} from '../helpers/testbed.js'

const execFileP = promisify(execFile)
const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker'
const RUN = `r${process.pid}${Date.now().toString(36)}`

let tb: Testbed
let dir: string
let trustedKeys: openpgp.Key[]
let signKey: openpgp.PrivateKey
let good: string
let meta: AirlockMetadata
let names: {a: string; b: string; multi: string}
const tampered: {label: string; file: string; entry: RegExp}[] = []

async function sh(bin: string, args: string[]): Promise<string> {
  const {stdout} = await execFileP(bin, args, {env: tb.processEnv, maxBuffer: 16 * 1024 * 1024, timeout: 120_000})
  return stdout
}

function progress(notes: string[]): Progress {
  return {begin() {}, advance() {}, note: (m) => notes.push(m), end() {}}
}

function ctxFor(notes: string[], pick?: (images: ImageRecord[]) => ImageRecord[]): DestinationContext {
  return {progress: progress(notes), selected: (head: VerifiedHead) => (pick ? pick(head.metadata.images) : head.metadata.images)}
}

async function install(dest: Destination, archive: string) {
  await readArchive([archive], {trustedKeys, sink: dest})
  return dest.confirm()
}

async function expectTamperRefused(dest: (file: string) => Promise<Destination>, list: () => Promise<string>, extra?: () => Promise<void>) {
  for (const t of tampered) {
    const before = await list()
    const d = await dest(t.file)
    await assert.rejects(install(d, t.file), (e: unknown) => {
      assert.ok(e instanceof VerifyError, `${t.label}: expected a VerifyError, got ${String(e)}`)
      assert.match(e.entry ?? '', t.entry, `${t.label}: ${e.message}`)
      assert.match(e.message, t.entry)
      return true
    }, t.label)
    assert.equal(await list(), before, `${t.label}: the image list changed`)
    if (extra) await extra()
  }
}

// ----------------------------------------------------------------- archive

/** Fallback when createBundle is unavailable: the same archive built with fetch + writeArchive. */
const ACCEPT = ['application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json'].join(', ')
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

async function archiveFromRegistry(images: {ref: string; name: string}[], blobDir: string, out: string, key: openpgp.PrivateKey): Promise<void> {
  await mkdir(blobDir, {recursive: true})
  const blobs = new Map<string, BlobFile>()
  const put = async (digest: string, data: Buffer) => {
    assert.equal(sha(data), digest)
    const p = path.join(blobDir, digest.slice(7))
    await writeFile(p, data)
    blobs.set(digest, {digest, size: data.length, path: p})
  }
  const records: ImageRecord[] = []
  for (const {ref, name} of images) {
    const [, host, repo, tag] = /^([^/]+)\/(.+):([^:/]+)$/.exec(ref)!
    const get = async (kind: string, r: string) => {
      const res = await fetch(`http://${host}/v2/${repo}/${kind}/${r}`, {headers: {Accept: ACCEPT}})
      assert.ok(res.ok, `${res.status} for ${ref} ${r}`)
      return Buffer.from(await res.arrayBuffer())
    }
    const top = await get('manifests', tag)
    const topDigest = sha(top)
    await put(topDigest, top)
    const own = new Map<string, number>([[topDigest, top.length]])
    const doc = JSON.parse(top.toString()) as {mediaType: string; manifests?: {digest: string; platform: {os: string; architecture: string; variant?: string}}[]}
    const list = doc.manifests
      ? doc.manifests.map((d) => ({digest: d.digest, platform: [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/')}))
      : [{digest: topDigest, platform: 'linux/amd64'}]
    const manifests = []
    for (const m of list) {
      const buf = m.digest === topDigest ? top : await get('manifests', m.digest)
      if (m.digest !== topDigest) {
        await put(m.digest, buf)
        own.set(m.digest, buf.length)
      }
      const md = JSON.parse(buf.toString()) as {mediaType: string; config: {digest: string; size: number}; layers: {digest: string; size: number}[]}
      for (const b of [md.config, ...md.layers]) {
        if (!blobs.has(b.digest)) await put(b.digest, await get('blobs', b.digest))
        own.set(b.digest, b.size)
      }
      manifests.push({digest: m.digest, mediaType: md.mediaType, size: buf.length, platform: m.platform, config: md.config.digest, layers: md.layers.map((l) => l.digest)})
    }
    records.push({
      ref, name, mediaType: doc.mediaType, digest: topDigest, size: top.length, sourceDigest: topDigest,
      platforms: manifests.map((m) => m.platform), manifests,
      dockerManifest: (manifests.find((m) => m.platform === 'linux/amd64') ?? manifests[0]).digest,
      blobs: [...own].map(([digest, size]) => ({digest, size})),
    })
  }
  const all = [...blobs.values()]
  const metadata: AirlockMetadata = {
    formatVersion: FORMAT_VERSION, tool: {name: 'airlock', version: 'test'},
    bundle: {name: 'engines', version: '1.0.0', created: new Date(0).toISOString()},
    images: records,
    blobs: {count: all.length, bytes: all.reduce((a, b) => a + b.size, 0), referencedBytes: records.reduce((a, r) => a + r.blobs.reduce((x, y) => x + y.size, 0), 0)},
  }
  await writeArchive(out, {metadata, blobs: all, signingKey: key, epoch: 0})
}

before(async () => {
  tb = await testbed()
  Object.assign(process.env, tb.env) // DOCKER_HOST, CONTAINERD_ADDRESS, CONTAINERS_* for the destinations
  dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-engines-'))
  const kp = await generateKeyPair({name: 'Engines Test', email: 'engines@airlock.invalid'})
  await writeFile(path.join(dir, 'k.asc'), kp.privateKeyArmored)
  await writeFile(path.join(dir, 'k.pub.asc'), kp.publicKeyArmored)
  signKey = await loadPrivateKey(path.join(dir, 'k.asc'))
  trustedKeys = await loadTrustedKeys([path.join(dir, 'k.pub.asc')])

  const reg = tb.registries.open
  names = {a: `${reg}/airlock-engines-${RUN}/app-a:1`, b: `${reg}/airlock-engines-${RUN}/app-b:1`, multi: `${reg}/airlock-engines-${RUN}/multi:1`}
  const specs = [
    {ref: tb.images['app-a'].ref, name: names.a},
    {ref: tb.images['app-b'].ref, name: names.b},
    {ref: tb.images.multi.ref, name: names.multi},
  ]
  good = path.join(dir, 'engines.tar')
  await writeFile(path.join(dir, 'bundle.yaml'), [
    'apiVersion: airlock/v1', 'kind: Bundle', 'metadata:', '  name: engines', '  version: 1.0.0',
    'platforms: [linux/amd64, linux/arm64/v8]', 'images:',
    ...specs.map((s) => `  - ref: ${s.ref}\n    name: ${s.name}`),
    'registries:', `  ${reg}:`, '    insecure: true', '',
  ].join('\n'))
  try {
    await createBundle({specFile: path.join(dir, 'bundle.yaml'), output: good, signKey: path.join(dir, 'k.asc'), cacheDir: path.join(dir, 'cache'), epoch: 0})
  } catch (error) {
    process.stderr.write(`# createBundle failed (${(error as Error).message}); building the archive with writeArchive instead\n`)
    await archiveFromRegistry(specs, path.join(dir, 'fallback-blobs'), good, signKey)
  }
  const r = await readArchive([good], {trustedKeys})
  meta = r.head.metadata
  assert.deepEqual(meta.images.map((i) => i.mediaType), [
    'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json',
  ])

  const buf = await readFile(good)
  const blobs = splitTar(buf).filter((e) => e.name.startsWith('blobs/'))
  const last = blobs[blobs.length - 1]
  // a middle blob: the largest one that is neither first nor last, so verified chunks reach the engine first
  const middle = blobs.slice(1, -1).reduce((a, b) => (b.data.length > a.data.length ? b : a))
  for (const [label, e] of [['last blob', last], ['middle blob', middle]] as const) {
    const c = Buffer.from(buf)
    c[e.offset! + 512 + Math.floor(e.data.length * 0.9)] ^= 0x01
    const file = path.join(dir, `${label.replace(' ', '-')}.tar`)
    await writeFile(file, c)
    tampered.push({label: `${label} (${e.data.length} bytes)`, file, entry: new RegExp(e.name)})
  }
  // Junk after the end-of-archive marker: detected only after EVERY blob went to the engine, so the
  // engine would load everything if the stream were ended cleanly instead of broken off.
  const file = path.join(dir, 'trailing.tar')
  await writeFile(file, Buffer.concat([buf, Buffer.alloc(512, 0x58)]))
  tampered.push({label: 'trailing data', file, entry: /end of archive/})
})

after(async () => {
  if (tb) {
    const all = [names.a, names.b, names.multi]
    await sh(DOCKER, ['rmi', '-f', ...all]).catch(() => '')
    await sh('podman', ['rmi', '-f', ...all]).catch(() => '')
    await sh('ctr', ['-a', tb.containerdAddress, '-n', tb.containerdNamespace, 'images', 'rm', ...all]).catch(() => '')
  }
  if (dir) await rm(dir, {recursive: true, force: true})
})

const configOf = (img: ImageRecord) => img.manifests.find((m) => m.digest === img.dockerManifest)!.config

// ----------------------------------------------------------------- docker

describe('install --to docker (Engine API over the unix socket)', () => {
  // sorted: the engine lists images of equal creation time in no stable order
  const list = async () => (await sh(DOCKER, ['images', '-a', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).split('\n').sort().join('\n')
  const clean = () => sh(DOCKER, ['rmi', '-f', names.a, names.b, names.multi]).catch(() => '')

  it('loads a docker-schema2 image, an OCI image and an OCI index; confirm() checks the image IDs; they run', async () => {
    await clean()
    const notes: string[] = []
    // With the archive's path (as install gives it), gzip layers are sent inflated.
    const dest = await dockerDestination({...ctxFor(notes), parts: [good], host: tb.dockerHost})
    const got = await install(dest, good)
    // Only the docker manifests' configs and layers go to the classic store: not the manifests,
    // not the other platform of the multi-platform image.
    const dockerManifests = meta.images.map((i) => i.manifests.find((m) => m.digest === i.dockerManifest)!)
    const layers = new Set(dockerManifests.flatMap((m) => m.layers))
    const sent = new Set(dockerManifests.flatMap((m) => [m.config, ...m.layers]))
    const all = new Set(meta.images.flatMap((i) => i.blobs.map((b) => b.digest)))
    assert.ok(all.size - sent.size >= 6, `${all.size} blobs, ${sent.size} for docker`)
    assert.deepEqual(dest.stats, {inflated: layers.size, asIs: 0, skipped: all.size - sent.size})
    assert.deepEqual(got.map((g) => g.name), [names.a, names.b, names.multi])
    for (const [i, img] of meta.images.entries()) {
      assert.equal(got[i].confirmed, configOf(img))
      assert.equal(got[i].digest, img.digest)
    }
    // The multi-platform image's other platform is reported as left out, and each image as loaded.
    assert.deepEqual(notes.filter((n) => !/loaded/.test(n)), [`  ${names.multi}: left out 1 other platform`])
    assert.deepEqual(dest.leftOut?.(), {skipped: [], manifests: [{name: names.multi, digest: meta.images[2].digest, counts: {image: 1}}]})
    const loaded = notes.filter((n) => /loaded/.test(n))
    assert.equal(loaded.length, 3)
    assert.match(loaded[0], new RegExp(names.a))
    assert.equal((await sh(DOCKER, ['run', '--rm', '--network', 'none', names.a])).trim(), 'hello from app-a')
    assert.equal((await sh(DOCKER, ['run', '--rm', '--network', 'none', names.b])).trim(), 'hello from app-b')
    assert.equal((await sh(DOCKER, ['run', '--rm', '--network', 'none', names.multi])).trim(), tb.images.multi.output)
    const inspect = JSON.parse(await sh(DOCKER, ['image', 'inspect', names.a])) as {Id: string}[]
    assert.equal(inspect[0].Id, configOf(meta.images[0]))
  })

  it('loads the same with gzip layers sent as they are (AIRLOCK_DOCKER_LAYERS=gzip, or no archive path)', async () => {
    for (const opts of [{parts: [good], inflate: false}, {}]) {
      await clean()
      const dest = await dockerDestination({...ctxFor([]), ...opts, host: tb.dockerHost})
      const got = await install(dest, good)
      assert.deepEqual(got.map((g) => g.confirmed), meta.images.map(configOf))
      assert.equal(dest.stats.inflated, 0)
      assert.ok(dest.stats.asIs > 0)
    }
    assert.equal((await sh(DOCKER, ['run', '--rm', '--network', 'none', names.a])).trim(), 'hello from app-a')
  })

  it('a tampered archive fails with a VerifyError naming the entry and loads nothing (layers inflated, and as they are)', async () => {
    await clean()
    await expectTamperRefused((file) => dockerDestination({...ctxFor([]), parts: [file], host: tb.dockerHost}), list)
    await expectTamperRefused(() => dockerDestination({...ctxFor([]), host: tb.dockerHost}), list)
  })

  it('a layer of two gzip members (its trailer gives only the last one\'s size): the inflated load is aborted, nothing loaded, and install loads again with the layer as it is', async () => {
    const name = `${tb.registries.open}/airlock-engines-${RUN}/two-members:1`
    const tarA = layerTar({files: {'etc/one.txt': randomBytes(40_000).toString('hex'), 'etc/two.txt': 'two\n'}})
    const tarB = layerTar({files: {'srv/data.bin': randomBytes(30_000)}})
    const half = 512 * 40
    const twoMembers = Buffer.concat([gzipSync(tarA.subarray(0, half)), gzipSync(tarA.subarray(half))])
    const archive = path.join(dir, 'two-members.tar')
    await syntheticArchive(path.join(dir, 'two-members'), archive, [{
      name, layers: [twoMembers, gzipSync(tarB)], diffIds: [tarA, tarB].map(sha), layerMediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    }], {key: signKey})
    try {
      const before = await list()
      const dest = await dockerDestination({...ctxFor([]), parts: [archive], host: tb.dockerHost})
      await assert.rejects(install(dest, archive), (e: unknown) => {
        assert.ok(e instanceof InflatedSizeError, String(e))
        assert.match(e.message, /inflates to more than \d+ bytes/)
        return true
      })
      assert.equal(await list(), before, 'the aborted load left an image behind')

      const notes: string[] = []
      const r = await installArchive({
        archive, keys: [path.join(dir, 'k.pub.asc')], to: 'docker', dockerHost: tb.dockerHost, stateFile: path.join(dir, 'state-two.json'),
        progress: {begin() {}, advance() {}, note: (m) => notes.push(m), end() {}},
      })
      const m = (await readArchive([archive], {trustedKeys})).head.metadata.images[0]
      assert.deepEqual(r.images.map((i) => i.confirmed), [configOf(m)])
      assert.match(notes.join('\n'), /loading again with gzip layers as they are/)
    } finally {
      await sh(DOCKER, ['rmi', '-f', name]).catch(() => '')
    }
  })

  it('a layer of several MiB, whose read buffers are written straight to dockerd and read into again, loads intact', async () => {
    // dockerd checks the layer against the config's diff_id: a buffer reused too early fails the load.
    const name = `${tb.registries.open}/airlock-engines-${RUN}/big-layer:1`
    const layer = layerTar({files: {'srv/big.bin': randomBytes(7 * 1024 * 1024 + 333), 'srv/small.txt': 'small\n'}})
    const archive = path.join(dir, 'big-layer.tar')
    await syntheticArchive(path.join(dir, 'big-layer'), archive, [{name, layers: [layer]}], {key: signKey})
    try {
      const dest = await dockerDestination({...ctxFor([]), parts: [archive], host: tb.dockerHost})
      const got = await install(dest, archive)
      const m = (await readArchive([archive], {trustedKeys})).head.metadata.images[0]
      assert.deepEqual(got.map((g) => g.confirmed), [configOf(m)])
      assert.deepEqual(dest.stats, {inflated: 0, asIs: 1, skipped: 1}) // the manifest is not sent
    } finally {
      await sh(DOCKER, ['rmi', '-f', name]).catch(() => '')
    }
  })

  it('a load the daemon refuses fails with the daemon\'s reason and the image name', async () => {
    const bad = path.join(dir, 'not-a-layer.tar')
    const name = `${tb.registries.open}/airlock-engines-${RUN}/broken:1`
    await syntheticArchive(path.join(dir, 'synthetic'), bad, [{name, layers: [randomLayer(3000)]}], {key: signKey})
    const before = await list()
    await assert.rejects(install(await dockerDestination({...ctxFor([]), host: tb.dockerHost}), bad), (e: unknown) => {
      assert.ok(e instanceof AirlockError && !(e instanceof VerifyError), String(e))
      assert.equal(e.code, 'install.docker_failed')
      assert.match(e.message, new RegExp(`loading ${name} into Docker Engine at unix://.*failed: .+`))
      return true
    })
    assert.equal(await list(), before)
  })

  it('an unreachable daemon is reported before the archive is read', async () => {
    await assert.rejects(dockerDestination({...ctxFor([]), host: `unix://${dir}/no-such.sock`}), (e: unknown) => {
      assert.ok(e instanceof AirlockError)
      assert.equal(e.code, 'install.docker_unreachable')
      assert.match(e.message, /no-such\.sock/)
      return true
    })
    await assert.rejects(dockerDestination({...ctxFor([]), host: 'tcp://127.0.0.1:2375'}), {code: 'install.docker_host'})
  })
})

// ----------------------------------------------------------------- podman

describe('install --to podman (podman load)', () => {
  const list = async () => (await sh('podman', ['images', '-a', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).split('\n').sort().join('\n')
  const clean = () => sh('podman', ['rmi', '-f', names.a, names.b, names.multi]).catch(() => '')
  let tmpDir: string

  before(async () => {
    tmpDir = path.join(dir, 'podman-tmp')
    await mkdir(tmpDir)
  })

  it('loads all three images under their full names; confirm() checks the image IDs', async () => {
    await clean()
    const notes: string[] = []
    const got = await install(await podmanDestination({...ctxFor(notes), tmpDir}), good)
    assert.deepEqual(got.map((g) => g.name), [names.a, names.b, names.multi])
    for (const [i, img] of meta.images.entries()) assert.equal(got[i].confirmed, configOf(img))
    assert.deepEqual(notes.filter((n) => !/loaded/.test(n)), [`  ${names.multi}: left out 1 other platform`])
    assert.equal(notes.filter((n) => /loaded/.test(n)).length, 3)
    // podman keeps the manifest digests: every image is found by REPO@<its entry digest>.
    for (const img of meta.images) {
      const repo = img.name.slice(0, img.name.lastIndexOf(':'))
      assert.equal((await sh('podman', ['image', 'inspect', '--format', '{{.Id}}', `${repo}@${img.digest}`])).trim(), configOf(img).slice(7), `${repo}@${img.digest}`)
    }
    const tags = (await sh('podman', ['images', '--format', '{{.Repository}}:{{.Tag}}'])).split('\n')
    for (const n of [names.a, names.b, names.multi]) assert.ok(tags.includes(n), `${n} not in podman images: ${tags.join(', ')}`)
    assert.deepEqual(await readdir(tmpDir), [], 'podman temp dir left behind')
  })

  it('a single image (podman takes the oci-archive path) also gets its full name', async () => {
    await sh('podman', ['rmi', '-f', names.b]).catch(() => '')
    const got = await install(await podmanDestination({...ctxFor([], (imgs) => imgs.filter((i) => i.name === names.b)), tmpDir}), good)
    assert.deepEqual(got, [{name: names.b, digest: meta.images[1].digest, confirmed: configOf(meta.images[1])}])
  })

  it('a tampered archive fails with a VerifyError naming the entry and loads nothing', async () => {
    await clean()
    await expectTamperRefused(() => podmanDestination({...ctxFor([]), tmpDir}), list, async () => {
      assert.deepEqual(await readdir(tmpDir), [], 'podman temp dir left behind after a kill')
    })
  })

  it('a load podman refuses fails with podman\'s reason', async () => {
    const bad = path.join(dir, 'not-a-layer-podman.tar')
    const name = `${tb.registries.open}/airlock-engines-${RUN}/broken:1`
    await syntheticArchive(path.join(dir, 'synthetic-podman'), bad, [{name, layers: [randomLayer(3000)]}], {key: signKey})
    const before = await list()
    await assert.rejects(install(await podmanDestination({...ctxFor([]), tmpDir}), bad), (e: unknown) => {
      assert.ok(e instanceof AirlockError && !(e instanceof VerifyError), String(e))
      assert.equal(e.code, 'install.podman_failed')
      assert.match(e.message, new RegExp(`podman load of ${name}: podman failed \\(exit code \\d+\\): .+`))
      return true
    })
    assert.equal(await list(), before)
  })

  it('a missing podman binary is reported before the archive is read', async () => {
    await assert.rejects(podmanDestination({...ctxFor([]), podman: path.join(dir, 'no-podman')}), {code: 'install.podman_not_found'})
  })
})

// ----------------------------------------------------------------- containerd

describe('install --to containerd (ctr images import)', () => {
  const ctr = (...args: string[]) => sh('ctr', ['-a', tb.containerdAddress, '-n', tb.containerdNamespace, ...args])
  const list = async () => (await ctr('images', 'ls')).split('\n').sort().join('\n')
  const clean = () => ctr('images', 'rm', names.a, names.b, names.multi).catch(() => '')

  it('imports all three images under their full names with the signed digests, all platforms', async () => {
    await clean()
    const notes: string[] = []
    const got = await install(await containerdDestination({...ctxFor(notes), address: tb.containerdAddress, namespace: tb.containerdNamespace}), good)
    assert.deepEqual(got.map((g) => [g.name, g.confirmed]), meta.images.map((i) => [i.name, i.digest]))
    assert.equal(notes.length, 3)
    // Only our images: `ctr images check` of a whole namespace fails on any artifact-only image in it.
    const check = await ctr('images', 'check', ...meta.images.map((i) => `name==${i.name}`))
    for (const img of meta.images) {
      const line = check.split('\n').find((l) => l.startsWith(`${img.name} `))
      assert.ok(line, `${img.name} missing from ctr images check`)
      assert.match(line, /complete \((\d+)\/\1\)/)
    }
    // the index keeps both platforms, and their content is there
    const ls = (await list()).split('\n').find((l) => l.startsWith(`${names.multi} `))!
    assert.match(ls, /linux\/amd64,linux\/arm64\/v8/)
    for (const m of meta.images[2].manifests) assert.match(await ctr('content', 'get', m.digest), /schemaVersion/)
  })

  it('unpack: true unpacks into the snapshotter', async () => {
    await clean()
    await install(await containerdDestination({...ctxFor([], (imgs) => imgs.slice(0, 1)), unpack: true}), good)
    const line = (await ctr('images', 'check', `name==${names.a}`)).split('\n').find((l) => l.startsWith(`${names.a} `))
    assert.match(line ?? '', /true\s*$/)
  })

  it('a tampered archive fails with a VerifyError naming the entry and creates no image', async () => {
    await clean()
    await expectTamperRefused(() => containerdDestination({...ctxFor([])}), list)
  })

  it('an unreachable containerd is reported before the archive is read', async () => {
    await assert.rejects(containerdDestination({...ctxFor([]), address: path.join(dir, 'no-such.sock')}), (e: unknown) => {
      assert.ok(e instanceof AirlockError)
      assert.equal(e.code, 'install.containerd_failed')
      assert.match(e.message, /no-such\.sock.*not reachable/)
      return true
    })
  })
})
