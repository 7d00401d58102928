/**
 * End-to-end tests of `airlock validate` and `airlock init` through the built CLI (node bin/run.js).
 * dist/ is (re)built with tsc when it is missing or older than the sources under test.
 */
import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const RUN = path.join(ROOT, 'bin', 'run.js')
const tmp = mkdtempSync(path.join(tmpdir(), 'airlock-cli-validate-'))
after(() => rmSync(tmp, {recursive: true, force: true}))

function newestMtime(files: string[]): number {
  return Math.max(...files.filter((f) => existsSync(f)).map((f) => statSync(f).mtimeMs))
}

function ensureBuilt(): void {
  const specDir = path.join(ROOT, 'src', 'spec')
  const sources = [
    ...readdirSync(specDir).map((f) => path.join(specDir, f)),
    path.join(ROOT, 'src', 'commands', 'validate.ts'),
    path.join(ROOT, 'src', 'commands', 'init.ts'),
    path.join(ROOT, 'src', 'cli', 'base.ts'),
  ]
  const outputs = ['commands/validate.js', 'commands/init.js', 'spec/load.js'].map((f) => path.join(ROOT, 'dist', f))
  const stale = outputs.some((f) => !existsSync(f)) || Math.min(...outputs.map((f) => statSync(f).mtimeMs)) < newestMtime(sources)
  if (stale) {
    // tsc still emits when files owned by others have type errors; we only need our outputs.
    spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {cwd: ROOT, stdio: 'ignore'})
    for (const f of outputs) assert.ok(existsSync(f), `build did not produce ${f}`)
  }
  // A stale oclif manifest would hide the commands: regenerate it when it lacks them.
  const manifest = path.join(ROOT, 'oclif.manifest.json')
  if (existsSync(manifest)) {
    const cmds = Object.keys((JSON.parse(readFileSync(manifest, 'utf8')) as {commands?: object}).commands ?? {})
    if (!cmds.includes('validate') || !cmds.includes('init')) {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'oclif', 'bin', 'run.js'), 'manifest'], {cwd: ROOT, stdio: 'ignore'})
    }
  }
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function airlock(args: string[], cwd = ROOT): Run {
  const r = spawnSync(process.execPath, [RUN, ...args], {cwd, encoding: 'utf8', env: {...process.env, AIRLOCK_DEBUG: ''}, timeout: 60_000})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

function assertNoStack(r: Run): void {
  assert.doesNotMatch(r.stderr + r.stdout, /^\s+at .+[(:]\d+/m, 'no stack trace')
  assert.doesNotMatch(r.stderr + r.stdout, /Error: |TypeError|ReferenceError/)
}

const FIVE_MISTAKES = [
  'apiVersion: airlock/v1',
  'kind: Bundle',
  'metadata:',
  '  name: Bad_Name', // 4:9
  '  version: 1.0.0',
  'plaforms: [linux/amd64]', // 6:1
  'images:',
  '  - nginx:1.27',
  '  - ref: docker.io/Library/Nginx', // 9:10
  '  - ref: redis:7',
  '    platforms: [linux/amd46]', // 11:17
  'registries:',
  '  r.example:5000:',
  '    auth: {username: bob, passwordEnv: REG_PASS}', // 14:12
  '',
].join('\n')

describe('airlock validate / init (built CLI)', () => {
  let bad: string
  before(() => {
    ensureBuilt()
    bad = path.join(tmp, 'bad.yaml')
    writeFileSync(bad, FIVE_MISTAKES)
  })

  it('five mistakes → five FILE:LINE:COL lines on stderr, exit 2', () => {
    const r = airlock(['validate', bad])
    assert.equal(r.code, 2)
    assert.equal(r.stdout, '')
    const lines = r.stderr.trimEnd().split('\n')
    const located = lines.filter((l) => l.startsWith(`${bad}:`) && /:\d+:\d+: /.test(l))
    assert.deepEqual(located.map((l) => /^.*?:(\d+):(\d+): /.exec(l)?.slice(1).join(':')), ['4:9', '6:1', '9:10', '11:17', '14:12'])
    assert.match(located[1], /unknown key `plaforms`, did you mean `platforms`\?$/)
    assert.match(located[3], /did you mean linux\/amd64\?$/)
    assert.equal(lines.length, 6)
    assert.equal(lines[5], `${bad}: 5 problems`)
    assert.doesNotMatch(r.stderr, /bob/)
    assertNoStack(r)
  })

  it('relative file names are printed as given', () => {
    const r = airlock(['validate', 'bad.yaml'], tmp)
    assert.equal(r.code, 2)
    assert.match(r.stderr, /^bad\.yaml:4:9: metadata\.name: /m)
  })

  it('a valid file → exit 0 and a one-line summary', () => {
    const r = airlock(['validate', 'examples/quickstart/bundle.yaml'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.trim(), 'examples/quickstart/bundle.yaml: valid — quickstart 1.0.0, 3 images')
    assert.equal(r.stderr, '')
  })

  it('every example validates through the CLI', () => {
    for (const d of readdirSync(path.join(ROOT, 'examples'))) {
      const f = path.join('examples', d, 'bundle.yaml')
      if (!existsSync(path.join(ROOT, f))) continue
      const r = airlock(['validate', f])
      assert.equal(r.code, 0, `${f}: ${r.stderr}`)
    }
  })

  it('--json shape when invalid (exit 2) and valid (exit 0)', () => {
    const r = airlock(['validate', bad, '--json'])
    assert.equal(r.code, 2)
    const j = JSON.parse(r.stdout) as {valid: boolean; file: string; problems: Array<Record<string, unknown>>; images?: unknown}
    assert.equal(j.valid, false)
    assert.equal(j.file, bad)
    assert.equal(j.problems.length, 5)
    for (const p of j.problems) {
      assert.deepEqual(Object.keys(p).sort(), ['code', 'col', 'file', 'line', 'message'])
      assert.equal(p.file, bad)
    }
    assert.deepEqual(j.problems.map((p) => p.code), ['schema.pattern', 'schema.unknown_key', 'reference.invalid', 'platform.invalid', 'registry.literal_secret'])
    assert.equal(j.images, undefined)

    const ok = airlock(['validate', 'examples/app-stack/bundle.yaml', '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    const k = JSON.parse(ok.stdout) as {valid: boolean; file: string; problems: unknown[]; images: string[]}
    assert.deepEqual({...k, images: k.images.slice(0, 2)}, {
      valid: true,
      file: 'examples/app-stack/bundle.yaml',
      problems: [],
      images: ['docker.io/library/postgres:16', 'docker.io/library/nginx:1.27-alpine'],
    })
    assert.equal(k.images.length, 4)
  })

  it('a YAML syntax error is located', () => {
    const f = path.join(tmp, 'syntax.yaml')
    writeFileSync(f, 'apiVersion: airlock/v1\nkind: Bundle\nimages:\n\t- nginx\n')
    const r = airlock(['validate', f])
    assert.equal(r.code, 2)
    assert.match(r.stderr, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:4:1: YAML syntax error: Tabs`, 'm'))
    assertNoStack(r)
  })

  it('a missing file → exit 2 with a message, no stack (also with --json)', () => {
    const r = airlock(['validate', path.join(tmp, 'nope.yaml')])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /^error: .*nope\.yaml not found/)
    assertNoStack(r)
    const j = airlock(['validate', path.join(tmp, 'nope.yaml'), '--json'])
    assert.equal(j.code, 2)
    assert.equal((JSON.parse(j.stdout) as {error: {code: string}}).error.code, 'spec.not_found')
  })

  it('init writes a valid starter, refuses to overwrite, --force and --json', () => {
    const dir = path.join(tmp, 'site')
    mkdirSync(dir)
    const r = airlock(['init'], dir)
    assert.equal(r.code, 0, r.stderr)
    const file = path.join(dir, 'bundle.yaml')
    const text = readFileSync(file, 'utf8')
    assert.match(text, /^# yaml-language-server: \$schema=file:\/\/.*\/schemas\/bundle\.schema\.json\n/)
    assert.match(text, /^apiVersion: airlock\/v1$/m)
    assert.match(text, /^ {2}name: site\b/m)

    // default FILE for validate is ./bundle.yaml
    const v = airlock(['validate'], dir)
    assert.equal(v.code, 0, v.stderr)
    assert.match(v.stdout, /valid — site 1\.0\.0, 2 images/)

    writeFileSync(file, 'mine\n')
    const again = airlock(['init'], dir)
    assert.equal(again.code, 2)
    assert.match(again.stderr, /^error: bundle\.yaml already exists \(use --force to overwrite it\)/)
    assertNoStack(again)
    assert.equal(readFileSync(file, 'utf8'), 'mine\n', 'not overwritten')

    const forced = airlock(['init', '--force', '--json'], dir)
    assert.equal(forced.code, 0, forced.stderr)
    assert.deepEqual(JSON.parse(forced.stdout), {file})
    assert.notEqual(readFileSync(file, 'utf8'), 'mine\n')

    const other = airlock(['init', 'other.yaml', '--json', '--name', 'edge-site'], dir)
    assert.equal(other.code, 0, other.stderr)
    assert.deepEqual(JSON.parse(other.stdout), {file: path.join(dir, 'other.yaml')})
    assert.equal(airlock(['validate', 'other.yaml'], dir).code, 0)

    const jsonRefuse = airlock(['init', 'other.yaml', '--json'], dir)
    assert.equal(jsonRefuse.code, 2)
    assert.equal((JSON.parse(jsonRefuse.stdout) as {error: {code: string}}).error.code, 'init.exists')
  })

  it('init inside the package uses a relative schema path', () => {
    const dir = mkdtempSync(path.join(ROOT, 'test', '.tmp-init-'))
    try {
      const r = airlock(['init', path.join(dir, 'bundle.yaml')])
      assert.equal(r.code, 0, r.stderr)
      assert.match(readFileSync(path.join(dir, 'bundle.yaml'), 'utf8'), /^# yaml-language-server: \$schema=\.\.\/\.\.\/schemas\/bundle\.schema\.json\n/)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
