/**
 * The self-contained installer (`scripts/package.sh`, `npm run package`) and `create --with-installer`:
 * built from local files only, unpacked in a temp dir, and run with a PATH where `node` does not
 * exist (only the tools the steps need: tar and gzip), so verify / inspect must use the shipped runtime.
 */
import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {generateKeyPair, loadPrivateKey} from '../../src/sign/keys.js'
import {randomLayer, syntheticArchive} from '../helpers/archive.js'
import {testbed} from '../helpers/testbed.js'
import {BIN as bin, ROOT as root} from '../helpers/cli.js'

let dir: string
let noNode: string
let fingerprint: string
let archive: string
let built: {file: string; ms: number}

/** A PATH holding only tar and gzip (symlinks), checked to have no `node`. */
async function toolsOnlyPath(at: string): Promise<string> {
  await mkdir(at, {recursive: true})
  for (const tool of ['tar', 'gzip']) {
    const real = ['/usr/bin', '/bin'].map((d) => path.join(d, tool)).find((p) => existsSync(p))
    assert.ok(real, `${tool} not found`)
    await symlink(real, path.join(at, tool))
  }
  const r = spawnSync('/bin/sh', ['-c', 'command -v node'], {env: {PATH: at}, encoding: 'utf8'})
  assert.notEqual(r.status, 0, `node is reachable on ${at}: ${r.stdout}`)
  return at
}

function runNoNode(file: string, args: string[], cwd = dir) {
  const r = spawnSync(file, args, {cwd, env: {PATH: noNode, HOME: dir}, encoding: 'utf8', timeout: 60_000})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-package-test-'))
  noNode = await toolsOnlyPath(path.join(dir, 'path'))
  const kp = await generateKeyPair({name: 'Package Test', email: 'package@airlock.invalid'})
  fingerprint = kp.fingerprint
  await writeFile(path.join(dir, 'k.asc'), kp.privateKeyArmored)
  await writeFile(path.join(dir, 'k.pub.asc'), kp.publicKeyArmored)
  archive = path.join(dir, 'synthetic.tar')
  await syntheticArchive(path.join(dir, 'blobs'), archive, [
    {name: 'registry.example/pkg/one:1', layers: [randomLayer(300_000), randomLayer(70_000)]},
    {name: 'registry.example/pkg/two:2', layers: [randomLayer(50_000)]},
  ], {key: await loadPrivateKey(path.join(dir, 'k.asc'))})

  const started = Date.now()
  const out = execFileSync('bash', [path.join(root, 'scripts', 'package.sh'), path.join(dir, 'out')], {cwd: root, encoding: 'utf8', timeout: 120_000})
  const ms = Date.now() - started
  // Both forms: the tarball (tested here) and the single executable (test/integration/sea.test.ts).
  const files = (await readdir(path.join(dir, 'out'))).sort()
  assert.equal(files.length, 2, out)
  assert.equal(`${files[0]}.tar.gz`, files[1], out)
  built = {file: path.join(dir, 'out', files[1]), ms}
  process.stdout.write(`# installer ${files[1]} and the single executable built in ${ms} ms\n`)
})

after(async () => {
  if (dir) await rm(dir, {recursive: true, force: true})
})

describe('self-contained installer', () => {
  it('is built from local files in under a minute and holds the runtime, the CLI and production modules only', () => {
    assert.ok(built.ms < 60_000, `packaging took ${built.ms} ms`)
    assert.match(path.basename(built.file), new RegExp(`^airlock-\\d+\\.\\d+\\.\\d+-${process.platform}-${process.arch}\\.tar\\.gz$`))
    const list = execFileSync('tar', ['-tzf', built.file], {encoding: 'utf8', maxBuffer: 64 * 1024 * 1024}).split('\n')
    const top = path.basename(built.file, '.tar.gz')
    for (const f of ['airlock', 'bin/node', 'bin/run.js', 'package.json', 'oclif.manifest.json', 'dist/commands/verify.js', 'dist/commands/serve.js', 'node_modules/@oclif/core/package.json', 'node_modules/openpgp/package.json']) {
      assert.ok(list.includes(`${top}/${f}`), `${f} missing`)
    }
    for (const dev of ['typescript', 'tsx', 'oclif', 'esbuild', 'postject']) assert.ok(!list.some((l) => l.startsWith(`${top}/node_modules/${dev}/`)), `dev dependency ${dev} packed`)
  })

  it('runs verify and inspect with no node on PATH', async () => {
    const target = path.join(dir, 'target')
    await mkdir(target)
    execFileSync('tar', ['-xzf', built.file, '-C', target], {env: {PATH: noNode}})
    const launcher = path.join(target, path.basename(built.file, '.tar.gz'), 'airlock')

    const v = runNoNode(launcher, ['verify', archive, '--key', path.join(dir, 'k.pub.asc'), '--json'])
    assert.equal(v.code, 0, v.stderr)
    const vr = JSON.parse(v.stdout) as {ok: boolean; signer: {fingerprint: string}; images: unknown[]}
    assert.equal(vr.ok, true)
    assert.equal(vr.signer.fingerprint, fingerprint)
    assert.equal(vr.images.length, 2)

    const i = runNoNode(launcher, ['inspect', archive, '--key', path.join(dir, 'k.pub.asc'), '--json'])
    assert.equal(i.code, 0, i.stderr)
    assert.equal((JSON.parse(i.stdout) as {signature: {status: string}}).signature.status, 'verified')

    const help = runNoNode(launcher, ['--help'])
    for (const c of ['verify', 'inspect', 'install', 'serve']) assert.match(help.stdout, new RegExp(`\\b${c}\\b`))

    // still a verifier: a flipped byte is refused with exit 3
    const bad = path.join(dir, 'bad.tar')
    const buf = await readFile(archive)
    buf[buf.length - 4096] ^= 0xff
    await writeFile(bad, buf)
    const b = runNoNode(launcher, ['verify', bad, '--key', path.join(dir, 'k.pub.asc')])
    assert.equal(b.code, 3, b.stdout + b.stderr)
  })
})

describe('create --with-installer', () => {
  it('writes media that are complete on their own, and INSTALL.txt\'s commands work without node', async () => {
    const tb = await testbed()
    const work = path.join(dir, 'media-work')
    await mkdir(work)
    await writeFile(path.join(work, 'bundle.yaml'), [
      'apiVersion: airlock/v1', 'kind: Bundle', 'metadata: {name: media, version: 2.0.0}', 'images:',
      `  - ${tb.images['app-a'].ref}`, 'registries:', `  ${tb.registries.open}: {insecure: true}`, '',
    ].join('\n'))
    const media = path.join(dir, 'media')
    const r = spawnSync(process.execPath, [bin, 'create', path.join(work, 'bundle.yaml'), '--sign-key', path.join(dir, 'k.asc'), '-o', path.join(work, 'media.tar'), '--cache-dir', path.join(dir, 'cache'), '--with-installer', media, '--json'], {encoding: 'utf8', timeout: 120_000})
    assert.equal(r.status, 0, r.stderr)
    const res = JSON.parse(r.stdout) as {media: {installer: string; archive: string[]; publicKey: string; fingerprint: string}}
    assert.equal(res.media.fingerprint, fingerprint)
    const files = (await readdir(media)).sort()
    assert.deepEqual(files, ['FINGERPRINT.txt', 'INSTALL.txt', 'SHA256SUMS', res.media.installer, 'airlock.pub.asc', 'media.tar'].sort())
    for (const line of (await readFile(path.join(media, 'SHA256SUMS'), 'utf8')).trim().split('\n')) {
      const [hex, name] = line.split('  ')
      assert.equal(createHash('sha256').update(await readFile(path.join(media, name))).digest('hex'), hex, name)
    }
    const text = await readFile(path.join(media, 'INSTALL.txt'), 'utf8')
    assert.ok(text.includes(fingerprint.replace(/(.{4})/g, '$1 ').trim()), 'grouped fingerprint in INSTALL.txt')
    assert.match(text, /OUT OF BAND/)

    // Copy the media elsewhere (as if on a USB stick) and follow steps 1 and 2 literally.
    const stick = path.join(dir, 'stick')
    await mkdir(stick)
    for (const f of files) await copyFile(path.join(media, f), path.join(stick, f))
    const steps = [1, 2].map((n) => new RegExp(`^  ${n}\\. (.+)$`, 'm').exec(text)![1])
    for (const step of steps) {
      const s = spawnSync('/bin/sh', ['-c', step], {cwd: stick, env: {PATH: noNode, HOME: dir}, encoding: 'utf8', timeout: 60_000})
      assert.equal(s.status, 0, `${step}: ${s.stderr}`)
      if (step.includes(' verify ')) assert.match(s.stdout, new RegExp(`signed by ${fingerprint}`))
    }
  })
})
