/**
 * Seeds the testbed registries with small, deterministic, locally built images (no internet).
 * Run by `scripts/testbed.sh seed` as: tsx scripts/testbed/seed.ts STATE_DIR
 * Writes STATE_DIR/seed.json (read by `testbed.sh env`). Idempotent: a tag that already has the
 * expected digest is not pushed again.
 */
import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {mkdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import type {TestbedManifest} from '../../test/helpers/testbed.js'

import {
  type Built,
  type BuiltImage,
  type ImageSpec,
  type LayerSpec,
  buildImageBlobs,
  buildIndexBlobs,
  platformString,
  pushImage,
  writeLayout,
} from '../../test/helpers/images.js'

const OPEN = '127.0.0.1:5301'
const AUTH = '127.0.0.1:5302'
const USER = 'airlock'
const PASS = 'tb-s3cret-pass'
const SEED_VERSION = 1

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ')

// ------------------------------------------------------------------ layers

/** Deterministic filler text so app layers are a few KB and differ per image. */
function filler(seed: string, bytes: number): string {
  let out = ''
  let h = seed
  while (out.length < bytes) {
    h = createHash('sha256').update(h).digest('hex')
    out += h + '\n'
  }
  return out.slice(0, bytes)
}

const APPLETS = ['sh', 'ash', 'echo', 'cat', 'ls', 'env', 'sleep', 'true', 'false', 'printf', 'test', '[', 'id', 'wc',
  'sha256sum', 'head', 'tail', 'grep', 'sed', 'mkdir', 'rm', 'cp', 'mv', 'uname', 'date', 'pwd', 'hostname', 'whoami',
  'touch', 'chmod', 'ln', 'find', 'tr', 'cut', 'sort', 'uniq', 'awk', 'xargs', 'tee', 'stat', 'du', 'df', 'ps', 'kill',
  'mount', 'basename', 'dirname', 'readlink', 'realpath', 'yes', 'seq', 'expr', 'tar', 'gzip', 'gunzip', 'wget', 'vi']

function baseLayer(): LayerSpec {
  const busybox = readFileSync('/bin/busybox')
  const files: LayerSpec['files'] = {
    'bin/busybox': {content: busybox, mode: 0o755},
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    'etc/group': 'root:x:0:\nnogroup:x:65534:\n',
    'etc/os-release': 'NAME="airlock testbed"\nID=airlock-testbed\nVERSION_ID=1\n',
    'root': {dir: true, mode: 0o700},
    'tmp': {dir: true, mode: 0o1777},
    'usr/bin': {dir: true},
  }
  for (const a of APPLETS) files[`bin/${a}`] = {symlink: 'busybox'}
  return {files}
}

const middleLayer = (): LayerSpec => ({
  files: {
    'lib/testbed/greet.sh': 'greet() { echo "hello from $1"; }\n',
    'usr/share/testbed/middle.txt': filler('middle', 4096),
  },
})

const appLayer = (name: string, script: string): LayerSpec => ({
  files: {
    'app/run.sh': {content: `#!/bin/sh\n${script}\n`, mode: 0o755},
    'app/data.txt': filler(name, 3000),
    'app/name': `${name}\n`,
  },
})

const cmd = {Cmd: ['/bin/sh', '/app/run.sh'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']}

// ------------------------------------------------------------------ images

interface Plan {
  name: string
  registry: string
  repository: string
  tag: string
  format: 'oci' | 'v2s2'
  output: string | null
  auth: boolean
  built: Built
}

function plans(): Plan[] {
  const base = baseLayer()
  const middle = middleLayer()
  const img = (spec: ImageSpec): BuiltImage => buildImageBlobs(spec)
  return [
    {name: 'base', registry: OPEN, repository: 'testbed/base', tag: '1', format: 'oci', auth: false,
      output: 'hello from base', built: img({layers: [base], config: {...cmd, Cmd: ['/bin/sh', '-c', 'echo hello from base']}})},
    {name: 'app-a', registry: OPEN, repository: 'testbed/app-a', tag: '1', format: 'v2s2', auth: false,
      output: 'hello from app-a', built: img({layers: [base, appLayer('app-a', 'echo hello from app-a')], config: cmd})},
    {name: 'app-b', registry: OPEN, repository: 'testbed/app-b', tag: '1', format: 'oci', auth: false,
      output: 'hello from app-b', built: img({layers: [base, middle, appLayer('app-b', '. /lib/testbed/greet.sh\ngreet app-b')], config: cmd})},
    {name: 'app-c', registry: OPEN, repository: 'testbed/app-c', tag: '1', format: 'oci', auth: false,
      output: 'hello from app-c', built: img({layers: [base, middle, appLayer('app-c', '. /lib/testbed/greet.sh\ngreet app-c')], config: cmd})},
    {name: 'multi', registry: OPEN, repository: 'testbed/multi', tag: '1', format: 'oci', auth: false,
      output: 'hello from multi amd64',
      built: buildIndexBlobs([
        {platform: 'linux/amd64', layers: [base, appLayer('multi-amd64', 'echo hello from multi amd64')], config: cmd},
        // Not runnable here (no arm64 busybox): its own distinct layer only.
        {platform: 'linux/arm64/v8', layers: [{files: {
          'app/run.sh': {content: '#!/bin/sh\necho hello from multi arm64\n', mode: 0o755},
          'app/arch': 'arm64 v8\n',
          'app/data.txt': filler('multi-arm64', 3000),
        }}], config: cmd},
      ])},
    {name: 'secret', registry: AUTH, repository: 'private/secret', tag: '1', format: 'oci', auth: true,
      output: 'hello from secret', built: img({layers: [base, appLayer('secret', 'echo hello from secret')], config: cmd})},
  ]
}

// ------------------------------------------------------------------ registry reads

const authHeader = (p: Plan): Record<string, string> =>
  p.auth ? {Authorization: 'Basic ' + Buffer.from(`${USER}:${PASS}`).toString('base64')} : {}

async function getManifest(p: Plan, reference: string, method: 'HEAD' | 'GET' = 'GET') {
  const res = await fetch(`http://${p.registry}/v2/${p.repository}/manifests/${reference}`, {
    method, headers: {Accept: ACCEPT, ...authHeader(p)},
  })
  if (res.status === 404) return null
  if (!res.ok) throw new Error(`${method} ${p.registry}/${p.repository}:${reference}: HTTP ${res.status}`)
  const body = method === 'GET' ? Buffer.from(await res.arrayBuffer()) : Buffer.alloc(0)
  return {digest: res.headers.get('docker-content-digest') ?? '', mediaType: (res.headers.get('content-type') ?? '').split(';')[0], body}
}

/** The same record the tests read back through `testbed.sh env --json`. */
type ManifestRecord = TestbedManifest

async function describe(p: Plan, digest: string): Promise<{mediaType: string; size: number; manifests: ManifestRecord[]}> {
  const top = await getManifest(p, digest)
  if (!top) throw new Error(`${p.repository}@${digest} vanished`)
  const doc = JSON.parse(top.body.toString('utf8')) as {manifests?: {digest: string; platform: Parameters<typeof platformString>[0]}[]; config: {digest: string}}
  const one = async (d: string, platform: string, m?: {body: Buffer; mediaType: string}): Promise<ManifestRecord> => {
    const got = m ?? (await getManifest(p, d))
    if (!got) throw new Error(`${p.repository}@${d} missing`)
    const j = JSON.parse(got.body.toString('utf8')) as {config: {digest: string}; layers: {digest: string; size: number}[]}
    return {platform, digest: d, mediaType: got.mediaType, size: got.body.length, config: j.config.digest,
      layers: j.layers.map((l: {digest: string}) => l.digest), layerSizes: j.layers.map((l: {size: number}) => l.size)}
  }
  let manifests: ManifestRecord[]
  if (Array.isArray(doc.manifests)) {
    manifests = []
    for (const m of doc.manifests) manifests.push(await one(m.digest, platformString(m.platform)))
  } else {
    const cfg = await fetch(`http://${p.registry}/v2/${p.repository}/blobs/${doc.config.digest}`, {headers: authHeader(p)})
    const c = (await cfg.json()) as {os: string; architecture: string; variant?: string}
    manifests = [await one(digest, platformString(c), top)]
  }
  return {mediaType: top.mediaType, size: top.body.length, manifests}
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const state = process.argv[2]
  if (!state) throw new Error('usage: seed.ts STATE_DIR')
  const seedFile = path.join(state, 'seed.json')
  let previous: {version?: number; images?: Record<string, {sourceDigest: string; digest: string}>} = {}
  try {
    previous = JSON.parse(await readFile(seedFile, 'utf8')) as typeof previous
  } catch {
    previous = {}
  }
  const images: Record<string, unknown> = {}
  let pushed = 0
  const all = plans()
  for (const p of all) {
    const ref = `${p.registry}/${p.repository}:${p.tag}`
    const prev = previous.version === SEED_VERSION ? previous.images?.[p.name] : undefined
    // OCI pushes keep our bytes, so we know the digest; a v2s2 conversion's digest is the one we recorded.
    const expected = p.format === 'oci' ? p.built.digest : prev?.sourceDigest === p.built.digest ? prev.digest : undefined
    const current = await getManifest(p, p.tag, 'HEAD')
    let digest: string
    if (expected && current?.digest === expected) {
      digest = expected
    } else {
      const dir = path.join(state, 'seed', 'layouts', p.name)
      await rm(dir, {recursive: true, force: true})
      await writeLayout(dir, p.built, p.tag)
      digest = await pushImage(dir, ref, {format: p.format, tag: p.tag, creds: p.auth ? {username: USER, password: PASS} : undefined})
      if (p.format === 'oci' && digest !== p.built.digest) throw new Error(`${ref}: pushed digest ${digest} != built ${p.built.digest}`)
      await rm(dir, {recursive: true, force: true})
      pushed++
    }
    const info = await describe(p, digest)
    images[p.name] = {
      name: p.name, ref, registry: p.registry, repository: p.repository, tag: p.tag,
      mediaType: info.mediaType, digest, size: info.size,
      output: p.output, requiresAuth: p.auth,
      platforms: info.manifests.map((m) => m.platform),
      manifests: info.manifests,
      sourceDigest: p.built.digest,
    }
  }
  const appB = all.find((p) => p.name === 'app-b')!.built as BuiltImage
  const layers = {base: appB.layers[0].digest, middle: appB.layers[1].digest}
  await mkdir(state, {recursive: true})
  const tmp = seedFile + '.tmp'
  await writeFile(tmp, JSON.stringify({version: SEED_VERSION, layers, images}, null, 2) + '\n')
  await rename(tmp, seedFile)
  process.stderr.write(`testbed: seed: ${pushed} pushed, ${all.length - pushed} already present\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`testbed: seed failed: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
