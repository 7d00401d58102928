/**
 * Credentials never leak: `create` against the htpasswd testbed registry with credentials from
 * env var NAMES, from a docker config (auths) and from a credential helper, plus a wrong-password
 * run; then every output (stdout, stderr, --json, AIRLOCK_DEBUG stacks), the archive bytes, the
 * lock file, every cache file and the helper's argv are searched for the password (plain and
 * base64 user:pass).
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {Testbed, testbed} from '../helpers/testbed.js'
import {BIN as bin} from '../helpers/cli.js'

let tb: Testbed
let dir: string
let needles: Buffer[]
const outputs: string[] = []

function airlock(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {cwd: dir, env: {...process.env, HOME: dir, DOCKER_CONFIG: path.join(dir, 'no-docker'), AIRLOCK_CACHE_DIR: path.join(dir, 'cache'), ...env}, encoding: 'utf8', timeout: 120_000})
  outputs.push(r.stdout, r.stderr)
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

async function filesUnder(d: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(d, {withFileTypes: true, recursive: true})) if (e.isFile()) out.push(path.join(e.parentPath ?? (e as unknown as {path: string}).path, e.name))
  return out
}

function assertNoSecret(what: string, data: Buffer | string): void {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data)
  for (const n of needles) assert.equal(b.indexOf(n), -1, `${what} contains the registry secret`)
}

function spec(name: string, auth = ''): string {
  return `apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: ${name}, version: 1.0.0}\nplatforms: [linux/amd64]\nimages:\n  - ${tb.images.secret.ref}\nregistries:\n  ${tb.registries.auth}: {insecure: true${auth}}\n`
}

describe('secrets never leak', {timeout: 300_000}, () => {
  before(async () => {
    tb = await testbed()
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-secrets-'))
    const {username, password} = tb.auth
    needles = [Buffer.from(password), Buffer.from(Buffer.from(`${username}:${password}`).toString('base64'))]
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('create with env-named credentials, a docker config and a credential helper; wrong password fails clearly', async () => {
    const {username, password, registry} = tb.auth
    // 1. env var NAMES in bundle.yaml
    await writeFile(path.join(dir, 'env.yaml'), spec('sec-env', ', auth: {usernameEnv: SEC_USER, passwordEnv: SEC_PASS}'))
    let r = airlock(['create', 'env.yaml', '--unsigned', '-o', 'env.tar', '--json'], {SEC_USER: username, SEC_PASS: password})
    assert.equal(r.code, 0, r.stderr)
    r = airlock(['create', 'env.yaml', '--unsigned', '-o', 'env2.tar'], {SEC_USER: username, SEC_PASS: password})
    assert.equal(r.code, 0, r.stderr)

    // 2. docker config.json auths
    const cfgDir = path.join(dir, 'dockercfg')
    await mkdir(cfgDir, {recursive: true})
    await writeFile(path.join(cfgDir, 'config.json'), JSON.stringify({auths: {[registry]: {auth: Buffer.from(`${username}:${password}`).toString('base64')}}}))
    await writeFile(path.join(dir, 'cfg.yaml'), spec('sec-cfg'))
    r = airlock(['create', 'cfg.yaml', '--unsigned', '-o', 'cfg.tar', '--registry-config', cfgDir, '--json', '--cache-dir', path.join(dir, 'cache2')])
    assert.equal(r.code, 0, r.stderr)

    // 3. a credential helper: it must get the host on stdin and nothing secret in argv
    const helperDir = path.join(dir, 'helper-bin')
    await mkdir(helperDir, {recursive: true})
    const argvLog = path.join(dir, 'helper-argv.log')
    const helper = path.join(helperDir, 'docker-credential-airlocktest')
    await writeFile(helper, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argvLog}'\nread -r server\nprintf 'stdin=%s\\n' "$server" >> '${argvLog}'\nprintf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}' "$server" "$HELPER_U" "$HELPER_P"\n`)
    await chmod(helper, 0o755)
    const helperCfg = path.join(dir, 'helpercfg')
    await mkdir(helperCfg, {recursive: true})
    await writeFile(path.join(helperCfg, 'config.json'), JSON.stringify({credHelpers: {[registry]: 'airlocktest'}}))
    await writeFile(path.join(dir, 'helper.yaml'), spec('sec-helper'))
    r = airlock(['create', 'helper.yaml', '--unsigned', '-o', 'helper.tar', '--registry-config', helperCfg, '--cache-dir', path.join(dir, 'cache3')],
      {PATH: `${helperDir}:${process.env.PATH}`, HELPER_U: username, HELPER_P: password})
    assert.equal(r.code, 0, r.stderr)
    const argv = await readFile(argvLog, 'utf8')
    assert.equal(argv, `get\nstdin=${registry}\n`)

    // 4. wrong password: a clear error (exit 1) that names the registry, not the secret
    const wrong = `${password}-WRONG`
    for (const extra of [[], ['--json']]) {
      r = airlock(['create', 'env.yaml', '--unsigned', '-o', 'wrong.tar', '--cache-dir', path.join(dir, 'cache-wrong'), ...extra], {SEC_USER: username, SEC_PASS: wrong, AIRLOCK_DEBUG: '1'})
      assert.equal(r.code, 1, r.stdout + r.stderr)
      assert.match(r.stdout + r.stderr, /credentials for 127\.0\.0\.1:5302 were rejected/)
      assertNoSecret('wrong-password output', r.stdout + r.stderr)
      assert.equal((r.stdout + r.stderr).indexOf(wrong), -1)
    }
    // no credentials at all
    r = airlock(['create', 'cfg.yaml', '--unsigned', '-o', 'none.tar', '--cache-dir', path.join(dir, 'cache-none')])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /requires authentication and no credentials are configured/)

    // search everything
    for (const [i, o] of outputs.entries()) assertNoSecret(`output #${i}`, o)
    for (const f of await filesUnder(dir)) {
      if (f.startsWith(cfgDir) || f === helper) continue // the inputs themselves
      assertNoSecret(path.relative(dir, f), await readFile(f))
    }
    const scanned = (await filesUnder(dir)).filter((f) => /\.(tar|lock\.yaml)$/.test(f) || f.includes(`${path.sep}cache`))
    assert.ok(scanned.filter((f) => f.endsWith('.tar')).length >= 4 && scanned.some((f) => f.endsWith('.lock.yaml')) && scanned.length > 10)
  })
})
