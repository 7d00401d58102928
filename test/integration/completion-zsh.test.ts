/**
 * The zsh completion script, generated from the committed oclif.manifest.json, in a real
 * interactive zsh (through a pseudo-terminal). zsh is installed by the testbed (scripts/testbed.sh).
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {completionCommands, completionScript, ManifestCommand} from '../../src/cli/completion.js'

const manifest = JSON.parse(readFileSync(new URL('../../oclif.manifest.json', import.meta.url), 'utf8')) as {commands: Record<string, ManifestCommand>}
const commands = completionCommands(Object.values(manifest.commands))
const topics = new Map([['key', 'Manage OpenPGP signing keys']])
let dir: string

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'airlock-completion-zsh-'))
  writeFileSync(path.join(dir, 'airlock.zsh'), completionScript('zsh', 'airlock', commands, topics))
})
after(() => rmSync(dir, {recursive: true, force: true}))

describe('completion in zsh', () => {
  it('zsh: the same, through compinit in a pseudo-terminal', () => {
    // Types LINE and a Tab into an interactive zsh that loaded the script; prints what the terminal shows.
    const harness = `zmodload zsh/zpty
zpty -b z 'zsh -f -i'
zpty -w z "PS1='> '; autoload -Uz compinit; compinit -u -D; source ${path.join(dir, 'airlock.zsh')}; zstyle ':completion:*' menu no; echo READY"
zpty -r z line '*READY*'; zpty -r z line '*READY*'
zpty -w -n z "$1"$'\\t'
sleep 1
out=''
while zpty -r -t z chunk; do out+=$chunk; done
print -r -- "$out"
zpty -d z`
    writeFileSync(path.join(dir, 'harness.zsh'), harness)
    const complete = (line: string) => {
      const r = spawnSync('zsh', ['-f', path.join(dir, 'harness.zsh'), line], {encoding: 'utf8', timeout: 30_000})
      assert.equal(r.status, 0, r.stderr)
      // eslint-disable-next-line no-control-regex
      return r.stdout.replace(/\x1b\[[0-9;?]*[a-zA-Z]/g, '')
    }
    const ins = complete('airlock ins')
    assert.match(ins, /inspect\s+-- Show what an archive holds/)
    assert.match(ins, /install\s+-- Verify an archive and load its images/)
    assert.match(complete('airlock key gen'), /airlock key generate /)
    assert.match(complete('airlock install --dry'), /airlock install --dry-run /)
    assert.match(complete('airlock verify --al'), /airlock verify --allow-unsigned /)
    const shells = complete('airlock completion ')
    assert.match(shells, /bash\s+zsh/)
  })
})
