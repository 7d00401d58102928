/**
 * The completion scripts, generated from the committed oclif.manifest.json, run in real shells:
 * bash through its completion variables (zsh: test/integration/completion-zsh.test.ts, where the
 * testbed has installed it).
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {completionCommands, completionScript, ManifestCommand} from '../../../src/cli/completion.js'

const manifest = JSON.parse(readFileSync(new URL('../../../oclif.manifest.json', import.meta.url), 'utf8')) as {commands: Record<string, ManifestCommand>}
const commands = completionCommands(Object.values(manifest.commands))
const topics = new Map([['key', 'Manage OpenPGP signing keys']])
let dir: string

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'airlock-completion-'))
  writeFileSync(path.join(dir, 'airlock.bash'), completionScript('bash', 'airlock', commands, topics))
  writeFileSync(path.join(dir, 'airlock.zsh'), completionScript('zsh', 'airlock', commands, topics))
})
after(() => rmSync(dir, {recursive: true, force: true}))

/** What bash offers for the command line `words` (the last one being completed). */
function bashComplete(words: string[]): string[] {
  const script = `source ${JSON.stringify(path.join(dir, 'airlock.bash'))}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_airlock_completion; printf '%s\\n' "\${COMPREPLY[@]}"; complete -p airlock >&2`
  const r = spawnSync('bash', ['--norc', '-c', script], {encoding: 'utf8'})
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stderr, /complete -o default -F _airlock_completion airlock/)
  return r.stdout.split('\n').filter(Boolean)
}

describe('shell completion', () => {
  it('the commands come from the manifest, hidden flags left out', () => {
    const verify = commands.find((c) => c.id === 'verify')!
    assert.ok(verify.flags.some((f) => f.name === 'key' && f.char === 'k' && f.value && f.multiple))
    assert.ok(!verify.flags.some((f) => f.name === 'hash-threads'))
    assert.ok(commands.some((c) => c.id === 'key generate'))
    assert.deepEqual(commands.find((c) => c.id === 'completion')?.argOptions, ['bash', 'zsh'])
  })

  it('bash: commands, topics, subcommands, flags, fixed values; file names left to bash', () => {
    const top = bashComplete(['airlock', ''])
    for (const c of ['completion', 'create', 'install', 'key', 'verify']) assert.ok(top.includes(c), c)
    assert.ok(!top.includes('generate'))
    assert.deepEqual(bashComplete(['airlock', 'ins']), ['inspect', 'install'])
    assert.deepEqual(bashComplete(['airlock', 'key', 'gen']), ['generate'])
    assert.deepEqual(bashComplete(['airlock', 'install', '--dry']), ['--dry-run'])
    assert.deepEqual(bashComplete(['airlock', 'verify', 'x.tar', '--al']), ['--allow-unsigned'])
    assert.deepEqual(bashComplete(['airlock', 'verify', '--ha']), [], 'a hidden flag is not offered')
    assert.deepEqual(bashComplete(['airlock', 'install', 'rel']), [], 'an archive: file names (complete -o default)')
    assert.deepEqual(bashComplete(['airlock', 'completion', '']), ['bash', 'zsh'])
    assert.deepEqual(bashComplete(['airlock', 'key', 'generate', '--na']), ['--name'])
  })

})
