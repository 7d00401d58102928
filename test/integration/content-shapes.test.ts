/**
 * Acceptance of real-world content (issue: byte-exact nested indexes, attestations, artifacts,
 * zstd, digests kept on every target). Every shape of test/helpers/shapes.ts is pushed to the open
 * registry, put in ONE bundle (tag, digest-only and tag@digest references), created and verified
 * once with the CLI, then installed to a registry, an OCI layout, docker, podman and containerd:
 *
 * - registry: `skopeo inspect --raw` gives the same bytes on both sides for every entry and every
 *   manifest or index under it (nested ones too), by digest and by tag (the cosign `.sig` tag and
 *   the referrers fallback tag included), and every blob is there;
 * - oci: index.json names each entry digest, every blob is there with its digest;
 * - docker: image ID = config digest of the linux/amd64 image, each one runs (zstd included);
 *   charts, signatures and artifacts are reported as left out;
 * - podman: `podman image inspect REPO@<source digest>` works (tagged and digest-only entries; for
 *   a nested index, the platform manifest's digest: podman 4.3 cannot record the top one);
 * - containerd: `ctr images ls` shows each entry with its source digest;
 * - `docker load -i` of every archive works (manifest.json: runnable, non-zstd entries only).
 * Small extra bundles: a platform subset of the BuildKit index by tag (rewritten, and said so),
 * and of a digest-pinned one (refused unless the entry says `subset: true`).
 */
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {createHash, verify as verifySignature} from 'node:crypto'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {after, before, describe, it} from 'node:test'

import {runCli, type CliResult} from '../helpers/cli.js'
import {hasBlob} from '../helpers/registry-push.js'
import {EMPTY_DIGEST, pushShapes, SBOM_ARTIFACT_TYPE, type Shape, shapeList, type Shapes} from '../helpers/shapes.js'
import {Testbed, testbed} from '../helpers/testbed.js'

const execFileP = promisify(execFile)
const RUN = `shapes-${process.pid}${Date.now().toString(36)}`

let tb: Testbed
let dir: string
let pub: string
let shapes: Shapes
let main: {archive: string; create: CliResult}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

function airlock(args: string[]): CliResult {
  return runCli(args, {cwd: dir, env: {...tb.processEnv, AIRLOCK_STATE_FILE: path.join(dir, 'installed.json')}, timeout: 300_000})
}

async function sh(bin: string, args: string[]): Promise<string> {
  const {stdout} = await execFileP(bin, args, {env: tb.processEnv, maxBuffer: 64 * 1024 * 1024, timeout: 120_000})
  return stdout
}

/** The exact bytes `skopeo inspect --raw` prints for `ref` (host/repo:tag or host/repo@digest). */
async function raw(ref: string): Promise<Buffer> {
  const {stdout} = await execFileP('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], {env: tb.processEnv, encoding: 'buffer', maxBuffer: 16 * 1024 * 1024, timeout: 60_000})
  return stdout
}

/** Run `fn` over `items`, `n` at a time (skopeo is a process per call; the cores are shared). */
async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  const queue = [...items]
  await Promise.all(Array.from({length: n}, async () => {
    for (let t = queue.shift(); t !== undefined; t = queue.shift()) await fn(t)
  }))
}

/** The name an entry gets on a target: the reference without its digest when it has a tag. */
const targetName = (s: Shape) => (s.tag ? `${s.repository}:${s.tag}` : s.ref)
const repoPath = (s: Shape) => s.repository.slice(s.repository.indexOf('/') + 1)
const runnables = () => shapeList(shapes).filter(([, s]) => s.runnable)
const notRunnable = () => shapeList(shapes).filter(([, s]) => !s.runnable)

function mainBundle(): string {
  const line = (s: Shape, all = false) => (all ? `  - ref: ${s.ref}\n    platforms: all\n` : `  - ${s.ref}\n`)
  const s = shapes
  return `apiVersion: airlock/v1
kind: Bundle
metadata: {name: shapes, version: 1.0.0}
images:
${line(s.buildkit, true)}${line(s.nested, true)}${line(s.chart)}${line(s.sbomSubject)}${line(s.sbom)}${line(s.referrers, true)}${line(s.signed)}${line(s.signature)}${line(s.zstd)}${line(s.plain)}${line(s.layers64)}`
}

function requireArchive(): string {
  assert.equal(main.create.code, 0, `create of the bundle of every shape failed:\n${main.create.stdout}${main.create.stderr}`)
  return main.archive
}

function parseJson(r: CliResult, what: string): unknown {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stdout.slice(0, 2000)}${r.stderr}`)
  return JSON.parse(r.stdout)
}

/**
 * Whether an install's --json result reports `digest` as left out (skipped, not loaded): some
 * object holding the digest has a key or a value saying so, or sits under such a key.
 */
function reportedLeftOut(json: unknown, digest: string): boolean {
  const word = /skip|left.?out|not.?loaded|omit|unsupported/i
  const walk = (v: unknown, under: boolean): boolean => {
    if (Array.isArray(v)) return v.some((x) => walk(x, under))
    if (v === null || typeof v !== 'object') return under && typeof v === 'string' && v.includes(digest)
    const entries = Object.entries(v as Record<string, unknown>)
    const holds = entries.some(([, x]) => typeof x === 'string' && x.includes(digest))
    if (holds && (under || entries.some(([k, x]) => word.test(k) || (typeof x === 'string' && word.test(x))))) return true
    return entries.some(([k, x]) => walk(x, under || word.test(k)))
  }
  return walk(json, false)
}

/** Every problem of a matrix, reported together (one failing shape does not hide the others). */
class Problems {
  readonly list: string[] = []
  ok(cond: boolean, message: string): void {
    if (!cond) this.list.push(message)
  }
  equal(actual: unknown, expected: unknown, message: string): void {
    if (actual !== expected) this.list.push(`${message}: got ${String(actual)}, want ${String(expected)}`)
  }
  none(): void {
    if (this.list.length > 0) assert.fail(`${this.list.length} problem(s):\n${this.list.join('\n')}`)
  }
}

async function removeEngineImages(): Promise<void> {
  const ids = runnables().map(([, s]) => s.runnable!.config)
  await sh('docker', ['rmi', '-f', ...ids]).catch(() => '')
  await sh('podman', ['rmi', '-f', ...ids]).catch(() => '')
}

// One set of fixtures, one bundle of them all, created once (in before, so that each test below
// reports its own failure).
before(async () => {
  tb = await testbed()
  dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-shapes-'))
  shapes = await pushShapes(tb.registries.open, RUN)
  const k = runCli(['key', 'generate', '--name', 'Shapes Test', '--out', path.join(dir, 'release')], {cwd: dir, env: tb.processEnv})
  assert.equal(k.code, 0, k.stderr)
  pub = path.join(dir, 'release.pub.asc')
  await writeFile(path.join(dir, 'bundle.yaml'), mainBundle())
  const archive = path.join(dir, 'shapes.tar')
  main = {archive, create: airlock(['create', 'bundle.yaml', '--sign-key', 'release.key.asc', '-o', archive, '--json'])}
  await removeEngineImages()
})
after(async () => {
  if (shapes) {
    await removeEngineImages()
    const names = shapeList(shapes).map(([, s]) => targetName(s))
    await sh('ctr', ['-a', tb.containerdAddress, '-n', tb.containerdNamespace, 'images', 'rm', ...names]).catch(() => '')
  }
  if (dir) await rm(dir, {recursive: true, force: true})
})

describe('content shapes: create → verify → install, byte for byte on every target', {timeout: 900_000}, () => {
  it('fixtures: the source registry serves every shape byte for byte, and the cosign signature verifies', async () => {
    await pool(shapeList(shapes), 3, async ([key, s]) => {
      for (const d of s.manifests) assert.equal(sha(await raw(`${s.repository}@${d}`)), d, `${key}: ${d}`)
      if (s.tag) assert.equal(sha(await raw(`${s.repository}:${s.tag}`)), s.digest, `${key}: tag ${s.tag}`)
      for (const b of s.blobs) assert.ok(await hasBlob(tb.registries.open, repoPath(s), b), `${key}: blob ${b}`)
    })
    const top = JSON.parse((await raw(shapes.buildkit.ref)).toString()) as {manifests: {platform: {os: string}; annotations?: Record<string, string>}[]}
    assert.deepEqual(top.manifests.map((m) => m.annotations?.['vnd.docker.reference.type'] ?? m.platform.os), ['linux', 'linux', 'attestation-manifest', 'attestation-manifest'])
    const nested = JSON.parse((await raw(shapes.nested.ref)).toString()) as {manifests: {mediaType: string; digest: string}[]}
    assert.equal(nested.manifests[0].digest, shapes.nested.child)
    assert.equal(nested.manifests[0].mediaType, 'application/vnd.oci.image.index.v1+json')
    const sbom = JSON.parse((await raw(shapes.sbom.ref)).toString()) as {artifactType: string; config: {mediaType: string; digest: string; size: number}; subject: {digest: string}}
    assert.deepEqual([sbom.artifactType, sbom.config.mediaType, sbom.config.digest, sbom.config.size, sbom.subject.digest],
      [SBOM_ARTIFACT_TYPE, 'application/vnd.oci.empty.v1+json', EMPTY_DIGEST, 2, shapes.sbomSubject.digest])
    const sig = shapes.signature
    assert.ok(verifySignature('sha256', sig.payload, sig.publicKey, Buffer.from(sig.signatureB64, 'base64')))
    assert.equal(sig.tag, `sha256-${shapes.signed.digest.slice(7)}.sig`)
    assert.equal(shapes.referrers.tag, `sha256-${shapes.sbomSubject.digest.slice(7)}`)
  })

  it('create keeps every entry digest (platforms: all keeps the BuildKit index, attestations included)', () => {
    const j = parseJson(main.create, 'create') as {images: {digest: string; sourceDigest: string}[]}
    const list = shapeList(shapes)
    assert.equal(j.images.length, list.length)
    const p = new Problems()
    list.forEach(([key, s], i) => {
      p.equal(j.images[i].digest, s.digest, `${key}: digest`)
      p.equal(j.images[i].sourceDigest, s.digest, `${key}: sourceDigest`)
    })
    p.none()
  })

  it('verify accepts the archive', () => {
    const j = parseJson(airlock(['verify', requireArchive(), '--key', pub, '--json']), 'verify') as {ok: boolean; images: unknown[]}
    assert.equal(j.ok, true)
    assert.equal(j.images.length, shapeList(shapes).length)
  })

  it('install --to registry: every manifest and index byte-identical on both sides, tags included; every blob there', async () => {
    const mirror = `${RUN}-mirror`
    parseJson(airlock(['install', requireArchive(), '--key', pub, '--to', `registry://${tb.registries.target}/${mirror}`, '--json']), 'install --to registry')
    const target = (s: Shape) => `${tb.registries.target}/${mirror}/${repoPath(s)}`
    const p = new Problems()
    await pool(shapeList(shapes), 3, async ([key, s]) => {
      for (const d of s.manifests) {
        const [src, dst] = [await raw(`${s.repository}@${d}`), await raw(`${target(s)}@${d}`).catch((e: Error) => Buffer.from(`missing: ${e.message}`))]
        p.ok(src.equals(dst), `${key}: ${d} differs on the target: ${dst.toString().slice(0, 200)}`)
      }
      if (s.tag) p.equal(sha(await raw(`${target(s)}:${s.tag}`).catch(() => Buffer.alloc(0))), s.digest, `${key}: tag ${s.tag} on the target`)
      for (const b of s.blobs) p.ok(await hasBlob(tb.registries.target, `${mirror}/${repoPath(s)}`, b), `${key}: blob ${b} missing on the target`)
    })
    p.none()
  })

  it('install --to oci:DIR: index.json names each entry digest; every manifest and blob is there', async () => {
    const oci = path.join(dir, 'oci')
    parseJson(airlock(['install', requireArchive(), '--key', pub, '--to', `oci:${oci}`, '--json']), 'install --to oci')
    const index = JSON.parse(await readFile(path.join(oci, 'index.json'), 'utf8')) as {manifests: {digest: string}[]}
    const p = new Problems()
    for (const [key, s] of shapeList(shapes)) {
      p.ok(index.manifests.some((m) => m.digest === s.digest), `${key}: ${s.digest} not in index.json`)
      for (const d of [...s.manifests, ...s.blobs]) {
        const data = await readFile(path.join(oci, 'blobs', 'sha256', d.slice(7))).catch(() => Buffer.alloc(0))
        p.equal(sha(data), d, `${key}: blob ${d}`)
      }
    }
    p.none()
  })

  it('install --to docker: image ID = config digest, every image runs (zstd too); the rest is reported as left out', async () => {
    await removeEngineImages()
    const j = parseJson(airlock(['install', requireArchive(), '--key', pub, '--to', 'docker', '--json']), 'install --to docker') as {images: {digest: string; confirmed: string}[]}
    const p = new Problems()
    for (const [key, s] of runnables()) {
      const r = s.runnable!
      p.ok(j.images.some((i) => i.digest === s.digest && i.confirmed === r.config), `${key}: not confirmed as ${r.config} in ${JSON.stringify(j.images)}`)
      p.equal((await sh('docker', ['image', 'inspect', '--format', '{{.Id}}', s.tag ? targetName(s) : r.config]).catch(String)).trim(), r.config, `${key}: image ID`)
      p.equal((await sh('docker', ['run', '--rm', '--network', 'none', r.config]).catch(String)).trim(), r.output, `${key} runs`)
    }
    for (const [key, s] of notRunnable()) p.ok(reportedLeftOut(j, s.digest), `${key}: ${s.digest} is not reported as left out in ${JSON.stringify(j).slice(0, 300)}`)
    p.none()
  })

  it('install --to podman: podman image inspect REPO@<source digest> works, tagged and digest-only', async () => {
    await removeEngineImages()
    const j = parseJson(airlock(['install', requireArchive(), '--key', pub, '--to', 'podman', '--json']), 'install --to podman')
    const p = new Problems()
    const inspect = (ref: string) => sh('podman', ['image', 'inspect', '--format', '{{.Id}}', ref]).then((o) => o.trim(), (e: Error) => `not found: ${e.message.split('\n').slice(-2).join(' ')}`)
    for (const [key, s] of runnables()) {
      const r = s.runnable!
      // podman 4.3 picks a platform only among the TOP index's own entries, so for a nested index it
      // records the platform manifest's digest, not the top one's (docs/format.md says so).
      const digests = key === 'nested' ? [r.manifest] : [s.digest, r.manifest]
      for (const d of digests.filter((d, i, a) => a.indexOf(d) === i)) p.equal(await inspect(`${s.repository}@${d}`), r.config.slice(7), `${key}: podman image inspect ${s.repository}@${d}`)
      if (s.tag) p.equal(await inspect(targetName(s)), r.config.slice(7), `${key}: podman image inspect ${targetName(s)}`)
    }
    for (const [key, s] of notRunnable()) p.ok(reportedLeftOut(j, s.digest), `${key}: ${s.digest} is not reported as left out in ${JSON.stringify(j).slice(0, 300)}`)
    p.none()
  })

  it('install --to containerd: ctr images ls shows every entry with its source digest', async () => {
    parseJson(airlock(['install', requireArchive(), '--key', pub, '--to', 'containerd', '--json']), 'install --to containerd')
    const rows = (await sh('ctr', ['-a', tb.containerdAddress, '-n', tb.containerdNamespace, 'images', 'ls'])).split('\n').map((l) => l.split(/\s+/))
    const p = new Problems()
    for (const [key, s] of shapeList(shapes)) {
      const row = rows.find((r) => r[0] === targetName(s))
      p.ok(row !== undefined, `${key}: ${targetName(s)} not in ctr images ls`)
      if (row) p.equal(row[2], s.digest, `${key}: digest in containerd`)
    }
    p.none()
  })

  it('docker load -i ARCHIVE works; manifest.json lists exactly the runnable entries without zstd layers', async () => {
    await removeEngineImages()
    const archive = requireArchive()
    const loaded = await sh('docker', ['load', '-i', archive]).catch((e: Error) => `docker load failed: ${e.message}`)
    assert.doesNotMatch(loaded, /docker load failed/)
    const loadable = runnables().filter(([k]) => k !== 'zstd')
    const listed = JSON.parse(await sh('tar', ['-xOf', archive, 'manifest.json'])) as {Config: string}[]
    assert.deepEqual(listed.map((m) => m.Config).sort(), loadable.map(([, s]) => `blobs/sha256/${s.runnable!.config.slice(7)}`).sort())
    const p = new Problems()
    for (const [key, s] of loadable) p.equal((await sh('docker', ['image', 'inspect', '--format', '{{.Id}}', s.runnable!.config]).catch(String)).trim(), s.runnable!.config, `${key} loaded by docker load`)
    p.none()
  })
})

describe('small bundles: a platform subset of an index (rewritten, said so; refused when pinned unless asked for), zstd layers', {timeout: 600_000}, () => {
  const bundle = async (file: string, name: string, entry: string) => {
    await writeFile(path.join(dir, file), `apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: ${name}, version: 1.0.0}\nimages:\n${entry}`)
  }

  it('by tag: a new index of linux/amd64; create --json and inspect name the original digest and what was omitted; the platform manifest keeps its digest', async () => {
    const bk = shapes.buildkit
    await bundle('subset.yaml', 'shapes-subset', `  - ref: ${bk.ref}\n    platforms: [linux/amd64]\n`)
    const archive = path.join(dir, 'subset.tar')
    const r = airlock(['create', 'subset.yaml', '--sign-key', 'release.key.asc', '-o', archive, '--json'])
    const j = parseJson(r, 'create of the subset') as {images: {digest: string; sourceDigest: string}[]}
    const p = new Problems()
    p.equal(j.images[0].sourceDigest, bk.digest, 'create --json: sourceDigest is the original index')
    p.ok(j.images[0].digest !== bk.digest, 'create --json: the subset is a new index')
    p.ok(/omitted/.test(r.stdout), 'create --json says what was omitted')
    p.ok(r.stdout.includes(bk.images.arm64), 'create --json names the omitted linux/arm64 manifest')
    const meta = JSON.parse(await sh('tar', ['-xOf', archive, 'airlock.json'])) as {images: {digest: string; sourceDigest: string; manifests: {digest: string}[]; omitted?: {digest: string}[]}[]}
    const rec = meta.images[0]
    p.equal(rec.sourceDigest, bk.digest, 'airlock.json: sourceDigest')
    p.ok(rec.manifests.some((m) => m.digest === bk.images.amd64), 'airlock.json: the linux/amd64 manifest keeps its digest')
    p.ok((rec.omitted ?? []).some((o) => o.digest === bk.images.arm64), `airlock.json: omitted lists linux/arm64 (${JSON.stringify(rec.omitted)})`)
    const inspect = airlock(['inspect', archive, '--key', pub, '--json'])
    p.ok(inspect.code === 0 && inspect.stdout.includes(bk.digest) && /omitted/.test(inspect.stdout), 'inspect --json names the original digest and what was omitted')
    // On a registry: the new index, and the platform manifest byte for byte.
    const mirror = `${RUN}-subset`
    parseJson(airlock(['install', archive, '--key', pub, '--to', `registry://${tb.registries.target}/${mirror}`, '--json']), 'install of the subset')
    const target = `${tb.registries.target}/${mirror}/${repoPath(bk)}`
    p.ok((await raw(`${bk.repository}@${bk.images.amd64}`)).equals(await raw(`${target}@${bk.images.amd64}`).catch(() => Buffer.alloc(0))), 'the linux/amd64 manifest, byte for byte on the target')
    p.equal(sha(await raw(`${target}:1`)), rec.digest, 'the tag on the target names the new index')
    p.equal(await sh('docker', ['load', '-i', archive]).then(() => 'ok', (e: Error) => e.message), 'ok', 'docker load -i of the subset archive')
    p.none()
  })

  it('by digest: a subset of a pinned index is refused (exit 2) unless the entry says subset: true', async () => {
    const bk = shapes.buildkit
    const pinned = `${bk.repository}@${bk.digest}`
    await bundle('pinned.yaml', 'shapes-pinned', `  - ref: ${pinned}\n    platforms: [linux/amd64]\n`)
    const refused = airlock(['create', 'pinned.yaml', '--sign-key', 'release.key.asc', '-o', path.join(dir, 'pinned.tar'), '--json'])
    assert.equal(refused.code, 2, `a subset of a pinned index must be refused:\n${refused.stdout}${refused.stderr}`)
    assert.match(refused.stdout + refused.stderr, /subset: true/, 'the refusal names the way to ask for it')
    await bundle('pinned-ok.yaml', 'shapes-pinned', `  - ref: ${pinned}\n    platforms: [linux/amd64]\n    subset: true\n`)
    const archive = path.join(dir, 'pinned-ok.tar')
    const r = airlock(['create', 'pinned-ok.yaml', '--sign-key', 'release.key.asc', '-o', archive, '--json'])
    const j = parseJson(r, 'create of a pinned subset with subset: true') as {images: {digest: string; sourceDigest: string}[]}
    assert.equal(j.images[0].sourceDigest, bk.digest)
    assert.match(r.stdout, /omitted/)
    await sh('docker', ['load', '-i', archive])
  })

  it('zstd layers: manifest.json leaves the image out (docker load of the archive still works); install --to docker loads it and it runs', async () => {
    const z = shapes.zstd
    await bundle('zstd.yaml', 'shapes-zstd', `  - ${z.ref}\n`)
    const archive = path.join(dir, 'zstd.tar')
    parseJson(airlock(['create', 'zstd.yaml', '--sign-key', 'release.key.asc', '-o', archive, '--json']), 'create of the zstd image')
    const p = new Problems()
    p.equal(await sh('tar', ['-xOf', archive, 'manifest.json']).then((t) => JSON.stringify(JSON.parse(t))), '[]', 'Docker Engine 20.10 cannot unpack zstd: manifest.json must leave it out')
    p.equal(await sh('docker', ['load', '-i', archive]).then(() => 'ok', (e: Error) => e.message), 'ok', 'docker load -i of the archive')
    await sh('docker', ['rmi', '-f', z.runnable!.config]).catch(() => '')
    const r = airlock(['install', archive, '--key', pub, '--to', 'docker', '--json'])
    p.equal(r.code, 0, `install --to docker of zstd layers: ${r.stdout.slice(0, 1000)}${r.stderr}`)
    p.equal((await sh('docker', ['image', 'inspect', '--format', '{{.Id}}', targetName(z)]).catch(String)).trim(), z.runnable!.config, 'image ID')
    p.equal((await sh('docker', ['run', '--rm', '--network', 'none', z.runnable!.config]).catch(String)).trim(), z.runnable!.output, 'the zstd image runs')
    p.none()
  })
})
