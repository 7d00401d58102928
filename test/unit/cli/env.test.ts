/**
 * The environment table (src/cli/env.ts) is the truth: every variable is tied to a flag the
 * commands declare (with that `env`, hidden as the table says), every `env` a flag declares is in
 * the table, and README documents every row.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {describe, it} from 'node:test'

import type {Command} from '@oclif/core'

import {ENVIRONMENT} from '../../../src/cli/env.js'
import Create from '../../../src/commands/create.js'
import Diff from '../../../src/commands/diff.js'
import Init from '../../../src/commands/init.js'
import Inspect from '../../../src/commands/inspect.js'
import Install from '../../../src/commands/install.js'
import KeyGenerate from '../../../src/commands/key/generate.js'
import MirrorConfig from '../../../src/commands/mirror-config.js'
import Serve from '../../../src/commands/serve.js'
import Sign from '../../../src/commands/sign.js'
import Validate from '../../../src/commands/validate.js'
import Verify from '../../../src/commands/verify.js'

type FlagLike = {env?: string; hidden?: boolean}
const COMMANDS: Record<string, typeof Command> = {
  create: Create, init: Init, inspect: Inspect, install: Install, 'key generate': KeyGenerate, serve: Serve, sign: Sign, validate: Validate, verify: Verify,
  'mirror-config': MirrorConfig, diff: Diff,
}
const flagsOf = (c: typeof Command): Record<string, FlagLike> => ({...c.baseFlags, ...c.flags})

describe('environment variables: one table', () => {
  it('each variable read through a flag is that flag\'s env, hidden as the table says', () => {
    for (const v of ENVIRONMENT) {
      const names = v.commands.includes('*' as never) ? Object.keys(COMMANDS) : [...v.commands]
      for (const name of names) {
        const cmd = COMMANDS[name]
        assert.ok(cmd, `${v.name}: no command ${name}`)
        if (!v.flag || v.flag === 'json') continue
        const flag = flagsOf(cmd)[v.flag]
        assert.ok(flag, `${name} declares no --${v.flag} for ${v.name}`)
        if (v.readBy === 'flag') assert.equal(flag.env, v.name, `${name} --${v.flag}`)
        assert.equal(Boolean(flag.hidden), Boolean('hidden' in v && v.hidden), `${name} --${v.flag} hidden`)
      }
    }
  })

  it('every env a flag declares is in the table', () => {
    const known = new Set<string>(ENVIRONMENT.map((v) => v.name))
    for (const [name, cmd] of Object.entries(COMMANDS)) {
      for (const [flag, spec] of Object.entries(flagsOf(cmd))) if (spec.env) assert.ok(known.has(spec.env), `${name} --${flag}: ${spec.env} is not in src/cli/env.ts`)
    }
  })

  it('README documents every row', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
    for (const v of ENVIRONMENT) assert.match(readme, new RegExp(`^\\| \`${v.name}\` \\| ${v.flag ? `\`--${v.flag}\`` : '—'}`, 'm'), v.name)
  })
})
