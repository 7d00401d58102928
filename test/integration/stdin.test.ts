/**
 * `-` as the archive: verify, install and inspect read standard input (a pipe, a socket, a
 * redirected file), once, front to back. A truncated stream is refused with nothing written.
 */
import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {dataOffset, splitTar} from '../helpers/archive.js'
import {BIN, CliResult, runCli} from '../helpers/cli.js'
import {Testbed, testbed} from '../helpers/testbed.js'

let tb: Testbed
let dir: string
let archive: string
let good: Buffer
let pub: string

function airlock(args: string[]): CliResult {
  return runCli(args, {cwd: dir, env: tb.processEnv})
}

/** `airlock ARGS` with `input` written to its standard input (a socket pair, as node's spawn makes it). */
function airlockFed(args: string[], input: Buffer, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {cwd: dir, env: {...tb.processEnv, ...env}, stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    // A reader that stops early (inspect, a refused archive) closes its end: not an error here.
    child.stdin.on('error', () => {})
    child.stdin.end(input)
    child.on('error', reject)
    child.on('close', (code) => resolve({code, stdout, stderr}))
  })
}

/** `sh -c SCRIPT` with $A the CLI: real shell pipes and redirections. */
function shell(script: string): CliResult {
  const r = spawnSync('sh', ['-c', script], {cwd: dir, env: {...tb.processEnv, A: `${process.execPath} ${BIN}`}, encoding: 'utf8', timeout: 300_000})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

/** Every file under `root` (relative path → content), for comparing two OCI layouts. */
async function tree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const e of await readdir(root, {recursive: true, withFileTypes: true})) {
    if (!e.isFile()) continue
    const p = path.join(e.parentPath, e.name)
    out.set(path.relative(root, p), (await readFile(p)).toString('base64'))
  }
  return out
}

describe('standard input as the archive (-)', {timeout: 600_000}, () => {
  before(async () => {
    tb = await testbed()
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-stdin-test-'))
    const k = airlock(['key', 'generate', '--name', 'Stdin Test', '--out', path.join(dir, 'release')])
    assert.equal(k.code, 0, k.stderr)
    pub = path.join(dir, 'release.pub.asc')
    await writeFile(path.join(dir, 'bundle.yaml'), `apiVersion: airlock/v1
kind: Bundle
metadata: {name: stdin-test, version: 1.0.0}
images:
  - 127.0.0.1:5301/testbed/app-a:1
  - 127.0.0.1:5301/testbed/app-b:1
`)
    archive = path.join(dir, 'bundle.tar')
    const r = airlock(['create', 'bundle.yaml', '--sign-key', 'release.key.asc', '-o', archive])
    assert.equal(r.code, 0, r.stderr)
    good = await readFile(archive)
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('cat bundle.tar | airlock install - --to oci:DIR gives the same layout as the file path', async () => {
    const piped = shell(`cat bundle.tar | $A install - --key release.pub.asc --to oci:${dir}/oci-stdin`)
    assert.equal(piped.code, 0, piped.stderr)
    assert.match(piped.stdout, /installed: stdin-test 1\.0\.0/)
    const fromFile = airlock(['install', archive, '--key', pub, '--to', `oci:${dir}/oci-file`])
    assert.equal(fromFile.code, 0, fromFile.stderr)
    const [a, b] = [await tree(path.join(dir, 'oci-stdin')), await tree(path.join(dir, 'oci-file'))]
    assert.ok(a.size > 3)
    assert.deepEqual(a, b)
  })

  it('verify -: a good bundle exits 0 (pipe, socket, redirected file; fast path and full CLI), a tampered one 3', async () => {
    for (const env of [{}, {AIRLOCK_NO_FAST: '1'}]) {
      const r = await airlockFed(['verify', '-', '--key', pub], good, env)
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /^OK -: stdin-test 1\.0\.0, 2 images/)
      const j = await airlockFed(['verify', '-', '--key', pub, '--json'], good, env)
      assert.equal(j.code, 0, j.stderr)
      assert.equal((JSON.parse(j.stdout) as {ok: boolean; archive: string}).archive, '-')
    }
    assert.equal(shell('cat bundle.tar | $A verify - --key release.pub.asc').code, 0)
    assert.equal(shell('$A verify - --key release.pub.asc < bundle.tar').code, 0)
    // One byte changed inside the first blob.
    const blob = splitTar(good).find((e) => e.name.startsWith('blobs/sha256/'))!
    const bad = Buffer.from(good)
    bad[dataOffset(good, blob.name) + 10] ^= 0xff
    for (const env of [{}, {AIRLOCK_NO_FAST: '1'}]) {
      const r = await airlockFed(['verify', '-', '--key', pub], bad, env)
      assert.equal(r.code, 3, r.stderr)
      assert.match(r.stderr, /^error: blobs\/sha256\/[0-9a-f]{64}: content does not match its signed sha256/)
    }
  })

  it('a truncated standard input is refused with a clear message, and nothing is written to the OCI directory', async () => {
    const blob = splitTar(good).find((e) => e.name.startsWith('blobs/sha256/') && e.data.length > 4096)!
    const cuts = {
      'inside airlock.json': dataOffset(good, 'airlock.json') + 100,
      'inside the signature': dataOffset(good, 'checksums.sha256.asc') + 200,
      'inside index.json': dataOffset(good, 'index.json') + 10,
      'inside a blob': dataOffset(good, blob.name) + 1000,
      'before the end-of-archive marker': good.length - 1024,
      'one byte before the end': good.length - 1,
    }
    const before = await readdir(dir)
    for (const [where, n] of Object.entries(cuts)) {
      const target = path.join(dir, `oci-cut-${n}`)
      const r = await airlockFed(['install', '-', '--key', pub, '--to', `oci:${target}`], good.subarray(0, n))
      assert.equal(r.code, 3, `${where}: ${r.stderr}`)
      assert.match(r.stderr, /^error: .*truncated.*\(standard input ended before the archive did\)\n$/, where)
      assert.equal(existsSync(target), false, `${where}: ${target} was created`)
      assert.deepEqual(await readdir(dir), before, `${where}: something was left next to the target`)
      const v = await airlockFed(['verify', '-', '--key', pub], good.subarray(0, n))
      assert.equal(v.code, 3, `${where}: ${v.stderr}`)
    }
    // An existing layout is left exactly as it was.
    const existing = path.join(dir, 'oci-file')
    const was = await tree(existing)
    const r = shell(`head -c ${cuts['inside a blob']} bundle.tar | $A install - --key release.pub.asc --to oci:${existing} --allow-downgrade`)
    assert.equal(r.code, 3, r.stderr)
    assert.deepEqual(await tree(existing), was)
  })

  it('a truncated standard input leaves no tag in a registry target', async () => {
    const blob = splitTar(good).filter((e) => e.name.startsWith('blobs/sha256/')).at(-1)!
    const to = `registry://${tb.registries.target}/stdin-truncated`
    const r = await airlockFed(['install', '-', '--key', pub, '--to', to], good.subarray(0, dataOffset(good, blob.name) + 10))
    assert.equal(r.code, 3, r.stderr)
    assert.match(r.stderr, /truncated/)
    for (const repo of ['stdin-truncated/testbed/app-a', 'stdin-truncated/testbed/app-b']) {
      const res = await fetch(`http://${tb.registries.target}/v2/${repo}/tags/list`)
      const tags = res.ok ? ((await res.json()) as {tags: string[] | null}).tags : null
      assert.deepEqual(tags ?? [], [], repo)
    }
  })

  it('inspect - reads the metadata entries only and stops', async () => {
    // Only the head is there: inspect needs no more.
    const head = good.subarray(0, dataOffset(good, 'oci-layout'))
    const r = await airlockFed(['inspect', '-', '--key', pub, '--json'], head)
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout) as {archive: string; signature: {status: string}; images: unknown[]; parts: {file: string; bytes: number}[]}
    assert.equal(j.archive, '-')
    assert.equal(j.signature.status, 'verified')
    assert.equal(j.images.length, 2)
    assert.equal(j.parts[0].file, '-')
    // A long stream is not read to its end: the writer is cut off (SIGPIPE), inspect succeeds.
    const big = shell('{ cat bundle.tar; head -c 200000000 /dev/zero; } | $A inspect - ; echo "rc=$?"')
    assert.match(big.stdout, /stdin-test 1\.0\.0[\s\S]*rc=0\n$/)
  })

  it('a split archive piped as one stream (cat NAME.0* | airlock verify -)', async () => {
    const r = airlock(['create', 'bundle.yaml', '--sign-key', 'release.key.asc', '-o', 'split.tar', '--split', '400K'])
    assert.equal(r.code, 0, r.stderr)
    assert.ok((await readdir(dir)).includes('split.tar.002'))
    const v = shell('cat split.tar.0* | $A verify - --key release.pub.asc')
    assert.equal(v.code, 0, v.stderr)
    const i = shell(`cat split.tar.0* | $A install - --key release.pub.asc --to oci:${dir}/oci-split`)
    assert.equal(i.code, 0, i.stderr)
    assert.match(shell('cat split.tar.0* | $A inspect -').stdout, /\n {2}split into parts of at most 400\.0 KiB, read as one stream from standard input\n/)
  })

  it('refusals: a terminal is not an archive; serve and --base cannot read standard input', async () => {
    const s = await airlockFed(['serve', '-', '--key', pub, '--listen', '127.0.0.1:0'], good)
    assert.equal(s.code, 2, s.stderr)
    assert.match(s.stderr, /give it a file, not standard input/)
    const sign = await airlockFed(['sign', '-', '--sign-key', path.join(dir, 'release.key.asc')], good)
    assert.equal(sign.code, 2, sign.stderr)
    assert.match(sign.stderr, /sign adds the signature in place: give it the archive file/)
    const b = await airlockFed(['install', '-', '--base', '-', '--key', pub, '--to', `oci:${dir}/oci-base`], good)
    assert.equal(b.code, 2, b.stderr)
    assert.match(b.stderr, /cannot both be standard input/)
    // script(1) gives the command a terminal as standard input.
    const hasScript = spawnSync('sh', ['-c', 'command -v script']).status === 0
    if (hasScript) {
      const t = shell(`script -qec "$A verify - --key release.pub.asc" /dev/null < /dev/null`)
      assert.match(t.stdout, /standard input, which is a terminal/)
    }
  })
})
