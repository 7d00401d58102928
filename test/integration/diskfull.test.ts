/**
 * Disk full and read-only output: a small tmpfs (ENOSPC) and a read-only tmpfs (EROFS) as the
 * archive directory and as the blob cache. Expect one clear AirlockError (exit 1, stable code),
 * and no `.partial` or cache temp file left behind.
 */
import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdir, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {Journal} from '../../src/create/journal.js'
import {Testbed, testbed} from '../helpers/testbed.js'
import {runCli} from '../helpers/cli.js'

let tb: Testbed
let dir: string
const mounts: string[] = []
let canMount = true

function airlock(args: string[]) {
  return runCli(args, {cwd: dir, env: {...process.env, AIRLOCK_CACHE_DIR: path.join(dir, 'cache')}, timeout: 120_000})
}

async function tmpfs(name: string, opts: string): Promise<string> {
  const d = path.join(dir, name)
  await mkdir(d, {recursive: true})
  execFileSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', d], {stdio: 'pipe'})
  mounts.push(d)
  return d
}

async function listAll(d: string): Promise<string[]> {
  return (await readdir(d, {recursive: true})).map(String)
}

describe('disk full / read-only output', {timeout: 180_000}, () => {
  before(async () => {
    tb = await testbed()
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-diskfull-'))
    await writeFile(path.join(dir, 'bundle.yaml'), `apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: full, version: 1.0.0}\nplatforms: [linux/amd64]\nimages:\n  - ${tb.images['app-a'].ref}\n`)
    try {
      await tmpfs('probe', 'size=64k')
    } catch {
      canMount = false
    }
  })
  after(async () => {
    for (const m of mounts.reverse()) spawnSync('umount', ['-l', m])
    await rm(dir, {recursive: true, force: true})
  })

  it('create -o onto a full file system: "no space left", no .partial', async (t) => {
    if (!canMount) return t.skip('cannot mount a tmpfs here (not root?)')
    const small = await tmpfs('small', 'size=512k') // the archive is ~1.1 MB
    const r = airlock(['create', '--unsigned', '-o', path.join(small, 'out.tar'), '--json'])
    assert.equal(r.code, 1, r.stdout + r.stderr)
    const e = (JSON.parse(r.stdout) as {error: {code: string; message: string; details: string[]}}).error
    assert.equal(e.code, 'fs.no_space')
    assert.match(e.message, /cannot write archive .*out\.tar: no space left on the device \(ENOSPC\)/)
    assert.deepEqual(await listAll(small), [])
    // human output: one line, no stack
    const h = airlock(['create', '--unsigned', '-o', path.join(small, 'out.tar')])
    assert.equal(h.code, 1)
    assert.match(h.stderr, /^error: cannot write archive .*no space left/m)
    assert.doesNotMatch(h.stderr, /\n\s+at /)
  })

  it('the resume journal is not left behind when even its first line does not fit', async (t) => {
    if (!canMount) return t.skip('cannot mount a tmpfs here (not root?)')
    const full = await tmpfs('full', 'size=64k')
    // fill the file system to the last byte (a new, empty file can still be created)
    await writeFile(path.join(full, 'filler'), Buffer.alloc(64 * 1024)).catch(() => {})
    await assert.rejects(Journal.start(path.join(full, 'out.tar'), 1_000_000), (e: NodeJS.ErrnoException) => e.code === 'ENOSPC')
    assert.deepEqual(await listAll(full), ['filler'])
  })

  it('a full blob cache: clear error, no temp file left, no corrupt entry', async (t) => {
    if (!canMount) return t.skip('cannot mount a tmpfs here (not root?)')
    const cache = await tmpfs('cache-small', 'size=256k') // the base layer is ~1 MB
    const r = airlock(['create', '--unsigned', '-o', path.join(dir, 'x.tar'), '--cache-dir', cache, '--json'])
    assert.equal(r.code, 1, r.stdout + r.stderr)
    const j = (JSON.parse(r.stdout) as {error: {code: string; message: string; details: string[]}}).error
    assert.ok(j.code === 'create.pull_failed' || j.code === 'fs.no_space', JSON.stringify(j))
    assert.match(`${j.message}\n${j.details.join('\n')}`, /cannot write blob cache .*no space left/)
    assert.deepEqual(await readdir(path.join(cache, 'tmp')), [])
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith('x.tar')), [])
  })

  it('create -o into a read-only file system: clear error', async (t) => {
    if (!canMount) return t.skip('cannot mount a tmpfs here (not root?)')
    const ro = await tmpfs('ro', 'ro,size=64k')
    const r = airlock(['create', '--unsigned', '-o', path.join(ro, 'out.tar'), '--json'])
    assert.equal(r.code, 1, r.stdout + r.stderr)
    const e = (JSON.parse(r.stdout) as {error: {code: string; message: string; details: string[]}}).error
    assert.equal(e.code, 'fs.read_only')
    assert.match(e.message, /cannot write archive .*read-only file system \(EROFS\)/)
  })
})
