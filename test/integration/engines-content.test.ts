/**
 * install --to docker and --to podman of what real registries serve today (issue 16):
 * - zstd layers: decompressed on the way into Docker Engine 20.10 (which cannot unpack them); the
 *   image ID is the config digest and the image runs; podman 4.3 unpacks them itself (it runs);
 * - podman keeps the manifest digests: `podman image inspect REPO@sha256:<entry digest>` works for
 *   a tagged image, a digest-only one (which keeps its repository, not `<none>`) and a
 *   multi-platform index (the index digest and the platform manifest digest);
 * - entries with nothing runnable (a Helm chart, a signature) are not loaded but reported as
 *   skipped, and an index's attestation as left out, in `--json` and in the summary.
 * Fixtures are built here, pushed to the testbed registry (repositories engines-*) and bundled
 * with `airlock create`; the non-runnable shapes are written as an archive directly.
 */
import assert from 'node:assert/strict'
import {execFile, execFileSync} from 'node:child_process'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {after, before, describe, it} from 'node:test'

import {MediaType} from '../../src/core/model.js'
import {generateKeyPair, loadPrivateKey} from '../../src/sign/keys.js'
import {AirlockMetadata, FORMAT_VERSION, ImageRecord, ManifestRecord} from '../../src/transports/archive/metadata.js'
import {BlobFile, writeArchive} from '../../src/transports/archive/writer.js'
import {buildImageBlobs, buildIndexBlobs, BuiltImage, layerTar, OCI_CONFIG, OCI_MANIFEST, pushImage, sha256, writeLayout} from '../helpers/images.js'
import {runCli} from '../helpers/cli.js'
import {Testbed, testbed} from '../helpers/testbed.js'

const execFileP = promisify(execFile)
const RUN = `e${process.pid}${Date.now().toString(36)}`

let tb: Testbed
let dir: string
let pub: string
let secret: string
const busybox = await readFile('/bin/busybox')

async function sh(bin: string, args: string[]): Promise<string> {
  return (await execFileP(bin, args, {env: tb.processEnv, maxBuffer: 16 * 1024 * 1024, timeout: 120_000})).stdout
}
/** The image ID `ref` names in `engine`, as `sha256:HEX` (podman prints the bare hex); undefined when none. */
const inspectId = (engine: string, ref: string) => sh(engine, ['image', 'inspect', '--format', '{{.Id}}', ref]).then((s) => `sha256:${s.trim().replace(/^sha256:/, '')}`, () => undefined)

/** A runnable image (static busybox, /bin/true) whose one layer is zstd-compressed. */
function zstdImage(text: string): BuiltImage {
  const tar = layerTar({files: {'bin/busybox': {content: busybox, mode: 0o755}, 'bin/true': {symlink: 'busybox'}, 'hello.txt': `${text}\n`}})
  const data = execFileSync('zstd', ['-q', '-c', '-3'], {input: tar, maxBuffer: 64 * 1024 * 1024})
  assert.equal(data.readUInt32LE(0), 0xfd2fb528, 'zstd magic')
  const base = buildImageBlobs({layers: [{tar, compression: 'none'}], config: {Cmd: ['/bin/true']}})
  const layer = {mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: sha256(data), size: data.length}
  const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: OCI_MANIFEST, config: {mediaType: OCI_CONFIG, digest: base.configDigest, size: base.config.length}, layers: [layer]}))
  const blobs = new Map<string, Buffer>([[base.configDigest, base.config], [layer.digest, data], [sha256(manifest), manifest]])
  return {...base, digest: sha256(manifest), size: manifest.length, manifest, layers: [{...layer, diffId: sha256(tar), data}], blobs}
}

async function push(name: string, built: {blobs: Map<string, Buffer>; digest: string; mediaType: string; size: number; kind: 'image' | 'index'}): Promise<string> {
  const layout = path.join(dir, 'layouts', name.replace(/[/:]/g, '_'))
  await writeLayout(layout, built as Parameters<typeof writeLayout>[1])
  return pushImage(layout, `${tb.registries.open}/${name}`)
}

interface Result {
  images: {name: string; digest: string; confirmed: string}[]
  skipped?: {name: string; digest: string; kind: string; reason: string}[]
  leftOut?: {name: string; digest: string; counts: Record<string, number>}[]
}

function install(archive: string, to: string, extra: string[] = []): Result {
  const r = runCli(['install', archive, '--key', pub, '--to', to, '--json', '--state-file', path.join(dir, `state-${to}.json`), ...extra], {env: {...tb.processEnv, AIRLOCK_PODMAN: 'podman'}})
  assert.equal(r.code, 0, `install --to ${to}: ${r.stderr}\n${r.stdout}`)
  return JSON.parse(r.stdout) as Result
}

before(async () => {
  tb = await testbed()
  dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-engines-content-'))
  const kp = await generateKeyPair({name: 'Engines Content', email: 'engines@airlock.invalid'})
  secret = path.join(dir, 'k.asc')
  pub = path.join(dir, 'k.pub.asc')
  await writeFile(secret, kp.privateKeyArmored)
  await writeFile(pub, kp.publicKeyArmored)
})

after(async () => {
  if (dir) await rm(dir, {recursive: true, force: true})
})

describe('install --to docker|podman: zstd layers, digests kept (bundled with airlock create)', () => {
  const reg = () => tb.registries.open
  const repo = (n: string) => `${reg()}/engines-${RUN}/${n}`
  const zimg = zstdImage(`zstd ${RUN}`)
  const plain = buildImageBlobs({layers: [{files: {'bin/busybox': {content: busybox, mode: 0o755}, 'bin/true': {symlink: 'busybox'}, 'p.txt': `plain ${RUN}\n`}}]})
  const only = buildImageBlobs({layers: [{files: {'d.txt': `digest-only ${RUN}\n`}}]})
  const multi = buildIndexBlobs([
    {layers: [{files: {'m.txt': `amd64 ${RUN}\n`}}], platform: 'linux/amd64'},
    {layers: [{files: {'m.txt': `arm64 ${RUN}\n`}}], platform: 'linux/arm64/v8'},
  ])
  let archive: string
  const names = () => ({zstd: `${repo('zstd')}:1`, plain: `${repo('plain')}:1`, only: `${repo('only')}@${only.digest}`, multi: `${repo('multi')}:1`})
  const cleanup = async () => {
    const n = names()
    for (const engine of ['docker', 'podman']) {
      await sh(engine, ['rmi', '-f', n.zstd, n.plain, n.multi, zimg.configDigest.slice(7), plain.configDigest.slice(7), only.configDigest.slice(7), multi.images[0].configDigest.slice(7)]).catch(() => '')
    }
  }

  before(async () => {
    assert.equal(await push(`engines-${RUN}/zstd:1`, zimg), zimg.digest)
    await push(`engines-${RUN}/plain:1`, plain)
    await push(`engines-${RUN}/only:1`, only)
    assert.equal(await push(`engines-${RUN}/multi:1`, multi), multi.digest)
    const n = names()
    const spec = path.join(dir, 'bundle.yaml')
    await writeFile(spec, [
      'apiVersion: airlock/v1', 'kind: Bundle', 'metadata:', '  name: engines-content', '  version: 1.0.0',
      'platforms: [linux/amd64, linux/arm64/v8]', 'images:',
      ...Object.values(n).map((r) => `  - ref: ${r}`),
      'registries:', `  ${reg()}:`, '    insecure: true', '',
    ].join('\n'))
    archive = path.join(dir, 'content.tar')
    const r = runCli(['create', spec, '-o', archive, '--sign-key', secret, '--json'], {env: tb.processEnv})
    assert.equal(r.code, 0, r.stderr)
    await cleanup()
  })
  after(cleanup)

  it('docker: the zstd image loads (decompressed) with image ID = config digest, and runs', async () => {
    const n = names()
    const res = install(archive, 'docker')
    assert.equal(res.images.length, 4)
    assert.deepEqual(res.skipped, [])
    assert.deepEqual(res.leftOut, [{name: n.multi, digest: multi.digest, counts: {image: 1}}])
    assert.equal(await inspectId('docker', n.zstd), zimg.configDigest)
    assert.equal(await inspectId('docker', n.plain), plain.configDigest)
    assert.equal(await inspectId('docker', n.multi), multi.images[0].configDigest)
    assert.equal(await inspectId('docker', only.configDigest), only.configDigest)
    await sh('docker', ['run', '--rm', '--network', 'none', n.zstd, '/bin/true'])
    assert.equal((await sh('docker', ['run', '--rm', '--network', 'none', n.zstd, '/bin/busybox', 'cat', '/hello.txt'])).trim(), `zstd ${RUN}`)
  })

  it('podman: REPO@sha256:<entry digest> finds every image (tag, digest-only, index and its platform manifest), image ID = config digest', async () => {
    const n = names()
    const res = install(archive, 'podman')
    assert.equal(res.images.length, 4)
    for (const img of res.images) assert.match(img.confirmed, /^sha256:/)
    const want: [string, string][] = [
      [`${repo('zstd')}@${zimg.digest}`, zimg.configDigest],
      [`${repo('plain')}@${plain.digest}`, plain.configDigest],
      [n.only, only.configDigest],
      [`${repo('multi')}@${multi.digest}`, multi.images[0].configDigest],
      [`${repo('multi')}@${multi.images[0].digest}`, multi.images[0].configDigest],
      [n.zstd, zimg.configDigest],
      [n.multi, multi.images[0].configDigest],
    ]
    for (const [ref, config] of want) assert.equal(await inspectId('podman', ref), config, ref)
    // podman unpacks the zstd layer itself.
    assert.equal((await sh('podman', ['run', '--rm', '--network', 'none', n.zstd, '/bin/busybox', 'cat', '/hello.txt'])).trim(), `zstd ${RUN}`)
    // The digest-only image keeps its repository (not <none>:<none>).
    const repos = (await sh('podman', ['image', 'inspect', '--format', '{{.RepoDigests}}', only.configDigest.slice(7)]))
    assert.match(repos, new RegExp(`${repo('only')}@${only.digest}`))
  })
})

describe('install --to docker|podman: entries with nothing runnable are skipped and reported', () => {
  const stamp = `engines-${RUN}`
  const names = {app: `${stamp}.test/app:1`, chart: `${stamp}.test/chart:1`, sig: `${stamp}.test/app:sha256-x.sig`}
  const app = buildImageBlobs({layers: [{files: {'a.txt': `app ${RUN}\n`}}]})
  let archive: string
  let index: {digest: string}

  before(async () => {
    archive = path.join(dir, 'graph.tar')
    index = await graphArchive(archive, app, names)
  })
  after(async () => {
    for (const engine of ['docker', 'podman']) await sh(engine, ['rmi', '-f', names.app]).catch(() => '')
  })

  for (const engine of ['docker', 'podman'] as const) {
    it(`${engine}: loads the image, skips the chart and the signature, counts the attestation`, async () => {
      const res = install(archive, engine)
      assert.deepEqual(res.images.map((i) => [i.name, i.confirmed]), [[names.app, app.configDigest]])
      assert.deepEqual(res.skipped?.map((s) => [s.name, s.kind]), [[names.chart, 'artifact'], [names.sig, 'signature']])
      for (const s of res.skipped ?? []) assert.match(s.reason, new RegExp(`${engine} loads runnable images only`))
      assert.deepEqual(res.leftOut, [{name: names.app, digest: index.digest, counts: {attestation: 1}}])
      assert.equal(await inspectId(engine, names.app), app.configDigest)
      if (engine === 'podman') assert.equal(await inspectId(engine, `${stamp}.test/app@${index.digest}`), app.configDigest)
      for (const n of [names.chart, names.sig]) assert.equal(await inspectId(engine, n), undefined, `${n} was loaded`)
      // The human summary says the same.
      const human = runCli(['install', archive, '--key', pub, '--to', engine, '--state-file', path.join(dir, `h-${engine}.json`), '--allow-downgrade'], {env: {...tb.processEnv, AIRLOCK_PODMAN: 'podman'}})
      assert.equal(human.code, 0, human.stderr)
      assert.match(human.stdout, new RegExp(`left out ${names.chart.replace(/[.]/g, '\\.')} .*\\(artifact: `))
      assert.match(human.stdout, new RegExp(`left out ${names.sig.replace(/[.]/g, '\\.')} .*\\(signature: `))
      assert.match(human.stdout, /: left out 1 attestation/)
      // Nothing runnable selected at all: no load, nothing fails, the chart is reported.
      const none = install(archive, engine, ['--only', names.chart])
      assert.deepEqual(none.images, [])
      assert.deepEqual(none.skipped?.map((s) => s.name), [names.chart])
    })
  }
})

/**
 * An archive of: an index (linux/amd64 image + a BuildKit attestation manifest), a Helm chart,
 * and a cosign signature, as format 3 records them. Returns the index.
 */
async function graphArchive(out: string, app: BuiltImage, names: {app: string; chart: string; sig: string}): Promise<{digest: string}> {
  const blobs = new Map<string, Buffer>(app.blobs)
  const put = (b: Buffer) => { blobs.set(sha256(b), b); return {digest: sha256(b), size: b.length} }
  const empty = put(Buffer.from('{}'))
  const manifestOf = (config: {mediaType: string; digest: string; size: number}, layers: {mediaType: string; digest: string; size: number}[], extra: Record<string, unknown> = {}) =>
    Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers, ...extra}))
  const statement = put(Buffer.from(JSON.stringify({_type: 'https://in-toto.io/Statement/v0.1'})))
  const att = put(manifestOf({mediaType: OCI_CONFIG, ...empty}, [{mediaType: MediaType.IN_TOTO, ...statement}]))
  const idx = put(Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [
    {mediaType: OCI_MANIFEST, digest: app.digest, size: app.size, platform: {os: 'linux', architecture: 'amd64'}},
    {mediaType: OCI_MANIFEST, ...att, platform: {os: 'unknown', architecture: 'unknown'}, annotations: {'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': app.digest}},
  ]})))
  const chartCfg = put(Buffer.from(JSON.stringify({name: 'demo', version: '0.1.0', apiVersion: 'v2'})))
  const chartTgz = put(Buffer.from(`chart ${RUN}`))
  const chart = put(manifestOf({mediaType: MediaType.HELM_CONFIG, ...chartCfg}, [{mediaType: MediaType.HELM_CHART, ...chartTgz}]))
  const payload = put(Buffer.from(JSON.stringify({critical: {image: {'docker-manifest-digest': idx.digest}}})))
  const sigCfg = put(Buffer.from(JSON.stringify({architecture: '', os: '', rootfs: {type: 'layers', diff_ids: [payload.digest]}, config: {}})))
  const sig = put(manifestOf({mediaType: OCI_CONFIG, ...sigCfg}, [{mediaType: MediaType.COSIGN_SIMPLE_SIGNING, ...payload}]))
  const rec = (m: {digest: string; size: number}, kind: ManifestRecord['kind'], config: string, layers: string[], platform = 'unknown/unknown'): ManifestRecord =>
    ({digest: m.digest, mediaType: OCI_MANIFEST, size: m.size, platform, config, layers, kind})
  const own = (...ds: string[]) => [...new Set(ds)].map((d) => ({digest: d, size: blobs.get(d)!.length}))
  const appRec = rec(app, 'image', app.configDigest, app.layers.map((l) => l.digest), 'linux/amd64')
  const images: ImageRecord[] = [
    {
      ref: names.app, name: names.app, mediaType: MediaType.OCI_INDEX, digest: idx.digest, size: idx.size, sourceDigest: idx.digest, platforms: ['linux/amd64'],
      manifests: [appRec, rec(att, 'attestation', empty.digest, [statement.digest])],
      indexes: [{digest: idx.digest, mediaType: MediaType.OCI_INDEX, size: idx.size, manifests: [app.digest, att.digest]}],
      dockerManifest: app.digest,
      blobs: own(idx.digest, app.digest, app.configDigest, ...app.layers.map((l) => l.digest), att.digest, empty.digest, statement.digest),
    },
    {ref: names.chart, name: names.chart, mediaType: OCI_MANIFEST, digest: chart.digest, size: chart.size, sourceDigest: chart.digest, platforms: [], manifests: [rec(chart, 'artifact', chartCfg.digest, [chartTgz.digest])], blobs: own(chart.digest, chartCfg.digest, chartTgz.digest)},
    {ref: names.sig, name: names.sig, mediaType: OCI_MANIFEST, digest: sig.digest, size: sig.size, sourceDigest: sig.digest, platforms: [], manifests: [rec(sig, 'signature', sigCfg.digest, [payload.digest])], blobs: own(sig.digest, sigCfg.digest, payload.digest)},
  ]
  const blobDir = path.join(dir, 'graph-blobs')
  await execFileP('mkdir', ['-p', blobDir])
  const files: BlobFile[] = []
  for (const [d, b] of blobs) {
    const p = path.join(blobDir, d.slice(7))
    await writeFile(p, b)
    files.push({digest: d, size: b.length, path: p})
  }
  const bytes = files.reduce((a, f) => a + f.size, 0)
  const metadata: AirlockMetadata = {
    formatVersion: FORMAT_VERSION, tool: {name: 'airlock', version: 'test'},
    bundle: {name: 'engines-graph', version: '1.0.0', created: new Date(0).toISOString()},
    images, blobs: {count: files.length, bytes, referencedBytes: bytes},
  }
  await writeArchive(out, {metadata, blobs: files, signingKey: await loadPrivateKey(secret), epoch: 0})
  return idx
}
