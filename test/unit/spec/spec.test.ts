import assert from 'node:assert/strict'
import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {after, describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'

import {InputError} from '../../../src/core/errors.js'
import {
  bundleSchema,
  familiarReference,
  formatPlatform,
  formatReference,
  loadBundleSpec,
  MAX_PROBLEMS,
  normalizePlatform,
  normalizePlatformString,
  parsePlatform,
  parseReference,
  platformMatches,
  resolveExpiry,
  SCHEMA_PATH,
  starterBundle,
  validateBundleText,
} from '../../../src/spec/index.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const H = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'
const tmp = mkdtempSync(path.join(tmpdir(), 'airlock-spec-'))
after(() => rmSync(tmp, {recursive: true, force: true}))

const HEAD = 'apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: t, version: "1"}\n'

function problemsOf(text: string): Array<[number, number, string, string]> {
  const {problems} = validateBundleText(text, 'b.yaml')
  return problems.map((p) => [p.line, p.col, p.code, p.message])
}

function reasonOf(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof InputError, `expected InputError, got ${String(error)}`)
    return error.message
  }
  assert.fail('expected an error')
}

describe('parseReference', () => {
  const cases: Array<[string, string]> = [
    ['nginx', 'docker.io/library/nginx:latest'],
    ['nginx:1.27', 'docker.io/library/nginx:1.27'],
    ['user/app', 'docker.io/user/app:latest'],
    ['docker.io/nginx', 'docker.io/library/nginx:latest'],
    ['index.docker.io/library/nginx:1', 'docker.io/library/nginx:1'],
    ['index.docker.io/nginx', 'docker.io/library/nginx:latest'],
    ['localhost/a', 'localhost/a:latest'],
    ['localhost:5000/a', 'localhost:5000/a:latest'],
    ['127.0.0.1:5301/testbed/app-a:1', '127.0.0.1:5301/testbed/app-a:1'],
    ['ghcr.io/o/r/deep/path:v1.2.3-rc_1', 'ghcr.io/o/r/deep/path:v1.2.3-rc_1'],
    [`a/b:c@sha256:${H}`, `docker.io/a/b:c@sha256:${H}`],
    [`alpine@sha256:${H}`, `docker.io/library/alpine@sha256:${H}`],
    ['[::1]:5000/x/y:z', '[::1]:5000/x/y:z'],
    ['a__b/c--d/e.f_g:t', 'docker.io/a__b/c--d/e.f_g:t'],
    ['Registry.Example.com/app', 'Registry.Example.com/app:latest'],
  ]
  for (const [input, want] of cases) {
    it(`${input} → ${want}`, () => assert.equal(formatReference(parseReference(input)), want))
  }

  it('splits the parts', () => {
    assert.deepEqual(parseReference(`localhost:5000/a/b:c@sha256:${H}`), {registry: 'localhost:5000', repository: 'a/b', tag: 'c', digest: `sha256:${H}`})
    assert.deepEqual(parseReference(`x@sha256:${H}`), {registry: 'docker.io', repository: 'library/x', digest: `sha256:${H}`})
    // a tag is not a port when there is no slash after it
    assert.deepEqual(parseReference('localhost:5000'), {registry: 'docker.io', repository: 'library/localhost', tag: '5000'})
  })

  it('familiar form', () => {
    assert.equal(familiarReference(parseReference('docker.io/library/nginx:1')), 'nginx:1')
    assert.equal(familiarReference(parseReference('user/app')), 'user/app:latest')
    assert.equal(familiarReference(parseReference('quay.io/a/b:1')), 'quay.io/a/b:1')
  })

  const bad: Array<[string, RegExp]> = [
    ['docker.io/Library/Nginx', /must be lowercase/],
    ['user/App:1', /must be lowercase/],
    ['', /empty/],
    ['nginx:', /empty tag/],
    ['nginx:-bad', /invalid tag/],
    [`nginx:${'a'.repeat(129)}`, /invalid tag/],
    ['nginx@sha256:abc', /64 lowercase hex/],
    [`nginx@sha512:${H}`, /unsupported digest algorithm "sha512"/],
    [`nginx@sha256:${H.toUpperCase()}`, /64 lowercase hex/],
    ['a//b', /empty path component/],
    ['a/b/', /empty path component/],
    ['a/-b', /invalid repository path component/],
    ['a/b c', /whitespace/],
    ['bad_host:5000/x', /invalid registry host/],
    [H, /image ID/],
    [`x/${'a'.repeat(300)}`, /longer than 255/],
  ]
  for (const [input, re] of bad) {
    it(`rejects ${JSON.stringify(input.length > 40 ? input.slice(0, 40) + '…' : input)}`, () => {
      const msg = reasonOf(() => parseReference(input))
      assert.match(msg, re)
      assert.match(msg, /^invalid image reference/)
    })
  }
})

describe('platforms', () => {
  const cases: Array<[string, string]> = [
    ['linux/amd64', 'linux/amd64'],
    ['linux/arm64', 'linux/arm64/v8'],
    ['linux/arm64/v8', 'linux/arm64/v8'],
    ['linux/aarch64', 'linux/arm64/v8'],
    ['linux/x86_64', 'linux/amd64'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/arm/6', 'linux/arm/v6'],
    ['linux/armhf', 'linux/arm/v7'],
    ['arm64', 'linux/arm64/v8'],
    ['Linux/AMD64', 'linux/amd64'],
    ['macos/arm64', 'darwin/arm64/v8'],
    ['windows/amd64', 'windows/amd64'],
    ['linux/ppc64le', 'linux/ppc64le'],
    ['linux/s390x', 'linux/s390x'],
    ['linux/riscv64', 'linux/riscv64'],
    ['linux/386', 'linux/386'],
    ['linux/i386', 'linux/386'],
  ]
  for (const [input, want] of cases) it(`${input} → ${want}`, () => assert.equal(normalizePlatformString(input), want))

  it('parse/format/normalize objects', () => {
    assert.deepEqual(parsePlatform('linux/arm64'), {os: 'linux', architecture: 'arm64', variant: 'v8'})
    assert.deepEqual(normalizePlatform({os: 'linux', architecture: 'aarch64'}), {os: 'linux', architecture: 'arm64', variant: 'v8'})
    assert.equal(formatPlatform({os: 'linux', architecture: 'amd64'}), 'linux/amd64')
  })

  it('did you mean', () => {
    assert.match(reasonOf(() => parsePlatform('linux/amd46')), /unknown architecture "amd46"; did you mean linux\/amd64\?/)
    assert.match(reasonOf(() => parsePlatform('linx/arm64')), /did you mean linux\/arm64\/v8\?/)
    assert.match(reasonOf(() => parsePlatform('linux/arm46/v8')), /did you mean linux\/arm64\/v8\?/)
    assert.match(reasonOf(() => parsePlatform('amd64/linux')), /operating system comes first; did you mean linux\/amd64\?/)
    assert.match(reasonOf(() => parsePlatform('linux/arm/v9')), /unknown variant "v9"/)
    assert.match(reasonOf(() => parsePlatform('linux')), /architecture is required/)
    assert.match(reasonOf(() => parsePlatform('a/b/c/d')), /os\/arch\[\/variant\]/)
    assert.match(reasonOf(() => parsePlatform('')), /empty/)
  })

  it('platformMatches', () => {
    assert.ok(platformMatches('linux/arm64/v8', {os: 'linux', architecture: 'arm64'}))
    assert.ok(platformMatches('linux/arm64', {os: 'linux', architecture: 'arm64', variant: 'v8'}))
    assert.ok(platformMatches('linux/amd64', 'linux/amd64/v3'))
    assert.ok(platformMatches('linux/arm', {os: 'linux', architecture: 'arm', variant: 'v7'}))
    assert.ok(!platformMatches('linux/arm/v7', {os: 'linux', architecture: 'arm', variant: 'v6'}))
    assert.ok(!platformMatches('linux/amd64', {os: 'linux', architecture: 'arm64'}))
    assert.ok(!platformMatches('linux/amd64', {os: 'windows', architecture: 'amd64'}))
    assert.ok(!platformMatches('linux/amd64', {os: 'unknown', architecture: 'unknown'}))
  })
})

describe('validateBundleText', () => {
  it('reports exactly the 5 mistakes of a file, at the right line:col, sorted', () => {
    const text = [
      'apiVersion: airlock/v1', // 1
      'kind: Bundle', // 2
      'metadata:', // 3
      '  name: Bad_Name', // 4  mistake 1 (col 9)
      '  version: 1.0.0', // 5
      'plaforms: [linux/amd64]', // 6  mistake 2 (col 1)
      'images:', // 7
      '  - nginx:1.27', // 8
      '  - ref: docker.io/Library/Nginx', // 9  mistake 3 (col 10)
      '  - ref: redis:7', // 10
      '    platforms: [linux/amd46]', // 11 mistake 4 (col 17)
      'registries:', // 12
      '  r.example:5000:', // 13
      '    auth: {username: bob, passwordEnv: REG_PASS}', // 14 mistake 5 (col 12)
      '',
    ].join('\n')
    const ps = problemsOf(text)
    assert.deepEqual(ps.map(([l, c, code]) => [l, c, code]), [
      [4, 9, 'schema.pattern'],
      [6, 1, 'schema.unknown_key'],
      [9, 10, 'reference.invalid'],
      [11, 17, 'platform.invalid'],
      [14, 12, 'registry.literal_secret'],
    ])
    assert.match(ps[0][3], /^metadata\.name: must be lowercase/)
    assert.equal(ps[1][3], 'unknown key `plaforms`, did you mean `platforms`?')
    assert.match(ps[2][3], /repository name must be lowercase/)
    assert.match(ps[3][3], /did you mean linux\/amd64\?/)
    assert.match(ps[4][3], /literal credential `username`/)
    assert.doesNotMatch(ps[4][3], /bob/, 'never echo a credential')
  })

  it('duplicate keys', () => {
    const ps = problemsOf(HEAD + 'images: [nginx]\nimages: [redis]\n')
    assert.deepEqual(ps.map(([l, c, code]) => [l, c, code]), [[5, 1, 'yaml.duplicate_key']])
    assert.match(ps[0][3], /duplicate key `images`/)
    const nested = problemsOf('apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: a\n  version: "1"\n  name: b\nimages: [x]\n')
    assert.deepEqual(nested.map(([l, c, code]) => [l, c, code]), [[6, 3, 'yaml.duplicate_key']])
  })

  it('syntax error positions', () => {
    const at = (t: string) => problemsOf(t).map(([l, c, code, m]) => [l, c, code, m.replace(/^YAML syntax error: /, '')])
    assert.deepEqual(at(HEAD + 'images:\n\t- nginx\n'), [[5, 1, 'yaml.syntax', 'Tabs are not allowed as indentation']])
    assert.deepEqual(at(HEAD + 'images: [@x]\n'), [[4, 10, 'yaml.syntax', 'Plain value cannot start with reserved character @']])
    assert.deepEqual(at(HEAD + 'images: a: b\n').map((p) => [p[0], p[1], p[2]]), [[4, 9, 'yaml.syntax']])
    // follow-on errors on the same line are not repeated
    assert.equal(at('apiVersion: airlock/v1\nimages:\n  - a\n - b\n').length, 1)
  })

  it('refuses a ~1 MB billion-laughs document in well under a second', () => {
    let text = HEAD + 'images: [nginx]\nx0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for (let i = 1; ; i++) {
      const l = `x${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(',')}]\n`
      if (text.length + l.length > 1_000_000) break
      text += l
    }
    assert.ok(text.length > 990_000)
    const t0 = performance.now()
    const {problems, spec} = validateBundleText(text, 'bomb.yaml')
    const ms = performance.now() - t0
    assert.equal(spec, undefined)
    assert.equal(problems.length, 1)
    assert.equal(problems[0].code, 'yaml.alias_limit')
    assert.deepEqual([problems[0].line, problems[0].col], [6, 10])
    assert.ok(ms < 1000, `took ${ms} ms`)
  })

  it('refuses a small but exponential alias document', () => {
    let text = HEAD + 'images: [nginx]\na0: &a0 [x, x, x, x, x, x, x, x, x]\n'
    for (let i = 1; i < 9; i++) text += `a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(', ')}]\n`
    const t0 = performance.now()
    const ps = problemsOf(text)
    assert.ok(performance.now() - t0 < 1000)
    assert.deepEqual(ps.map(([l, c, code]) => [l, c, code]), [[6, 10, 'yaml.alias_limit']])
  })

  it('allows a few ordinary aliases', () => {
    const {problems, spec} = validateBundleText(HEAD + 'platforms: &p [linux/amd64, linux/arm64]\nimages:\n  - ref: a\n    platforms: *p\n', 'b.yaml')
    assert.deepEqual(problems, [])
    assert.deepEqual(spec?.images[0].platforms, ['linux/amd64', 'linux/arm64/v8'])
  })

  it('refuses more than 1 MiB', () => {
    const {problems} = validateBundleText(HEAD + 'images: [nginx]\n#' + 'x'.repeat(1024 * 1024) + '\n', 'big.yaml')
    assert.deepEqual(problems.map((p) => p.code), ['file.too_large'])
  })

  it('bounds the number of problems', () => {
    const lines = Array.from({length: 200}, (_, i) => `  - ref: BAD${i}`)
    const {problems} = validateBundleText(HEAD + 'images:\n' + lines.join('\n') + '\n', 'many.yaml')
    assert.equal(problems.length, MAX_PROBLEMS + 1)
    assert.equal(problems[MAX_PROBLEMS].code, 'problems.truncated')
    assert.match(problems[MAX_PROBLEMS].message, /150 more/)
    // sorted by position
    for (let i = 1; i < MAX_PROBLEMS; i++) assert.ok(problems[i].line > problems[i - 1].line)
  })

  it('schema problems: types, required, const, anyOf, oneOf, misspelt required key', () => {
    const ps = problemsOf([
      'apiVersion: airlock/v2', // 1
      'kind: Bundle', // 2
      'metadata:', // 3
      '  nmae: x', // 4
      '  version: 1', // 5
      'platforms: linux/amd64', // 6
      'imags: [nginx]', // 7
      'signing: {}', // 8
      '',
    ].join('\n'))
    assert.deepEqual(ps.map(([l, c, code, m]) => [l, c, code, m]), [
      [1, 13, 'schema.const', 'apiVersion: must be `airlock/v1`'],
      [4, 3, 'schema.unknown_key', 'unknown key `nmae` in metadata, did you mean `name`?'],
      [5, 12, 'schema.type', 'metadata.version: must be a non-empty string (quote numbers: version: "1")'],
      [6, 12, 'schema.any_of', 'platforms: must be `all` or a list of platforms such as [linux/amd64, linux/arm64/v8]'],
      [7, 1, 'schema.unknown_key', 'unknown key `imags`, did you mean `images`?'],
      [8, 10, 'schema.one_of', 'signing: must be a mapping with exactly one of `key` or `fingerprint`'],
    ])
  })

  it('image entries: wrong types, unknown keys inside, target names', () => {
    const ps = problemsOf(HEAD + [
      'images:', // 4
      '  - 42', // 5
      '  - ref: nginx', // 6
      '    platfroms: [all]', // 7
      '  - {ref: a/b, name: "x@sha256:' + H + '"}', // 8
      '  - {ref: other/app:1, name: nginx}', // 9
      '  - nginx:latest', // 10
      '',
    ].join('\n'))
    assert.deepEqual(ps.map(([l, c, code]) => [l, c, code]), [
      [5, 5, 'schema.any_of'],
      [7, 5, 'schema.unknown_key'],
      [8, 22, 'reference.name_digest'],
      [9, 30, 'image.duplicate_name'],
      [10, 5, 'image.duplicate'],
    ])
    assert.match(ps[3][3], /target name docker\.io\/library\/nginx:latest is already used by images\[1\] \(line 6\)/)
    assert.match(ps[4][3], /duplicate image docker\.io\/library\/nginx:latest/)
  })

  it('registries: literal secrets in every spelling, bad hosts, env names', () => {
    const ps = problemsOf(HEAD + 'images: [nginx]\n' + [
      'registries:', // 5
      '  a.example: {password: hunter2}', // 6
      '  b.example: {auth: "dXNlcjpwYXNz"}', // 7
      '  c.example: {auth: {usernameEnv: U, passwordEnv: "hunter 2"}}', // 8
      '  "not a host": {}', // 9
      '  index.docker.io: {}', // 10
      '  docker.io: {}', // 11
      '',
    ].join('\n'))
    assert.deepEqual(ps.map(([l, c, code]) => [l, c, code]), [
      [6, 15, 'registry.literal_secret'],
      [7, 21, 'registry.literal_secret'],
      [8, 51, 'schema.pattern'],
      [9, 3, 'registry.invalid_host'],
      [11, 3, 'registry.duplicate'],
    ])
    for (const p of ps) assert.doesNotMatch(p[3], /hunter|dXNlcjpwYXNz/)
  })

  it('expires: past, invalid, durations', () => {
    const now = new Date('2026-06-01T00:00:00Z')
    const mk = (e: string) => validateBundleText(HEAD.replace('version: "1"', `version: "1", expires: "${e}"`) + 'images: [nginx]\n', 'b.yaml', {now}).problems.map((p) => p.code)
    assert.deepEqual(mk('2026-01-01'), ['expires.past'])
    assert.deepEqual(mk('2026-05-31T23:59:59Z'), ['expires.past'])
    assert.deepEqual(mk('2026-02-30'), ['expires.invalid'])
    assert.deepEqual(mk('next year'), ['schema.pattern'])
    assert.deepEqual(mk('2027-01-01'), [])
    assert.deepEqual(mk('2026-06-01T02:00:00+01:00'), [])
    assert.deepEqual(mk('90d'), [])
    const created = new Date('2026-01-01T00:00:00Z')
    assert.equal(resolveExpiry('90d', created)?.toISOString(), '2026-04-01T00:00:00.000Z')
    assert.equal(resolveExpiry('2w', created)?.toISOString(), '2026-01-15T00:00:00.000Z')
    assert.equal(resolveExpiry('1y', created)?.toISOString(), '2027-01-01T00:00:00.000Z')
    assert.equal(resolveExpiry('48h', created)?.toISOString(), '2026-01-03T00:00:00.000Z')
    assert.equal(resolveExpiry('2027-12-31T00:00:00Z', created)?.toISOString(), '2027-12-31T00:00:00.000Z')
    assert.equal(resolveExpiry('2027-12-31', created)?.toISOString(), '2027-12-31T00:00:00.000Z')
    assert.equal(resolveExpiry(undefined, created), undefined)
    assert.throws(() => resolveExpiry('soon', created), InputError)
  })

  it('empty document', () => {
    assert.deepEqual(problemsOf('# nothing\n').map((p) => p[2]), ['spec.empty'])
  })

  it('normalises a valid spec', () => {
    const dir = path.join(tmp, 'norm')
    const file = path.join(dir, 'bundle.yaml')
    rmSync(dir, {recursive: true, force: true})
    const text = HEAD + [
      'platforms: [linux/aarch64, linux/amd64]',
      'images:',
      '  - nginx',
      `  - alpine@sha256:${H}`,
      `  - ref: a/b:c@sha256:${H}`,
      '    platforms: all',
      '  - ref: 127.0.0.1:5301/testbed/multi:1',
      '    name: registry.example.com/apps/multi',
      '    platforms: [linux/arm64]',
      'registries:',
      '  index.docker.io: {mirrors: [mirror.local:5000]}',
      '  127.0.0.1:5302: {insecure: true, auth: {usernameEnv: U, passwordEnv: P}}',
      'signing: {fingerprint: "0x0123456789abcdef0123456789abcdef01234567"}',
      '',
    ].join('\n')
    const {spec, problems} = validateBundleText(text, file)
    assert.deepEqual(problems, [])
    assert.ok(spec)
    assert.equal(spec.file, file)
    assert.equal(spec.dir, dir)
    assert.deepEqual(spec.metadata, {name: 't', version: '1'})
    assert.deepEqual(spec.platforms, ['linux/arm64/v8', 'linux/amd64'])
    assert.deepEqual(spec.images.map((i) => [i.refString, i.name, i.platforms, i.line, i.col]), [
      ['docker.io/library/nginx:latest', 'docker.io/library/nginx:latest', ['linux/arm64/v8', 'linux/amd64'], 6, 5],
      [`docker.io/library/alpine@sha256:${H}`, `docker.io/library/alpine@sha256:${H}`, ['linux/arm64/v8', 'linux/amd64'], 7, 5],
      [`docker.io/a/b:c@sha256:${H}`, 'docker.io/a/b:c', 'all', 8, 5],
      ['127.0.0.1:5301/testbed/multi:1', 'registry.example.com/apps/multi:latest', ['linux/arm64/v8'], 10, 5],
    ])
    assert.deepEqual(spec.images[2].ref, {registry: 'docker.io', repository: 'a/b', tag: 'c', digest: `sha256:${H}`})
    assert.deepEqual(spec.registries, {
      'docker.io': {mirrors: ['mirror.local:5000']},
      '127.0.0.1:5302': {insecure: true, auth: {usernameEnv: 'U', passwordEnv: 'P'}},
    })
    assert.deepEqual(spec.signing, {fingerprint: '0123456789ABCDEF0123456789ABCDEF01234567'})
  })

  it('default platforms, relative paths made absolute, missing files reported', async () => {
    const dir = path.join(tmp, 'rel')
    rmSync(dir, {recursive: true, force: true})
    await import('node:fs').then((fs) => fs.mkdirSync(path.join(dir, 'certs'), {recursive: true}))
    writeFileSync(path.join(dir, 'certs', 'ca.pem'), 'x')
    writeFileSync(path.join(dir, 'release.asc'), 'x')
    const file = path.join(dir, 'bundle.yaml')
    writeFileSync(file, HEAD + 'images: [nginx]\nregistries:\n  r.example: {ca: ./certs/ca.pem}\nsigning: {key: release.asc}\n')
    const spec = await loadBundleSpec(file)
    assert.deepEqual(spec.platforms, ['linux/amd64'])
    assert.deepEqual(spec.images[0].platforms, ['linux/amd64'])
    assert.equal(spec.registries['r.example'].ca, path.join(dir, 'certs', 'ca.pem'))
    assert.equal(spec.signing?.key, path.join(dir, 'release.asc'))

    writeFileSync(file, HEAD + 'images: [nginx]\nregistries:\n  r.example: {ca: ./certs/nope.pem}\nsigning: {key: nope.asc}\n')
    await assert.rejects(loadBundleSpec(file), (e: unknown) => {
      assert.ok(e instanceof InputError)
      assert.equal(e.code, 'spec.invalid')
      assert.equal(e.exitCode, 2)
      assert.equal(e.details.length, 2)
      assert.match(e.details[0], new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:6:19: .*CA file ./certs/nope.pem not found`))
      assert.match(e.details[1], /:7:16: signing\.key: key file nope\.asc not found/)
      return true
    })
    await assert.rejects(loadBundleSpec(path.join(dir, 'missing.yaml')), (e: unknown) => e instanceof InputError && e.code === 'spec.not_found')
  })
})

describe('schema and examples', () => {
  it('the schema file sits at the package root and forbids unknown keys', () => {
    assert.equal(SCHEMA_PATH, path.join(ROOT, 'schemas', 'bundle.schema.json'))
    const s = bundleSchema() as {additionalProperties: boolean; properties: Record<string, {additionalProperties?: boolean; description?: string}>}
    assert.equal(s.additionalProperties, false)
    assert.equal(s.properties.metadata.additionalProperties, false)
    for (const [k, v] of Object.entries(s.properties)) assert.ok(v.description, `${k} has a description`)
  })

  const exampleDirs = readdirSync(path.join(ROOT, 'examples'), {withFileTypes: true}).filter((d) => d.isDirectory()).map((d) => d.name)
  it('has the four examples', () => {
    for (const n of ['quickstart', 'multi-arch', 'private-registry', 'app-stack']) assert.ok(exampleDirs.includes(n), n)
  })
  for (const name of exampleDirs) {
    it(`examples/${name}/bundle.yaml is valid`, async () => {
      const file = path.join(ROOT, 'examples', name, 'bundle.yaml')
      assert.match(readFileSync(file, 'utf8'), /^# yaml-language-server: \$schema=\.\.\/\.\.\/schemas\/bundle\.schema\.json/)
      const spec = await loadBundleSpec(file)
      assert.ok(spec.images.length > 0)
    })
  }

  it('example contents match the testbed', async () => {
    const q = await loadBundleSpec(path.join(ROOT, 'examples/quickstart/bundle.yaml'))
    assert.deepEqual(q.images.map((i) => i.refString), ['app-a', 'app-b', 'app-c'].map((a) => `127.0.0.1:5301/testbed/${a}:1`))
    assert.deepEqual(q.registries['127.0.0.1:5301'], {insecure: true})
    const m = await loadBundleSpec(path.join(ROOT, 'examples/multi-arch/bundle.yaml'))
    assert.deepEqual(m.images.map((i) => [i.refString, i.platforms]), [
      ['127.0.0.1:5301/testbed/multi:1', ['linux/amd64', 'linux/arm64/v8']],
      ['127.0.0.1:5301/testbed/multi:1', ['linux/arm64/v8']],
    ])
    const p = await loadBundleSpec(path.join(ROOT, 'examples/private-registry/bundle.yaml'))
    assert.deepEqual(p.registries['127.0.0.1:5302'].auth, {usernameEnv: 'AIRLOCK_TB_USER', passwordEnv: 'AIRLOCK_TB_PASS'})
  })

  it('the init template is valid', () => {
    const {problems, spec} = validateBundleText(starterBundle({name: 'demo', schemaRef: 'x.json'}), path.join(tmp, 'bundle.yaml'))
    assert.deepEqual(problems, [])
    assert.equal(spec?.metadata.name, 'demo')
  })
})

describe('subset and chosen platforms', () => {
  it('`subset: true` is read per image; platforms written anywhere count as chosen, the default does not', () => {
    const {problems, spec} = validateBundleText(HEAD + `images:\n  - r.io/a@sha256:${H}\n  - ref: r.io/b@sha256:${H}\n    platforms: [linux/amd64]\n    subset: true\n`, 'b.yaml')
    assert.deepEqual(problems, [])
    assert.deepEqual(spec?.images.map((i) => [i.platformsChosen, i.subset]), [[false, false], [true, true]])
    const top = validateBundleText(HEAD + `platforms: [linux/amd64]\nimages:\n  - r.io/a@sha256:${H}\n`, 'b.yaml')
    assert.equal(top.spec?.images[0].platformsChosen, true)
  })

  it('`subset` must be a boolean, reported at its line and column', () => {
    const ps = problemsOf(HEAD + `images:\n  - ref: r.io/b@sha256:${H}\n    subset: yes please\n`)
    assert.deepEqual(ps.map(([l, c, code]) => [l, c, code]), [[6, 13, 'schema.type']])
  })
})
