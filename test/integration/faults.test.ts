/**
 * Network faults between airlock and the REAL testbed registries, injected by an in-process proxy
 * (test/helpers/fault-proxy.ts): transient statuses, 429 + Retry-After, resets and truncations
 * mid-blob (resumed with Range), stalls, flipped bytes (never cached, never written), persistent
 * failures (one clear per-image error) and `create --keep-going`.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {createBundle} from '../../src/create/create.js'
import {AirlockError} from '../../src/core/errors.js'
import {installArchive} from '../../src/install/install.js'
import {readArchive} from '../../src/transports/archive/reader.js'
import {RegistryClient} from '../../src/transports/registry/client.js'
import type {Progress} from '../../src/core/progress.js'
import {FaultProxy, times} from '../helpers/fault-proxy.js'
import {Testbed, testbed} from '../helpers/testbed.js'
import {BIN as bin} from '../helpers/cli.js'

let tb: Testbed
let dir: string
let src: FaultProxy
let dst: FaultProxy
let baseLayer: {digest: string; size: number}
let appBOnly: string
let archive: string

/** The CLI as a child process, asynchronously (the fault proxy lives in this event loop). */
export function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<{status: number | null; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {env, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (status) => {
      clearTimeout(t)
      resolve({status, stdout, stderr})
    })
  })
}

function recorder(): Progress & {notes: string[]} {
  const notes: string[] = []
  return {notes, begin() {}, advance() {}, note: (m) => notes.push(m), end() {}}
}

async function spec(name: string, images: string[]): Promise<string> {
  const f = path.join(dir, `${name}.yaml`)
  await writeFile(f, `apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: ${name}, version: 1.0.0}\nplatforms: [linux/amd64]\nimages:\n${images.map((i) => `  - ${i}`).join('\n')}\n`)
  return f
}

async function cacheFiles(cache: string): Promise<string[]> {
  try {
    return await readdir(path.join(cache, 'blobs', 'sha256'))
  } catch {
    return []
  }
}

/** Every cache entry hashes to its name. */
async function assertCacheSound(cache: string): Promise<void> {
  for (const f of await cacheFiles(cache)) {
    const h = createHash('sha256').update(await readFile(path.join(cache, 'blobs', 'sha256', f))).digest('hex')
    assert.equal(h, f, `cache entry ${f} is corrupt`)
  }
}

const BLOB = /\/blobs\/sha256:/
const FAST = {retries: 4, retryBaseDelayMs: 5}

describe('network faults (fault-injecting proxy in front of the real testbed registries)', {timeout: 300_000}, () => {
  before(async () => {
    tb = await testbed()
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-faults-'))
    src = await FaultProxy.start(tb.registries.open)
    dst = await FaultProxy.start(tb.registries.target)
    const a = tb.images['app-a'].manifests[0]
    baseLayer = {digest: a.layers[0], size: a.layerSizes[0]}
    const b = tb.images['app-b'].manifests[0]
    const shared = new Set([...tb.images['app-a'].manifests[0].layers, ...tb.images['app-c'].manifests[0].layers])
    appBOnly = b.layers.find((l) => !shared.has(l))!
    assert.ok(baseLayer.size > 500_000 && appBOnly)
  })
  after(async () => {
    await src?.close()
    await dst?.close()
    await rm(dir, {recursive: true, force: true})
  })

  it('create survives 500/502/503, 429 + Retry-After and resets/truncations mid-blob, resuming with Range', async () => {
    src.rules = [
      times(2, /\/manifests\//, {kind: 'status', status: 503}),
      times(1, /\/manifests\//, {kind: 'status', status: 429, retryAfter: '0'}),
      times(1, BLOB, {kind: 'status', status: 500}),
      times(1, BLOB, {kind: 'status', status: 502}),
      times(1, new RegExp(baseLayer.digest), {kind: 'reset', afterBytes: 300_000}),
      times(1, new RegExp(baseLayer.digest), {kind: 'truncate', afterBytes: 200_000}),
    ]
    src.log.length = 0
    const cache = path.join(dir, 'cache-ok')
    const p = recorder()
    const t0 = Date.now()
    const r = await createBundle({
      specFile: await spec('faults-ok', [`${src.host}/testbed/app-a:1`, `${src.host}/testbed/app-b:1`]),
      output: path.join(dir, 'ok.tar'), unsigned: true, cacheDir: cache, progress: p, ...FAST,
    })
    const ms = Date.now() - t0
    archive = r.archive
    assert.equal(r.images.length, 2)
    // every injected fault was hit and retried
    assert.equal(src.log.filter((l) => l.fault).length, 7, JSON.stringify(src.log.filter((l) => l.fault)))
    assert.ok(p.notes.some((n) => /retrying .* HTTP 503/.test(n)), p.notes.join('\n'))
    assert.ok(p.notes.some((n) => /HTTP 429/.test(n)))
    // the base layer resumed with Range after the reset (at 300000) and the truncation (at 200000 of the resumed body)
    const ranged = src.log.filter((l) => l.path.includes(baseLayer.digest) && l.range)
    assert.ok(ranged.some((l) => /^bytes=300000-$/.test(l.range!)), JSON.stringify(src.log.filter((l) => l.path.includes(baseLayer.digest))))
    assert.ok(ranged.some((l) => /^bytes=500000-$/.test(l.range!)), JSON.stringify(ranged))
    // the base layer moved ~once: 1 full GET started + resumed tails, not 3 full downloads
    assert.equal(src.log.filter((l) => l.path.includes(baseLayer.digest) && l.method === 'GET' && !l.range && !l.fault).length, 0)
    const v = await readArchive([r.archive], {trustedKeys: [], allowUnsigned: true})
    assert.equal(v.images.length, 2)
    await assertCacheSound(cache)
    assert.ok(ms < 30_000, `took ${ms} ms`)
    console.log(`  create through ${src.log.filter((l) => l.fault).length} injected faults: ${ms} ms`)
  })

  it('a stalled blob download times out and resumes with Range (registry client)', async () => {
    src.rules = [times(1, new RegExp(baseLayer.digest), {kind: 'stall', afterBytes: 400_000})]
    src.log.length = 0
    const c = new RegistryClient({host: src.host, timeoutMs: 400, retries: 3, retryBaseDelayMs: 5})
    try {
      const t0 = Date.now()
      const h = createHash('sha256')
      for await (const chunk of await c.getBlob('testbed/app-a', baseLayer.digest, baseLayer.size)) h.update(chunk as Buffer)
      assert.equal(`sha256:${h.digest('hex')}`, baseLayer.digest)
      assert.ok(src.log.some((l) => l.range === 'bytes=400000-'), JSON.stringify(src.log))
      assert.ok(Date.now() - t0 < 10_000)
    } finally {
      c.close()
    }
  })

  it('wrong bytes (one flipped byte) are never cached nor written; the error names the image', async () => {
    src.rules = [times(Infinity, new RegExp(appBOnly), {kind: 'flip', at: 100})]
    const cache = path.join(dir, 'cache-flip')
    const out = path.join(dir, 'flip.tar')
    await assert.rejects(
      createBundle({specFile: await spec('faults-flip', [`${src.host}/testbed/app-b:1`]), output: out, unsigned: true, cacheDir: cache, ...FAST}),
      (e: AirlockError) => {
        assert.equal(e.code, 'create.pull_failed')
        assert.match(e.details.join('\n'), new RegExp(`testbed/app-b:1: blob ${appBOnly}: .*hashes to`))
        return true
      },
    )
    assert.ok(!(await cacheFiles(cache)).includes(appBOnly.slice(7)), 'bad bytes were cached')
    assert.deepEqual(await readdir(path.join(cache, 'tmp')).catch(() => []), [], 'temp file left behind')
    await assertCacheSound(cache)
    assert.ok(!existsSync(out) && !existsSync(`${out}.partial`))
  })

  it('persistent failures give up after bounded retries with a per-image error', async () => {
    src.rules = [times(Infinity, /testbed\/app-c\/manifests\//, {kind: 'status', status: 503})]
    src.log.length = 0
    const t0 = Date.now()
    await assert.rejects(
      createBundle({specFile: await spec('faults-down', [`${src.host}/testbed/app-a:1`, `${src.host}/testbed/app-c:1`]), output: path.join(dir, 'down.tar'), unsigned: true, cacheDir: path.join(dir, 'cache-ok'), ...FAST}),
      (e: AirlockError) => {
        assert.equal(e.code, 'resolve.failed')
        assert.match(e.message, /1 of 2 images/)
        assert.equal(e.details.length, 1)
        assert.match(e.details[0], /testbed\/app-c:1.*HTTP 503/)
        return true
      },
    )
    assert.equal(src.count('GET', /app-c\/manifests/), FAST.retries + 1)
    assert.ok(Date.now() - t0 < 10_000)
  })

  it('a blob that cannot be pulled while others wait in the queue (-j 1): create fails with its error, it does not hang; the next run resumes', async () => {
    // The first layer in archive (digest) order, so that the other blobs are still queued when it fails.
    const first = (['app-a', 'app-b', 'app-c'] as const).flatMap((n) => tb.images[n].manifests[0].layers).sort()[0]
    src.rules = [times(Infinity, new RegExp(first), {kind: 'status', status: 503})]
    const out = path.join(dir, 'queued.tar')
    const t0 = Date.now()
    await assert.rejects(
      createBundle({specFile: await spec('faults-queued', [`${src.host}/testbed/app-b:1`, `${src.host}/testbed/app-a:1`, `${src.host}/testbed/app-c:1`]), output: out, unsigned: true, jobs: 1, ...FAST}),
      (e: AirlockError) => e.code === 'create.pull_failed' && e.details.join('\n').includes(`blob ${first}: `) && /HTTP 503/.test(e.details.join('\n')),
    )
    assert.ok(Date.now() - t0 < 30_000)
    // A network failure leaves the partial archive and its journal, as a kill does: the next run resumes.
    assert.ok(!existsSync(out) && existsSync(`${out}.partial`) && existsSync(`${out}.partial.journal`))
    src.rules = []
    const again = await createBundle({specFile: await spec('faults-queued', [`${src.host}/testbed/app-b:1`, `${src.host}/testbed/app-a:1`, `${src.host}/testbed/app-c:1`]), output: out, unsigned: true, jobs: 1, ...FAST})
    assert.ok(existsSync(out) && !existsSync(`${out}.partial`) && !existsSync(`${out}.partial.journal`))
    assert.equal(again.images.length, 3)
  })

  it('a create that failed on the network resumes on the next run: the blobs it had pulled are not pulled again', async () => {
    // The last layer in archive order fails for good; with -j 1 every other blob is in place by then.
    const layers = (['app-a', 'app-b', 'app-c'] as const).flatMap((n) => tb.images[n].manifests[0].layers).sort()
    const last = layers[layers.length - 1]
    src.rules = [times(Infinity, new RegExp(last), {kind: 'status', status: 503})]
    const out = path.join(dir, 'resume-net.tar')
    const specFile = await spec('faults-resume', [`${src.host}/testbed/app-a:1`, `${src.host}/testbed/app-b:1`, `${src.host}/testbed/app-c:1`])
    await assert.rejects(createBundle({specFile, output: out, unsigned: true, jobs: 1, ...FAST}), (e: AirlockError) => e.code === 'create.pull_failed')
    assert.ok(existsSync(`${out}.partial`) && existsSync(`${out}.partial.journal`))
    src.rules = []
    src.log.length = 0
    const again = await createBundle({specFile, output: out, unsigned: true, jobs: 1, ...FAST})
    assert.ok(again.bytesResumed > 0, 'nothing was resumed')
    for (const d of layers.filter((l) => l !== last)) assert.equal(src.count('GET', new RegExp(`blobs/${d}`)), 0, `${d} pulled again`)
    assert.equal(src.count('GET', new RegExp(`blobs/${last}`)), 1)
    assert.ok(existsSync(out) && !existsSync(`${out}.partial`))
  })

  it('create --keep-going writes the images it could fetch and lists the failed ones (exit 0, --json failed)', async () => {
    src.rules = [times(Infinity, new RegExp(appBOnly), {kind: 'status', status: 503})]
    const f = await spec('faults-keep', [`${src.host}/testbed/app-a:1`, `${src.host}/testbed/app-b:1`])
    const out = path.join(dir, 'keep.tar')
    const env = {...process.env, AIRLOCK_RETRIES: '1', AIRLOCK_RETRY_BASE_DELAY_MS: '5', AIRLOCK_CACHE_DIR: path.join(dir, 'cache-keep')}
    const bad = await runCli(['create', f, '--unsigned', '-o', out, '--json'], env)
    assert.equal(bad.status, 1, bad.stdout + bad.stderr)
    assert.match((JSON.parse(bad.stdout) as {error: {code: string; message: string; details: string[]}}).error.details.join('\n'), /app-b:1: blob .*HTTP 503/)
    assert.ok(!existsSync(out))
    const r = await runCli(['create', f, '--unsigned', '-o', out, '--json', '--keep-going'], env)
    assert.equal(r.status, 0, r.stdout + r.stderr)
    const j = JSON.parse(r.stdout) as {images: {ref: string}[]; failed: {ref: string; stage: string}[]}
    assert.deepEqual(j.images.map((i: {ref: string}) => i.ref), [`${src.host}/testbed/app-a:1`])
    assert.equal(j.failed.length, 1)
    assert.equal(j.failed[0].ref, `${src.host}/testbed/app-b:1`)
    assert.equal(j.failed[0].stage, 'pull')
    const v = await readArchive([out], {trustedKeys: [], allowUnsigned: true})
    assert.equal(v.images.length, 1)
    assert.ok(!existsSync(path.join(dir, 'faults-keep.lock.yaml')), 'a partial lock file was written')
    // resolution failures are per image too
    src.rules = [times(Infinity, /testbed\/app-b\/manifests\//, {kind: 'status', status: 500})]
    const r2 = await runCli(['create', f, '--unsigned', '-o', out, '--keep-going'], env)
    assert.equal(r2.status, 0, r2.stdout + r2.stderr)
    assert.match(r2.stderr, /WARNING: .*testbed\/app-b:1: NOT in the archive \(resolve failed\)/)
    assert.match(r2.stdout, /WARNING: 1 image\(s\) NOT in the archive/)
  })

  it('install --to registry survives transient faults on the target and fails clearly on persistent ones', async () => {
    assert.ok(archive, 'needs the archive of the first test')
    dst.rules = [
      times(2, /\/blobs\/uploads\/$/, {kind: 'status', status: 503}, 'POST'),
      times(1, /\/blobs\/uploads\//, {kind: 'status', status: 502}, 'PUT'),
      times(1, /\/manifests\//, {kind: 'status', status: 429, retryAfter: '0'}, 'PUT'),
      times(1, /\/manifests\//, {kind: 'status', status: 500}, 'PUT'),
      times(1, BLOB, {kind: 'status', status: 503}, 'HEAD'),
    ]
    const prefix = `faults${Date.now()}`
    const stateFile = path.join(dir, 'state.json')
    const r = await installArchive({archive, keys: [], allowUnsigned: true, to: `registry://${dst.host}/${prefix}`, stateFile, ...FAST})
    assert.equal(r.images.length, 2)
    assert.ok(dst.log.filter((l) => l.fault).length >= 6)
    const c = new RegistryClient({host: tb.registries.target})
    try {
      for (const img of r.images) {
        const repo = img.name.replace(/^[^/]+\//, '').replace(/[:@].*$/, '')
        const m = await c.getManifest(repo, img.digest)
        assert.equal(m.digest, img.digest)
      }
    } finally {
      c.close()
    }
    dst.rules = [times(Infinity, /\/manifests\//, {kind: 'status', status: 503}, 'PUT')]
    await assert.rejects(
      installArchive({archive, keys: [], allowUnsigned: true, to: `registry://${dst.host}/${prefix}b`, stateFile, ...FAST}),
      (e: AirlockError) => e instanceof AirlockError && e.exitCode === 1 && /HTTP 503/.test(e.message),
    )
  })
})
