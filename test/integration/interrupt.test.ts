/**
 * Interrupted runs: `kill -9` of the `airlock create` CLI during resolution, mid-pull (a stalling
 * proxy in front of the real registry) and mid-archive write never leaves a corrupt cache entry
 * or a file under the final archive name; the rerun completes, cleans stale temp files and reuses
 * the cache. A killed `install --to registry` rerun completes and skips the blobs already there.
 */
import assert from 'node:assert/strict'
import {ChildProcess, spawn} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {existsSync, watch} from 'node:fs'
import {mkdtemp, open, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {readArchive} from '../../src/transports/archive/reader.js'
import {RegistryClient} from '../../src/transports/registry/client.js'
import {FaultProxy, times} from '../helpers/fault-proxy.js'
import {buildImage, pushImage} from '../helpers/images.js'
import {Testbed, testbed} from '../helpers/testbed.js'
import {BIN as bin} from '../helpers/cli.js'

type CreateReport = {bytesCached: number; bytesResumed: number; bytesPulled: number; files: string[]}

let tb: Testbed
let dir: string
let cache: string
let src: FaultProxy
const BIG = 24 * 1024 * 1024

/** Run the CLI; with `noCache` without any blob cache (the default for users: pulls go straight into the archive). */
function start(args: string[], env: NodeJS.ProcessEnv = {}, noCache = false): ChildProcess & {out: Promise<{status: number | null; stdout: string; stderr: string}>} {
  const e: NodeJS.ProcessEnv = {...process.env, AIRLOCK_CACHE_DIR: cache, AIRLOCK_RETRY_BASE_DELAY_MS: '5', ...env}
  if (noCache) delete e.AIRLOCK_CACHE_DIR
  const child = spawn(process.execPath, [bin, ...args], {cwd: dir, env: e, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const out = new Promise<{status: number | null; stdout: string; stderr: string}>((resolve) => child.on('close', (status) => resolve({status, stdout, stderr})))
  return Object.assign(child, {out})
}

async function until(cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const t0 = Date.now()
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 5))
  }
}

async function assertCacheSound(): Promise<number> {
  const d = path.join(cache, 'blobs', 'sha256')
  const files = existsSync(d) ? await readdir(d) : []
  for (const f of files) {
    const h = createHash('sha256').update(await readFile(path.join(d, f))).digest('hex')
    assert.equal(h, f, `cache entry ${f} is corrupt`)
  }
  return files.length
}

async function tmpFiles(): Promise<string[]> {
  return readdir(path.join(cache, 'tmp')).catch(() => [])
}

describe('interrupted runs (kill -9)', {timeout: 300_000}, () => {
  before(async () => {
    tb = await testbed()
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-interrupt-'))
    cache = path.join(dir, 'cache')
    const layout = path.join(dir, 'layout-big')
    await buildImage({layers: [{files: {'data/big.bin': randomBytes(BIG)}}], config: {Cmd: ['/bin/true']}}, layout, '1')
    await pushImage(layout, `${tb.registries.open}/interrupt/big:1`, {tag: '1'})
    src = await FaultProxy.start(tb.registries.open)
    await writeFile(path.join(dir, 'bundle.yaml'), `apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: intr, version: 1.0.0}\nplatforms: [linux/amd64]\nimages:\n  - ${src.host}/testbed/app-a:1\n  - ${src.host}/interrupt/big:1\n`)
  })
  after(async () => {
    await src?.close()
    await rm(dir, {recursive: true, force: true})
  })

  it('killed during resolution: no archive, sound cache', async () => {
    src.rules = [times(Infinity, /\/manifests\//, {kind: 'stall', afterBytes: 0})]
    src.log.length = 0
    const c = start(['create', '--unsigned', '-o', 'out.tar'])
    await until(() => src.log.length >= 1)
    c.kill('SIGKILL')
    assert.equal((await c.out).status, null)
    assert.ok(!existsSync(path.join(dir, 'out.tar')))
    await assertCacheSound()
  })

  it('killed mid-pull (stalled big layer): sound cache; the rerun cleans temp files and pulls less', async () => {
    const bigRe = /\/interrupt\/big\/blobs\//
    src.rules = [(r) => (bigRe.test(r.path) && r.method === 'GET' && !r.path.includes('manifests') ? {kind: 'stall', afterBytes: 8 * 1024 * 1024} : undefined)]
    src.log.length = 0
    const c = start(['create', '--unsigned', '-o', 'out.tar'])
    // wait until the big layer is stalled, and the small blobs (other requests) are done
    await until(async () => src.log.some((l) => l.fault === 'stall') && (await tmpFiles()).length > 0)
    await new Promise((r) => setTimeout(r, 500))
    c.kill('SIGKILL')
    await c.out
    const entries = await assertCacheSound()
    assert.ok(entries >= 3, `only ${entries} cache entries survived`)
    const stale = await tmpFiles()
    assert.ok(stale.length >= 1, 'expected the killed run to leave a temp file')
    // Never a file under the final name. (The writer follows right behind the downloads, so a kill
    // can leave out.tar.partial; the rerun removes it.)
    assert.ok(!existsSync(path.join(dir, 'out.tar')))

    src.rules = []
    const r = start(['create', '--unsigned', '-o', 'out.tar', '--json'])
    const res = await r.out
    assert.equal(res.status, 0, res.stderr)
    const j = JSON.parse(res.stdout) as CreateReport
    // The small blobs come back from the cache or from the killed run's out.tar.partial.
    assert.ok(j.bytesCached + j.bytesResumed > 1_000_000, `bytesCached ${j.bytesCached}, bytesResumed ${j.bytesResumed}`)
    assert.ok(j.bytesPulled >= BIG && j.bytesPulled < BIG + 1_000_000, `bytesPulled ${j.bytesPulled}`)
    assert.deepEqual(await tmpFiles(), [], 'stale temp files were not cleaned')
    assert.ok(!existsSync(path.join(dir, 'out.tar.partial')), 'the stale .partial was not removed')
    await assertCacheSound()
    await readArchive([path.join(dir, 'out.tar')], {trustedKeys: [], allowUnsigned: true})
    console.log(`  rerun after kill mid-pull: pulled ${j.bytesPulled} B, cached ${j.bytesCached} B`)
  })

  it('without a cache: killed mid-pull, the rerun resumes from out.partial (re-hashed), pulls only the rest, and the archive verifies', async () => {
    const bigRe = /\/interrupt\/big\/blobs\//
    src.rules = [(r) => (bigRe.test(r.path) && r.method === 'GET' ? {kind: 'stall', afterBytes: 8 * 1024 * 1024} : undefined)]
    src.log.length = 0
    const journal = path.join(dir, 'nc.tar.partial.journal')
    const c = start(['create', '--unsigned', '-o', 'nc.tar'], {}, true)
    // wait until the big layer is stalled and the small blobs are journaled as written (more than
    // 1 MB of them besides the smallest, which is damaged below)
    const journaledBeyondSmallest = async (): Promise<number> => {
      const sizes = (await readFile(journal, 'utf8')).trim().split('\n').slice(1).map((l) => Number(l.split(' ')[1]))
      return sizes.length < 2 ? 0 : sizes.reduce((a, b) => a + b, 0) - Math.min(...sizes)
    }
    await until(async () => src.log.some((l) => l.fault === 'stall') && existsSync(journal) && (await journaledBeyondSmallest()) > 1_000_000)
    c.kill('SIGKILL')
    await c.out
    assert.ok(!existsSync(path.join(dir, 'nc.tar')), 'a killed run left a file under the final name')
    assert.ok(existsSync(path.join(dir, 'nc.tar.partial')))
    // A byte flipped in a journaled blob (disk trouble, a meddler) must not be reused.
    // Flip the smallest journaled blob: which blobs finish first varies from run to run, and
    // flipping the ~1 MB one would leave too little to resume for the check below to mean anything.
    const lines = (await readFile(journal, 'utf8')).trim().split('\n').slice(1).map((l) => l.split(' '))
    lines.sort((a, b) => Number(a[1]) - Number(b[1]))
    const [flipDigest, , flipOffset] = lines[0]
    const fh = await open(path.join(dir, 'nc.tar.partial'), 'r+')
    const one = Buffer.alloc(1)
    await fh.read(one, 0, 1, Number(flipOffset))
    one[0] ^= 0xff
    await fh.write(one, 0, 1, Number(flipOffset))
    await fh.close()

    src.rules = []
    src.log.length = 0
    const res = await start(['create', '--unsigned', '-o', 'nc.tar', '--json'], {}, true).out
    assert.equal(res.status, 0, res.stderr)
    const j = JSON.parse(res.stdout) as CreateReport
    assert.equal(j.bytesCached, 0)
    assert.ok(j.bytesResumed > 1_000_000, `bytesResumed ${j.bytesResumed}`)
    assert.ok(j.bytesPulled >= BIG && j.bytesPulled < BIG + 1_000_000, `bytesPulled ${j.bytesPulled}`)
    assert.ok(src.log.some((l) => l.path.endsWith(`/blobs/${flipDigest}`)), 'the damaged blob was not pulled again')
    assert.ok(!existsSync(path.join(dir, 'nc.tar.partial')) && !existsSync(journal), 'partial or journal left behind')
    await readArchive([path.join(dir, 'nc.tar')], {trustedKeys: [], allowUnsigned: true})
    console.log(`  no-cache rerun after kill mid-pull: pulled ${j.bytesPulled} B, resumed ${j.bytesResumed} B`)
  })

  it('without a cache, split into many parts: a killed run resumes across its parts', async () => {
    const bigRe = /\/interrupt\/big\/blobs\//
    src.rules = [(r) => (bigRe.test(r.path) && r.method === 'GET' ? {kind: 'stall', afterBytes: 6 * 1024 * 1024} : undefined)]
    const journal = path.join(dir, 'sp.tar.partial.journal')
    // 1 MiB parts: ~30 files, more than airlock keeps open at once
    const c = start(['create', '--unsigned', '-o', 'sp.tar', '--split', '1M'], {}, true)
    await until(async () => src.log.some((l) => l.fault === 'stall') && existsSync(journal) && (await readFile(journal, 'utf8')).split('\n').length >= 4)
    c.kill('SIGKILL')
    await c.out
    assert.ok((await readdir(dir)).some((n) => /^sp\.tar\.\d{3}\.partial$/.test(n)))
    src.rules = []
    const res = await start(['create', '--unsigned', '-o', 'sp.tar', '--split', '1M', '--json'], {}, true).out
    assert.equal(res.status, 0, res.stderr)
    const j = JSON.parse(res.stdout) as CreateReport
    assert.ok(j.bytesResumed > 1_000_000, `bytesResumed ${j.bytesResumed}`)
    assert.ok(j.files.length > 16, `${j.files.length} parts`)
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('sp.tar') && n.endsWith('.partial')), [])
    await readArchive(j.files, {trustedKeys: [], allowUnsigned: true})
  })

  it('without a cache: a rerun with another layout (one more image) moves the finished blobs over; a running create is not disturbed', async () => {
    const bigRe = /\/interrupt\/big\/blobs\//
    src.rules = [(r) => (bigRe.test(r.path) && r.method === 'GET' ? {kind: 'stall', afterBytes: 4 * 1024 * 1024} : undefined)]
    const journal = path.join(dir, 'mv.tar.partial.journal')
    const c = start(['create', '--unsigned', '-o', 'mv.tar'], {}, true)
    await until(async () => src.log.some((l) => l.fault === 'stall') && existsSync(journal) && (await readFile(journal, 'utf8')).split('\n').length >= 4)
    // A second create onto the same output while the first one runs: refused, nothing touched.
    const busy = await start(['create', '--unsigned', '-o', 'mv.tar', '--json'], {}, true).out
    assert.equal(busy.status, 2, busy.stdout + busy.stderr)
    assert.equal((JSON.parse(busy.stdout) as {error: {code: string; message: string; details: string[]}}).error.code, 'create.busy')
    c.kill('SIGKILL')
    await c.out
    src.rules = []
    await writeFile(path.join(dir, 'more.yaml'), `apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: intr, version: 1.0.0}\nplatforms: [linux/amd64]\nimages:\n  - ${src.host}/testbed/app-a:1\n  - ${src.host}/testbed/app-c:1\n  - ${src.host}/interrupt/big:1\n`)
    const res = await start(['create', 'more.yaml', '--unsigned', '-o', 'mv.tar', '--json'], {}, true).out
    assert.equal(res.status, 0, res.stderr)
    const j = JSON.parse(res.stdout) as CreateReport
    assert.ok(j.bytesResumed > 1_000_000, `bytesResumed ${j.bytesResumed}`)
    assert.ok(!existsSync(path.join(dir, 'mv.tar.previous.partial')), 'the moved-from partial was left behind')
    const v = await readArchive([path.join(dir, 'mv.tar')], {trustedKeys: [], allowUnsigned: true})
    assert.equal(v.images.length, 3)
  })

  it('killed mid-archive write: no file under the final name (or a complete one); the rerun pulls nothing', async () => {
    src.rules = []
    const out = path.join(dir, 'write.tar')
    let caught = false
    for (let attempt = 0; attempt < 3 && !caught; attempt++) {
      const c = start(['create', '--unsigned', '-o', 'write.tar'])
      const w = watch(dir, (_e, f) => {
        if (f === 'write.tar.partial') c.kill('SIGKILL')
      })
      const res = await c.out
      w.close()
      caught = res.status === null
      if (caught) {
        // a killed write leaves at most the .partial, never the final name
        assert.ok(!existsSync(out), 'a killed run left a file under the final archive name')
      } else {
        await readArchive([out], {trustedKeys: [], allowUnsigned: true}) // finished before the kill: complete
        await rm(out)
      }
    }
    assert.ok(caught, 'could not kill the writer mid-write in 3 attempts')
    await assertCacheSound()
    const r = start(['create', '--unsigned', '-o', 'write.tar', '--json'])
    const res = await r.out
    assert.equal(res.status, 0, res.stderr)
    assert.equal((JSON.parse(res.stdout) as CreateReport).bytesPulled, 0)
    assert.ok(!existsSync(`${out}.partial`))
    await readArchive([out], {trustedKeys: [], allowUnsigned: true})
  })

  it('killed install --to registry: nothing visible; the rerun completes and skips blobs already there', async () => {
    const archive = path.join(dir, 'out.tar')
    const dst = await FaultProxy.start(tb.registries.target)
    try {
      const prefix = `interrupt${Date.now()}`
      // the big blob's upload reaches the registry, but its answer never comes back
      dst.rules = [times(1, /\/blobs\/uploads\//, {kind: 'stall', afterBytes: 0}, 'PUT')]
      const args = ['install', archive, '--allow-unsigned', '--to', `registry://${dst.host}/${prefix}`, '--state-file', path.join(dir, 'state.json')]
      const c = start(args)
      await until(() => dst.log.some((l) => l.fault === 'stall'))
      await new Promise((r) => setTimeout(r, 300))
      c.kill('SIGKILL')
      await c.out
      const tc = new RegistryClient({host: tb.registries.target})
      try {
        assert.equal(await tc.headManifest(`${prefix}/testbed/app-a`, '1'), undefined, 'a killed install made an image visible')
      } finally {
        tc.close()
      }
      const uploadsBefore = dst.count('POST', /\/blobs\/uploads\/$/)
      dst.rules = []
      const r = start([...args, '--json'])
      const res = await r.out
      assert.equal(res.status, 0, res.stderr)
      assert.equal((JSON.parse(res.stdout) as {images: unknown[]}).images.length, 2)
      const uploadsRerun = dst.count('POST', /\/blobs\/uploads\/$/) - uploadsBefore
      const blobs = (JSON.parse(res.stdout) as {blobs: number}).blobs
      assert.ok(uploadsRerun < blobs, `rerun uploaded ${uploadsRerun} of ${blobs} blobs`)
      console.log(`  install rerun after kill: ${uploadsRerun} uploads for ${blobs} blobs (${uploadsBefore} before the kill)`)
    } finally {
      await dst.close()
    }
  })
})
