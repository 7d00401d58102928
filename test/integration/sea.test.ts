/**
 * The single executable (scripts/build-sea.mjs, `npm run package`): built once for this file, then
 * run where no node can be run: in a mount namespace with /dev/null bound over the node binary and
 * every `node` on PATH (as root; otherwise with a PATH that has no node). It must do what the
 * normal CLI does: the same help, verify (exit 0, a tampered archive exit 3), the same files
 * installed into an oci: directory, validate with the schema it carries, and
 * `create --with-installer` media that hold the executable itself.
 */
import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, realpathSync} from 'node:fs'
import {mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {generateKeyPair, loadPrivateKey} from '../../src/sign/keys.js'
import {randomLayer, syntheticArchive} from '../helpers/archive.js'
import {ROOT as root, runCli} from '../helpers/cli.js'
import {buildImage, pushImage} from '../helpers/images.js'
import {testbed} from '../helpers/testbed.js'

let dir: string
let exe: string
let buildMs: number
let archive: string
let tampered: string
let fingerprint: string
/** Files bound over with /dev/null in the namespace, or undefined: no namespace (not root). */
let masks: string[] | undefined
/** TMPDIR of every run: the executable writes its hashing threads' scripts there, and removes them. */
let tmp: string

/** Every `node` a command could run: this one, and each on PATH (real paths, once each). */
function nodeBinaries(): string[] {
  const found = [process.execPath, ...(process.env.PATH ?? '').split(':').filter(Boolean).map((d) => path.join(d, 'node'))]
  return [...new Set(found.filter((f) => existsSync(f)).map((f) => realpathSync(f)))]
}

/** Whether `unshare -m` and a bind mount work here (root, and a kernel and container that allow it). */
function namespaceWorks(): boolean {
  if (process.getuid?.() !== 0) return false
  return spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind /dev/null /dev/null'], {stdio: 'ignore'}).status === 0
}

// In the namespace: mask each file, prove that node no longer runs, then run the command.
const MASKED = [
  'while [ "$1" != -- ]; do mount --bind /dev/null "$1"; shift; done; shift',
  'if node --version >/dev/null 2>&1 || "$NODE_BINARY" --version >/dev/null 2>&1; then echo "node still runs" >&2; exit 99; fi',
  'exec "$@"',
].join('\n')

/** Run the single executable (or a shell line, `sh -c`) where node cannot run. */
function runNoNode(args: string[], opts: {cwd?: string; shell?: string; env?: Record<string, string>} = {}) {
  const command = opts.shell === undefined ? [exe, ...args] : ['/bin/sh', '-c', opts.shell]
  const env = {PATH: masks ? process.env.PATH! : path.join(dir, 'path'), HOME: dir, TMPDIR: tmp, NODE_BINARY: process.execPath, ...opts.env}
  const r = masks
    ? spawnSync('unshare', ['-m', 'sh', '-c', MASKED, 'masked', ...masks, '--', ...command], {cwd: opts.cwd ?? dir, env, encoding: 'utf8', timeout: 90_000})
    : spawnSync(command[0], command.slice(1), {cwd: opts.cwd ?? dir, env, encoding: 'utf8', timeout: 90_000})
  assert.notEqual(r.status, 99, r.stderr)
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

/** Relative path -> content of every file under `top`. */
async function tree(top: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  for (const entry of await readdir(top, {recursive: true, withFileTypes: true})) {
    if (!entry.isFile()) continue
    const full = path.join(entry.parentPath, entry.name)
    files.set(path.relative(top, full), await readFile(full))
  }
  return files
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-sea-test-'))
  tmp = path.join(dir, 'tmp')
  await mkdir(tmp)
  const started = Date.now()
  const out = execFileSync(process.execPath, [path.join(root, 'scripts', 'build-sea.mjs'), path.join(dir, 'out')], {cwd: root, encoding: 'utf8', timeout: 120_000})
  buildMs = Date.now() - started
  const [file] = await readdir(path.join(dir, 'out'))
  exe = path.join(dir, 'out', file)
  process.stdout.write(`# single executable ${file} built in ${buildMs} ms: ${out.split('\n')[1]?.trim()}\n`)

  masks = namespaceWorks() ? nodeBinaries() : undefined
  if (!masks) {
    // Not root: a PATH with chmod only (INSTALL.txt's first step), and no node.
    await mkdir(path.join(dir, 'path'))
    await symlink(['/usr/bin/chmod', '/bin/chmod'].find((p) => existsSync(p))!, path.join(dir, 'path', 'chmod'))
    process.stdout.write('# no mount namespace here (not root): node is only left off PATH\n')
  }

  const kp = await generateKeyPair({name: 'Sea Test', email: 'sea@airlock.invalid'})
  fingerprint = kp.fingerprint
  await writeFile(path.join(dir, 'k.asc'), kp.privateKeyArmored)
  await writeFile(path.join(dir, 'k.pub.asc'), kp.publicKeyArmored)
  archive = path.join(dir, 'sea.tar')
  // Over MIN_THREADED_HASH, so that verify hashes on worker threads too.
  await syntheticArchive(path.join(dir, 'blobs'), archive, [
    {name: 'registry.example/sea/one:1', layers: [randomLayer(6_000_000), randomLayer(3_000_000), randomLayer(70_000)]},
    {name: 'registry.example/sea/two:2', layers: [randomLayer(2_000_000)]},
  ], {key: await loadPrivateKey(path.join(dir, 'k.asc'))})
  tampered = path.join(dir, 'tampered.tar')
  const buf = await readFile(archive)
  buf[buf.length - 5000] ^= 0xff
  await writeFile(tampered, buf)
})

after(async () => {
  if (dir) await rm(dir, {recursive: true, force: true})
})

describe('single executable', () => {
  it('is one file built in well under a minute, with the help of the normal CLI', () => {
    assert.ok(buildMs < 60_000, `the build took ${buildMs} ms`)
    assert.match(path.basename(exe), new RegExp(`^airlock-\\d+\\.\\d+\\.\\d+-${process.platform}-${process.arch}$`))
    for (const args of [['--help'], ['verify', '--help'], ['key', 'generate', '--help'], ['--version']]) {
      const sea = runNoNode(args)
      const cli = runCli(args)
      assert.equal(sea.code, 0, sea.stderr)
      assert.equal(sea.stdout, cli.stdout, `${args.join(' ')}: not the normal CLI's output`)
      assert.equal(sea.stderr, '', 'no warning from the runtime')
    }
  })

  it('verifies a bundle (exit 0) and refuses a tampered one (exit 3), through the fast path and through oclif', async () => {
    for (const env of [{}, {AIRLOCK_NO_FAST: '1'}] as Record<string, string>[]) {
      const ok = runNoNode(['verify', archive, '--key', path.join(dir, 'k.pub.asc'), '--json', '--hash-threads', '2'], {env})
      assert.equal(ok.code, 0, ok.stderr)
      const r = JSON.parse(ok.stdout) as {ok: boolean; signer: {fingerprint: string}; images: unknown[]}
      assert.equal(r.ok, true)
      assert.equal(r.signer.fingerprint, fingerprint)
      assert.equal(r.images.length, 2)
      const bad = runNoNode(['verify', tampered, '--key', path.join(dir, 'k.pub.asc')], {env})
      assert.equal(bad.code, 3, bad.stdout + bad.stderr)
      assert.match(bad.stderr, /^error: /m)
    }
    assert.deepEqual(await readdir(tmp), [], 'the hashing threads\' scripts are removed at exit')
  })

  it('removes the thread scripts left by a run killed by a signal, not those of a running one', async () => {
    const dead = spawnSync('true').pid
    const left = path.join(tmp, `airlock-sea.${dead}.0badc0de`)
    const running = path.join(tmp, `airlock-sea.${process.pid}.0badcafe`)
    for (const d of [left, running]) {
      await mkdir(d)
      await writeFile(path.join(d, 'range-hash-thread.cjs'), '')
    }
    const ok = runNoNode(['verify', archive, '--key', path.join(dir, 'k.pub.asc'), '--hash-threads', '2'])
    assert.equal(ok.code, 0, ok.stderr)
    assert.deepEqual(await readdir(tmp), [path.basename(running)])
    await rm(running, {recursive: true})
  })

  it('installs into an oci: directory exactly the files the normal CLI installs', async () => {
    const sea = runNoNode(['install', archive, '--key', path.join(dir, 'k.pub.asc'), '--to', `oci:${path.join(dir, 'oci-sea')}`, '--state-file', path.join(dir, 'state-sea.json')])
    assert.equal(sea.code, 0, sea.stderr)
    const cli = runCli(['install', archive, '--key', path.join(dir, 'k.pub.asc'), '--to', `oci:${path.join(dir, 'oci-cli')}`, '--state-file', path.join(dir, 'state-cli.json')])
    assert.equal(cli.code, 0, cli.stderr)
    const [a, b] = [await tree(path.join(dir, 'oci-sea')), await tree(path.join(dir, 'oci-cli'))]
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort())
    assert.ok(a.size >= 8, `only ${a.size} files installed`)
    for (const [name, bytes] of a) assert.ok(bytes.equals(b.get(name)!), `${name} differs`)
    const bad = runNoNode(['install', tampered, '--key', path.join(dir, 'k.pub.asc'), '--to', `oci:${path.join(dir, 'oci-bad')}`, '--state-file', path.join(dir, 'state-sea.json')])
    assert.equal(bad.code, 3, bad.stderr)
    assert.deepEqual(await readdir(tmp), [])
  })

  it('validates a bundle.yaml against the schema it carries', async () => {
    const work = path.join(dir, 'validate')
    await mkdir(work)
    await writeFile(path.join(work, 'good.yaml'), 'apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: sea, version: 1.0.0}\nimages:\n  - registry.example/sea/one:1\n')
    await writeFile(path.join(work, 'bad.yaml'), 'apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: sea, version: 1.0.0}\nimages:\n  - registry.example/sea/one:1\nimagez: []\n')
    const good = runNoNode(['validate', 'good.yaml'], {cwd: work})
    assert.equal(good.code, 0, good.stdout + good.stderr)
    const bad = runNoNode(['validate', 'bad.yaml', '--json'], {cwd: work})
    const cli = runCli(['validate', 'bad.yaml', '--json'], {cwd: work})
    assert.equal(bad.code, 2, bad.stderr)
    assert.equal(bad.stdout, cli.stdout)
    assert.match(bad.stdout, /imagez/)
  })
})

describe('create --with-installer from the single executable', () => {
  it('puts the executable itself on the media, and INSTALL.txt\'s steps run without node, up to an install into docker', async () => {
    const tb = await testbed()
    const work = path.join(dir, 'media-work')
    await mkdir(work)
    // An image of this run's own (a name no other test uses), pushed to the testbed registry.
    const ref = `${tb.registries.open}/sea/media-${process.pid}:1`
    const image = await buildImage({layers: [{files: {'/data/blob.bin': randomLayer(3_000_000)}}]}, path.join(work, 'layout'))
    await pushImage(image.dir, ref)
    await writeFile(path.join(work, 'bundle.yaml'), [
      'apiVersion: airlock/v1', 'kind: Bundle', 'metadata: {name: sea-media, version: 1.0.0}', 'images:',
      `  - ${ref}`, 'registries:', `  ${tb.registries.open}: {insecure: true}`, '',
    ].join('\n'))
    const media = path.join(dir, 'media')
    const r = runNoNode(['create', path.join(work, 'bundle.yaml'), '--sign-key', path.join(dir, 'k.asc'), '-o', path.join(work, 'media.tar'), '--with-installer', media, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const res = JSON.parse(r.stdout) as {media: {installer: string; installerForm: string}}
    assert.deepEqual(res.media, {...res.media, installer: 'airlock', installerForm: 'executable'})
    assert.deepEqual((await readdir(media)).sort(), ['FINGERPRINT.txt', 'INSTALL.txt', 'SHA256SUMS', 'airlock', 'airlock.pub.asc', 'media.tar'])
    assert.ok((await readFile(path.join(media, 'airlock'))).equals(await readFile(exe)), 'the media hold this executable')
    const text = await readFile(path.join(media, 'INSTALL.txt'), 'utf8')
    assert.match(text, /airlock as one executable file, Node v\d+.*needs no Node, only glibc >= 2\.\d+/)

    // As after a copy that lost the execute bit: steps 1 and 2 taken literally.
    execFileSync('chmod', ['0644', path.join(media, 'airlock')])
    for (const n of [1, 2]) {
      const step = new RegExp(`^  ${n}\\. (.+)$`, 'm').exec(text)![1]
      const s = runNoNode([], {cwd: media, shell: step})
      assert.equal(s.code, 0, `${step}: ${s.stderr}`)
      if (n === 2) assert.match(s.stdout, new RegExp(`signed by ${fingerprint}`))
    }
    // Step 3 into docker: the hashing thread of a docker install runs from the executable's assets.
    const docker = {DOCKER_HOST: tb.dockerHost, DOCKER_CONFIG: tb.dockerConfig}
    try {
      const step = /^ {5}(\.\/airlock install .* --to docker)$/m.exec(text)![1]
      const s = runNoNode([], {cwd: media, shell: `${step} --hash-threads 2 --state-file ${path.join(dir, 'state-media.json')}`, env: docker})
      assert.equal(s.code, 0, `${step}: ${s.stderr}`)
      const id = execFileSync('docker', ['image', 'inspect', '--format', '{{.Id}}', ref], {env: {...process.env, ...docker}, encoding: 'utf8'}).trim()
      assert.equal(id, image.configDigest)
    } finally {
      spawnSync('docker', ['rmi', '-f', ref], {env: {...process.env, ...docker}})
    }
  })
})
