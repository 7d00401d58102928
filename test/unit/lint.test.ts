// The linter can fail: ESLint with the project's config reports a floating promise and an
// eval'd worker, and the import check reports a layer violation and folder cycles, each on a
// small tree written to a temporary directory (so the real tree's state does not matter).
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {ESLint} from 'eslint'

import {checkDeps} from '../../scripts/check-deps.mjs'
import {ROOT} from '../helpers/cli.js'

const TSCONFIG = JSON.stringify({
  compilerOptions: {
    target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true,
    typeRoots: [path.join(ROOT, 'node_modules', '@types')], types: ['node'],
  },
  include: ['src/**/*.ts'],
})

/** Write `files` (path -> source) under a fresh directory with a tsconfig.json for src/. */
async function tree(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-lint-'))
  await writeFile(path.join(dir, 'tsconfig.json'), TSCONFIG)
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), {recursive: true})
    await writeFile(path.join(dir, name), text)
  }
  return dir
}

/** Lint src/ of `dir` with the project's eslint.config.js (its program: `dir`'s tsconfig.json). */
async function lint(dir: string): Promise<{file: string; rule: string | null}[]> {
  const eslint = new ESLint({
    cwd: dir,
    overrideConfigFile: path.join(ROOT, 'eslint.config.js'),
    overrideConfig: {languageOptions: {parserOptions: {project: './tsconfig.json', tsconfigRootDir: dir}}},
  })
  const results = await eslint.lintFiles(['src'])
  return results.flatMap((r) => r.messages.map((m) => ({file: path.relative(dir, r.filePath), rule: m.ruleId})))
}

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, {recursive: true, force: true})
})

describe('eslint.config.js', () => {
  let dir: string
  before(async () => {
    dir = await tree({
      'src/core/later.ts': 'export async function later(): Promise<number> {\n  return 1\n}\n',
      'src/core/fire.ts': "import {later} from './later.js'\n\nexport function fire(): void {\n  later()\n}\n",
      'src/core/fine.ts': "import {later} from './later.js'\n\nexport async function fine(): Promise<number> {\n  void later()\n  return later()\n}\n",
      'src/transports/hash/start.ts': "import {Worker} from 'node:worker_threads'\n\nexport const start = (): Worker => new Worker('0', {eval: true})\n",
      'src/transports/hash/misused.ts': "import {later} from '../../core/later.js'\n\nexport const ok = (): boolean => (later() ? true : false)\n",
    })
    dirs.push(dir)
  })

  it('reports a floating promise, a promise used as a condition and an eval\'d worker, and nothing else', async () => {
    const found = await lint(dir)
    assert.deepEqual(found.sort((a, b) => a.file.localeCompare(b.file)), [
      {file: 'src/core/fire.ts', rule: '@typescript-eslint/no-floating-promises'},
      {file: 'src/transports/hash/misused.ts', rule: '@typescript-eslint/no-misused-promises'},
      {file: 'src/transports/hash/start.ts', rule: 'no-restricted-syntax'},
    ])
  })
})

describe('scripts/check-deps.mjs', () => {
  it('reports a transport that imports src/cli, library code that imports src/cli, and their folder cycles', async () => {
    const dir = await tree({
      'src/cli/prompt.ts': "import {sign} from '../sign/keys.js'\n\nexport const ask = (): string => sign\n",
      'src/sign/keys.ts': "import {ask} from '../cli/prompt.js'\n\nexport const sign = 'k'\nexport const passphrase = (): string => ask()\n",
      'src/transports/registry/destination.ts': "import {ask} from '../../cli/prompt.js'\n\nexport const push = (): string => ask()\n",
      'src/core/errors.ts': 'export class AirlockError extends Error {}\n',
    })
    dirs.push(dir)
    const r = await checkDeps(dir)
    const seen = r.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort()
    assert.ok(seen.includes('transports-not-up: src/transports/registry/destination.ts → src/cli/prompt.ts'), seen.join('\n'))
    assert.ok(seen.includes('library-not-cli: src/transports/registry/destination.ts → src/cli/prompt.ts'), seen.join('\n'))
    assert.ok(seen.includes('library-not-cli: src/sign/keys.ts → src/cli/prompt.ts'), seen.join('\n'))
    assert.ok(seen.some((s) => s.startsWith('no-folder-cycle: src/sign → src/cli')), seen.join('\n'))
    assert.deepEqual(r.topCycles.map((c) => c.members), [['src/cli', 'src/sign']])
    assert.match(r.report, /transports-not-up/)
  })

  it('finds a cycle between top-level folders that runs through two different subfolders', async () => {
    const dir = await tree({
      'src/install/types.ts': 'export interface Destination {\n  name: string\n}\n',
      'src/install/install.ts': "import {load} from '../transports/podman/load.js'\n\nexport const install = (): string => load\n",
      'src/transports/podman/load.ts': "export const load = 'podman'\n",
      'src/transports/oci-layout/destination.ts': "import type {Destination} from '../../install/types.js'\n\nexport const oci: Destination = {name: 'oci'}\n",
    })
    dirs.push(dir)
    const r = await checkDeps(dir)
    assert.deepEqual(r.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`), ['transports-not-up: src/transports/oci-layout/destination.ts → src/install/types.ts'])
    assert.deepEqual(r.topCycles, [{members: ['src/install', 'src/transports'], edges: [
      'src/install/install.ts → src/transports/podman/load.ts',
      'src/transports/oci-layout/destination.ts → src/install/types.ts',
    ]}])
    assert.equal(r.problems, 2)
  })

  it('passes a tree whose imports point down', async () => {
    const dir = await tree({
      'src/core/errors.ts': 'export class AirlockError extends Error {}\n',
      'src/transports/registry/client.ts': "import {AirlockError} from '../../core/errors.js'\n\nexport const fail = (): Error => new AirlockError('x')\n",
      'src/install/install.ts': "import {fail} from '../transports/registry/client.js'\n\nexport const install = (): Error => fail()\n",
      'src/commands/install.ts': "import {install} from '../install/install.js'\n\nexport const run = (): Error => install()\n",
    })
    dirs.push(dir)
    const r = await checkDeps(dir)
    assert.equal(r.problems, 0, r.report)
  })
})
