/**
 * What people expect of a command-line tool, through the built CLI: "did you mean" for a mistyped
 * command, shell completion, --quiet, NO_COLOR (and no color off a terminal), and a `created`
 * that was never recorded shown as such.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import * as openpgp from 'openpgp'

import {generateKeyPair} from '../../src/sign/keys.js'
import {dataOffset, randomLayer, splitTar, syntheticArchive} from '../helpers/archive.js'
import {BIN, CliResult, runCli} from '../helpers/cli.js'

let dir: string
const f = (name: string) => path.join(dir, name)

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e = {...process.env, ...extra}
  // CI: oclif's color detection turns color off under a CI variable, terminal or not (CI runs set CI=true).
  for (const k of ['AIRLOCK_TRUSTED_KEYS', 'AIRLOCK_CONTENT_TYPE', 'AIRLOCK_NO_FAST', 'NO_COLOR', 'FORCE_COLOR', 'CI']) if (!(k in extra)) delete e[k]
  return e
}

function airlock(args: string[], extra: Record<string, string> = {}): CliResult {
  return runCli(args, {cwd: dir, env: env(extra)})
}

/** `airlock ARGS` with a terminal as its output (script(1)); what the terminal received. */
function onTerminal(args: string[], extra: Record<string, string> = {}): string {
  const cmd = [process.execPath, BIN, ...args].map((a) => `'${a}'`).join(' ')
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], {cwd: dir, env: env(extra), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
  assert.equal(r.status, 0, r.stderr)
  return r.stdout
}

describe('CLI habits', {timeout: 300_000}, () => {
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-habits-'))
    const k = await generateKeyPair({name: 'Habits'})
    await writeFile(f('k.pub.asc'), k.publicKeyArmored)
    const key = await openpgp.readPrivateKey({armoredKey: k.privateKeyArmored})
    const images = [{name: 'habits.test/a:1', layers: [randomLayer(100_000)]}]
    await syntheticArchive(f('blobs'), f('a.tar'), images, {key})
    await syntheticArchive(f('blobs'), f('dated.tar'), images, {key, epoch: 1_700_000_000})
    const bad = await readFile(f('a.tar'))
    const layer = splitTar(bad).find((e) => e.name.startsWith('blobs/sha256/') && e.data.length === 100_000)!
    bad[dataOffset(bad, layer.name) + 50_000] ^= 1
    await writeFile(f('bad.tar'), bad)
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('a mistyped command is refused with the closest one (exit 2), never run', () => {
    const r = airlock(['instal', 'a.tar', '--key', 'k.pub.asc', '--to', `oci:${f('typo')}`])
    assert.equal(r.code, 2)
    assert.equal(r.stderr, 'error: "instal" is not an airlock command (did you mean "install"?); `airlock --help` lists them\n')
    assert.equal(existsSync(f('typo')), false)
    assert.match(airlock(['key', 'generat']).stderr, /did you mean "key generate"\?/)
    assert.match(airlock(['veryfy', 'a.tar']).stderr, /did you mean "verify"\?/)
    const far = airlock(['frobnicate', '--json'])
    assert.equal(far.code, 2)
    const j = JSON.parse(far.stdout) as {error: {code: string; message: string}}
    assert.equal(j.error.code, 'cli.unknown_command')
    assert.doesNotMatch(j.error.message, /did you mean/)
  })

  it('completion bash|zsh prints a script bash and zsh load; another shell is refused', () => {
    const bash = airlock(['completion', 'bash'])
    assert.equal(bash.code, 0, bash.stderr)
    const loaded = spawnSync('bash', ['--norc', '-c', `eval "$(${process.execPath} ${BIN} completion bash)"; complete -p airlock`], {encoding: 'utf8', env: env()})
    assert.equal(loaded.stdout.trim(), 'complete -o default -F _airlock_completion airlock', loaded.stderr)
    const zsh = airlock(['completion', 'zsh'])
    assert.equal(zsh.code, 0, zsh.stderr)
    assert.match(zsh.stdout, /^#compdef airlock\n/)
    assert.match(zsh.stdout, /\n {4}'install'\) _arguments -s .*'\(-t --to\)'\{-t,--to=\}/)
    const json = JSON.parse(airlock(['completion', 'bash', '--json']).stdout) as {shell: string; script: string}
    assert.deepEqual(json, {shell: 'bash', script: bash.stdout})
    const fish = airlock(['completion', 'fish'])
    assert.equal(fish.code, 2)
    assert.match(fish.stderr, /Expected fish to be one of: bash, zsh/)
  })

  it('--quiet: nothing on success; errors, warnings and --json as always', () => {
    assert.deepEqual(airlock(['install', 'a.tar', '--key', 'k.pub.asc', '--to', `oci:${f('quiet')}`, '--quiet']), {code: 0, stdout: '', stderr: ''})
    assert.ok(existsSync(path.join(f('quiet'), 'index.json')))
    const loud = airlock(['install', 'a.tar', '--key', 'k.pub.asc', '--to', `oci:${f('loud')}`])
    assert.match(loud.stdout, /^installed: synthetic 1\.0\.0/)
    assert.deepEqual(airlock(['inspect', 'a.tar', '-q']), {code: 0, stdout: '', stderr: ''})
    for (const extra of [{}, {AIRLOCK_NO_FAST: '1'}] as Record<string, string>[]) {
      assert.deepEqual(airlock(['verify', 'a.tar', '--key', 'k.pub.asc', '--quiet'], extra), {code: 0, stdout: '', stderr: ''})
      const bad = airlock(['verify', 'bad.tar', '--key', 'k.pub.asc', '--quiet'], extra)
      assert.equal(bad.code, 3)
      assert.match(bad.stderr, /^error: blobs\/sha256\/[0-9a-f]{64}: content does not match/)
    }
    const badInstall = airlock(['install', 'bad.tar', '--key', 'k.pub.asc', '--to', `oci:${f('quiet-bad')}`, '-q'])
    assert.equal(badInstall.code, 3)
    assert.match(badInstall.stderr, /^error: /)
    const j = airlock(['inspect', 'a.tar', '--quiet', '--json'])
    assert.equal((JSON.parse(j.stdout) as {bundle: {name: string}}).bundle.name, 'synthetic')
  })

  it('NO_COLOR: no color on a terminal; none either when the output is not one', () => {
    const esc = '\u001b['
    assert.ok(onTerminal(['install', '--help']).includes(esc), 'help is in color on a terminal')
    assert.ok(!onTerminal(['install', '--help'], {NO_COLOR: '1'}).includes(esc))
    assert.ok(!onTerminal(['inspect', 'a.tar', '--json'], {NO_COLOR: '1'}).includes(esc))
    assert.ok(!airlock(['install', '--help']).stdout.includes(esc))
    assert.ok(!airlock(['inspect', 'a.tar', '--json']).stdout.includes(esc))
  })

  it('created: "not recorded" for an archive made without SOURCE_DATE_EPOCH, else the time', () => {
    const r = airlock(['inspect', 'a.tar'])
    assert.match(r.stdout, /\n {2}created not recorded \(made without SOURCE_DATE_EPOCH\), format v\d/)
    assert.equal((JSON.parse(airlock(['inspect', 'a.tar', '--json']).stdout) as {bundle: {created: string}}).bundle.created, '1970-01-01T00:00:00.000Z')
    assert.match(airlock(['inspect', 'dated.tar']).stdout, /\n {2}created 2023-11-14T22:13:20\.000Z, format v\d/)
  })
})
