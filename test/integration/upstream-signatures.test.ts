/**
 * Upstream signatures travel with their images: cosign `.sig`/`.att` tags and an OCI 1.1 referrer
 * (fallback tag scheme) on the real testbed registry, plus an in-process registry double that
 * serves the referrers API (and a `.sig` tag of garbage) and passes everything else through to the
 * testbed registry. create → install --to registry://…/prefix → the same lookups on the target,
 * byte-identical; the verify: policy at create; verify --cosign-key from the archive alone.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {BIN} from '../helpers/cli.js'
import {
  type Artifact, attestationManifest, cosignTag, ecKeyPair, OCI_INDEX, OCI_MANIFEST, pushArtifact, rawManifest, referrerArtifact, referrersIndex,
  sha256, signatureManifest, simpleSigningPayload,
} from '../helpers/cosign-fixtures.js'
import {buildImageBlobs} from '../helpers/images.js'
import {Testbed, testbed} from '../helpers/testbed.js'

const SOURCE = '127.0.0.1:5301'
const BASE = `cosign-h-${randomBytes(4).toString('hex')}`

let tb: Testbed
let dir: string
let pub: string
const good = ecKeyPair()
const wrong = ecKeyPair()

/** The CLI, asynchronously (the registry double runs in this process). */
function airlock(args: string[]): Promise<{code: number | null; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], {cwd: dir, env: tb.processEnv})
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    p.on('close', (code) => resolve({code, stdout, stderr}))
  })
}

function imageArtifact(seed: string): Artifact {
  const img = buildImageBlobs({layers: [{files: {[`/${seed}.txt`]: seed}}]})
  const blobs = new Map(img.blobs)
  blobs.delete(img.digest)
  return {digest: img.digest, mediaType: OCI_MANIFEST, size: img.size, bytes: img.manifest, blobs}
}

/** Push an image, and return it. */
async function image(repo: string, seed = repo): Promise<Artifact> {
  const a = imageArtifact(`${seed}-${BASE}`)
  await pushArtifact(SOURCE, `${BASE}/${repo}`, '1', a)
  return a
}

async function bundle(file: string, body: string): Promise<string> {
  await writeFile(path.join(dir, file), `apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: upstream-test, version: 1.0.0}\n${body}`)
  return file
}

// ------------------------------------------------------------------ the registry double

interface Double {
  host: string
  /** subject digest → the referrers index the API answers. */
  referrers: Map<string, Buffer>
  /** `repo:tag` → garbage bytes served as an OCI manifest. */
  garbage: Map<string, Buffer>
  close(): Promise<void>
}

async function registryDouble(): Promise<Double> {
  const referrers = new Map<string, Buffer>()
  const garbage = new Map<string, Buffer>()
  const server = http.createServer((req, res) => {
    const url = req.url ?? ''
    const api = /^\/v2\/(.+)\/referrers\/(sha256:[a-f0-9]{64})$/.exec(url)
    if (api && req.method === 'GET') {
      const body = referrers.get(api[2]) ?? Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: OCI_INDEX, manifests: []}))
      res.writeHead(200, {'Content-Type': OCI_INDEX, 'Content-Length': body.length})
      return void res.end(body)
    }
    const tag = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url)
    const junk = tag ? garbage.get(`${tag[1]}:${tag[2]}`) ?? [...garbage.values()].find((g) => sha256(g) === tag[2]) : undefined
    if (junk) {
      res.writeHead(200, {'Content-Type': OCI_MANIFEST, 'Content-Length': junk.length, 'Docker-Content-Digest': sha256(junk)})
      return void res.end(req.method === 'HEAD' ? undefined : junk)
    }
    const up = http.request({host: '127.0.0.1', port: 5301, method: req.method, path: url, headers: {...req.headers, host: SOURCE}}, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers)
      r.pipe(res)
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as AddressInfo
  return {host: `127.0.0.1:${port}`, referrers, garbage, close: () => new Promise((resolve) => server.close(() => resolve()))}
}

// ------------------------------------------------------------------ the tests

describe('upstream signatures, attestations and referrers', {timeout: 600_000}, () => {
  let app: Artifact
  let sig: Artifact
  let att: Artifact
  let sbom: Artifact
  let fallback: Artifact
  let archive: string
  let double: Double
  const appRepo = `${BASE}/app`

  before(async () => {
    tb = await testbed()
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-upstream-test-'))
    const k = await airlock(['key', 'generate', '--name', 'Upstream Test', '--out', path.join(dir, 'release')])
    assert.equal(k.code, 0, k.stderr)
    pub = path.join(dir, 'release.pub.asc')
    await writeFile(path.join(dir, 'good.pem'), good.pem)
    await writeFile(path.join(dir, 'wrong.pem'), wrong.pem)
    app = await image('app')
    sig = signatureManifest({digest: app.digest, reference: `${SOURCE}/${appRepo}`, key: good.privateKey})
    att = attestationManifest({digest: app.digest, key: good.privateKey})
    sbom = referrerArtifact(app)
    fallback = referrersIndex([sbom])
    await pushArtifact(SOURCE, appRepo, cosignTag(app.digest, 'sig'), sig)
    await pushArtifact(SOURCE, appRepo, cosignTag(app.digest, 'att'), att)
    await pushArtifact(SOURCE, appRepo, cosignTag(app.digest), fallback)
    double = await registryDouble()
  })
  after(async () => {
    await double?.close()
    await rm(dir, {recursive: true, force: true})
  })

  it('create carries the signature, the attestation and the referrer, verified by the policy; inspect shows them', async () => {
    await bundle('good.yaml', `referrers: {signatures: true, attestations: true, sboms: true}
verify: {key: good.pem, attestations: true}
images:
  - ${SOURCE}/${appRepo}:1
`)
    archive = path.join(dir, 'good.tar')
    const r = await airlock(['create', 'good.yaml', '--sign-key', 'release.key.asc', '-o', archive])
    assert.equal(r.code, 0, r.stderr)
    const i = await airlock(['inspect', archive, '--key', pub, '--json'])
    assert.equal(i.code, 0, i.stderr)
    type Img = {name: string; digest: string; referrerOf?: {kind: string; via: string; subject: string; image: string}; upstream?: {signatures: string[]; attestations: string[]; referrers: string[]; verifiedBy?: {keyFingerprint: string; signature: string; attestation?: string}}}
    const images = (JSON.parse(i.stdout) as {images: Img[]}).images
    const name = `${SOURCE}/${appRepo}`
    assert.deepEqual(images.map((x) => x.name).sort(), [`${name}:1`, `${name}:${cosignTag(app.digest)}`, `${name}:${cosignTag(app.digest, 'att')}`, `${name}:${cosignTag(app.digest, 'sig')}`].sort())
    const top = images.find((x) => x.name === `${name}:1`)!
    assert.deepEqual(top.upstream?.signatures, [sig.digest])
    assert.deepEqual(top.upstream?.attestations, [att.digest])
    assert.deepEqual(top.upstream?.referrers, [fallback.digest])
    assert.equal(top.upstream?.verifiedBy?.signature, sig.digest)
    assert.equal(top.upstream?.verifiedBy?.attestation, att.digest)
    assert.equal(top.upstream?.verifiedBy?.keyFingerprint, sha256(good.publicKey.export({type: 'spki', format: 'der'})))
    const ref = images.find((x) => x.digest === fallback.digest)!
    assert.deepEqual(ref.referrerOf, {subject: app.digest, image: `${name}:1`, kind: 'referrers', via: 'tag'})
    const text = await airlock(['inspect', archive, '--key', pub])
    assert.match(text.stdout, /upstream: 1 signature, 1 attestation, 0 SBOMs, 1 referrers index; verified at create by cosign key sha256:/)
  })

  it('install --to registry://HOST/PREFIX: the same lookups work on the target, byte-identical', async () => {
    const prefix = `${BASE}-target`
    const r = await airlock(['install', archive, '--key', pub, '--to', `registry://${tb.registries.target}/${prefix}`])
    assert.equal(r.code, 0, r.stderr)
    const target = `${prefix}/${appRepo}`
    for (const [tag, a] of [[cosignTag(app.digest, 'sig'), sig], [cosignTag(app.digest, 'att'), att], [cosignTag(app.digest), fallback], ['1', app]] as const) {
      const got = await rawManifest(tb.registries.target, target, tag)
      assert.ok(got, `${target}:${tag} on the target`)
      assert.ok(got.equals(a.bytes), `${target}:${tag} byte-identical`)
    }
    // the referrer the fallback index names, by digest, and its blobs
    assert.ok((await rawManifest(tb.registries.target, target, sbom.digest))?.equals(sbom.bytes))
    for (const d of sig.blobs.keys()) assert.equal((await fetch(`http://${tb.registries.target}/v2/${target}/blobs/${d}`, {method: 'HEAD'})).status, 200)
  })

  it('install --to oci:DIR --only IMAGE: the image comes with the entries that refer to it', async () => {
    const oci = path.join(dir, 'oci')
    const r = await airlock(['install', archive, '--key', pub, '--to', `oci:${oci}`, '--only', `${appRepo}:1`])
    assert.equal(r.code, 0, r.stderr)
    const index = JSON.parse(await readFile(path.join(oci, 'index.json'), 'utf8')) as {manifests: {digest: string; annotations: Record<string, string>}[]}
    const name = `${SOURCE}/${appRepo}`
    assert.deepEqual(index.manifests.map((m) => [m.annotations['org.opencontainers.image.ref.name'], m.digest]).sort(), [
      [`${name}:1`, app.digest], [`${name}:${cosignTag(app.digest)}`, fallback.digest], [`${name}:${cosignTag(app.digest, 'att')}`, att.digest], [`${name}:${cosignTag(app.digest, 'sig')}`, sig.digest],
    ].sort())
    assert.ok((await readFile(path.join(oci, 'blobs', 'sha256', sig.digest.slice(7)))).equals(sig.bytes))
  })

  it('verify --cosign-key re-checks the carried signatures from the archive alone', async () => {
    const ok = await airlock(['verify', archive, '--key', pub, '--cosign-key', path.join(dir, 'good.pem'), '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    const j = JSON.parse(ok.stdout) as {upstream: {name: string; signature: string}[]}
    assert.deepEqual(j.upstream.map((u) => [u.name, u.signature]), [[`${SOURCE}/${appRepo}:1`, sig.digest]])
    const bad = await airlock(['verify', archive, '--key', pub, '--cosign-key', path.join(dir, 'wrong.pem')])
    assert.equal(bad.code, 3, bad.stderr)
    assert.match(bad.stderr, /without a valid upstream signature/)
    assert.match(bad.stderr, /does not verify with the key/)
  })

  it('the policy refuses an unsigned and a wrongly signed image at create (exit 3), naming them', async () => {
    const unsigned = await image('unsigned')
    const other = await image('wrong')
    await pushArtifact(SOURCE, `${BASE}/wrong`, cosignTag(other.digest, 'sig'), signatureManifest({digest: other.digest, reference: `${SOURCE}/${BASE}/wrong`, key: wrong.privateKey}))
    const noAtt = await image('noatt')
    await pushArtifact(SOURCE, `${BASE}/noatt`, cosignTag(noAtt.digest, 'sig'), signatureManifest({digest: noAtt.digest, reference: `${SOURCE}/${BASE}/noatt`, key: good.privateKey}))
    await bundle('policy.yaml', `verify: {key: good.pem}
images:
  - ${SOURCE}/${BASE}/unsigned:1
  - ${SOURCE}/${BASE}/wrong:1
  - ref: ${SOURCE}/${BASE}/noatt:1
    verify: {key: good.pem, attestations: true}
`)
    const r = await airlock(['create', 'policy.yaml', '--unsigned', '-o', path.join(dir, 'policy.tar')])
    assert.equal(r.code, 3, r.stderr)
    assert.match(r.stderr, new RegExp(`${BASE}/unsigned:1: no cosign signature of ${unsigned.digest} found`))
    assert.match(r.stderr, new RegExp(`${BASE}/wrong:1: signature sha256:[0-9a-f]{64} .*does not verify with the key`))
    assert.match(r.stderr, new RegExp(`${BASE}/noatt:1: no cosign attestation of ${noAtt.digest} found`))
    assert.match(r.stderr, /3 images without a valid upstream signature/)
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
  })

  it('verify --cosign-key fails (exit 3) on each hostile signature, with its reason', async () => {
    const cases: [string, (a: Artifact, repo: string) => Artifact, RegExp][] = [
      ['otherdigest', (a, repo) => signatureManifest({digest: a.digest, reference: repo, key: good.privateKey, payload: simpleSigningPayload(app.digest, repo)}), /its payload signs "sha256:[0-9a-f]{64}", not/],
      ['otherrepo', (a) => signatureManifest({digest: a.digest, reference: `${SOURCE}/${appRepo}`, key: good.privateKey}), /names repository/],
      ['badbase64', (a, repo) => signatureManifest({digest: a.digest, reference: repo, key: good.privateKey, signature: '%%%not-base64%%%'}), /annotation is not base64/],
      ['huge', (a, repo) => {
        const payload = Buffer.from(JSON.stringify({critical: {identity: {'docker-reference': repo}, image: {'docker-manifest-digest': a.digest}, type: 'cosign container image signature'}, optional: {pad: 'x'.repeat(1_100_000)}}))
        return signatureManifest({digest: a.digest, reference: repo, key: good.privateKey, payload})
      }, /more than the 1048576 allowed/],
    ]
    const lines: string[] = []
    for (const [name, make] of cases) {
      const a = await image(name)
      const repo = `${SOURCE}/${BASE}/${name}`
      await pushArtifact(SOURCE, `${BASE}/${name}`, cosignTag(a.digest, 'sig'), make(a, repo))
      lines.push(`  - ${repo}:1`)
    }
    await image('nosig')
    lines.push(`  - ${SOURCE}/${BASE}/nosig:1`)
    await bundle('hostile.yaml', `images:\n${lines.join('\n')}\n`)
    const out = path.join(dir, 'hostile.tar')
    const c = await airlock(['create', 'hostile.yaml', '--sign-key', 'release.key.asc', '-o', out])
    assert.equal(c.code, 0, c.stderr)
    const v = await airlock(['verify', out, '--key', pub, '--cosign-key', path.join(dir, 'good.pem')])
    assert.equal(v.code, 3, v.stderr)
    assert.match(v.stderr, /5 images in the bundle without a valid upstream signature/)
    for (const [name, , reason] of cases) assert.match(v.stderr, new RegExp(`${BASE}/${name}:1 \\(sha256:[0-9a-f]{64}\\): .*${reason.source}`), name)
    assert.match(v.stderr, new RegExp(`${BASE}/nosig:1 \\(sha256:[0-9a-f]{64}\\): the bundle carries no cosign signature of it`))
    assert.doesNotMatch(v.stderr, /\n\s+at /, 'no stack trace')
  })

  it('a registry with the referrers API: the index it answers is carried and lands under the fallback tag', async () => {
    const api = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{mediaType: sbom.mediaType, digest: sbom.digest, size: sbom.size, artifactType: sbom.artifactType}], annotations: {'served-by': 'referrers-api'}}))
    double.referrers.set(app.digest, api)
    await bundle('api.yaml', `referrers: {signatures: false, sboms: true}
images:
  - ${double.host}/${appRepo}:1
`)
    const out = path.join(dir, 'api.tar')
    const c = await airlock(['create', 'api.yaml', '--sign-key', 'release.key.asc', '-o', out])
    assert.equal(c.code, 0, c.stderr)
    const i = JSON.parse((await airlock(['inspect', out, '--json'])).stdout) as {images: {name: string; digest: string; referrerOf?: {via: string}}[]}
    assert.deepEqual(i.images.map((x) => [x.name, x.referrerOf?.via]), [[`${double.host}/${appRepo}:1`, undefined], [`${double.host}/${appRepo}:${cosignTag(app.digest)}`, 'referrers']])
    assert.equal(i.images[1].digest, sha256(api))
    const prefix = `${BASE}-api`
    const r = await airlock(['install', out, '--key', pub, '--to', `registry://${tb.registries.target}/${prefix}`])
    assert.equal(r.code, 0, r.stderr)
    assert.ok((await rawManifest(tb.registries.target, `${prefix}/${appRepo}`, cosignTag(app.digest)))?.equals(api))
    assert.ok((await rawManifest(tb.registries.target, `${prefix}/${appRepo}`, sbom.digest))?.equals(sbom.bytes))
  })

  it('a .sig tag pointing at garbage is refused at create with a reason, no crash', async () => {
    double.garbage.set(`${appRepo}:${cosignTag(app.digest, 'sig')}`, Buffer.from('<html>not a manifest</html>'))
    await bundle('garbage.yaml', `images:\n  - ${double.host}/${appRepo}:1\n`)
    const c = await airlock(['create', 'garbage.yaml', '--unsigned', '-o', path.join(dir, 'garbage.tar')])
    assert.notEqual(c.code, 0)
    assert.match(c.stderr, new RegExp(`its cosign tag ${cosignTag(app.digest, 'sig')} is not usable`))
    assert.doesNotMatch(c.stderr, /\n\s+at /, 'no stack trace')
  })
})
