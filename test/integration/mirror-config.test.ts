/**
 * `airlock mirror-config` end to end: a bundle made through a proxy in front of the testbed's open
 * registry (so its images are named after the proxy's 127.0.0.1:PORT), installed under a prefix
 * into the target registry; then the proxy is closed, so that the ORIGINAL host is dead, and
 * containerd (ctr --hosts-dir) and podman (CONTAINERS_REGISTRIES_CONF) pull the images by their
 * original names through the generated configuration, with the source digests.
 */
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {mkdtemp, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {after, before, describe, it} from 'node:test'

import {parse as parseToml} from 'smol-toml'
import {parse as parseYaml} from 'yaml'

import {BIN, runCli} from '../helpers/cli.js'
import {FaultProxy} from '../helpers/fault-proxy.js'
import {Testbed, testbed} from '../helpers/testbed.js'

const execFileP = promisify(execFile)
const NAMESPACE = 'mirror-h'
const PREFIX = 'mirror-h'
/** app-b of the testbed, renamed on the target after a host that does not exist here. */
const GHCR_NAME = 'ghcr.io/mirror-h/app-b:1'

let tb: Testbed
let dir: string
let original: string
let proxyHost: string

function airlock(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(args, {cwd: dir, env: {...tb.processEnv, AIRLOCK_STATE_FILE: path.join(dir, 'installed.json'), ...env}})
}

/** The same, without blocking this process: the in-process proxy must answer meanwhile. */
async function airlockAsync(args: string[]): Promise<void> {
  await execFileP(process.execPath, [BIN, ...args], {cwd: dir, env: {...tb.processEnv, AIRLOCK_STATE_FILE: path.join(dir, 'installed.json')}, timeout: 300_000})
}

const ctr = (...args: string[]) => execFileP('ctr', ['-a', tb.containerdAddress, '-n', NAMESPACE, ...args], {env: tb.processEnv, timeout: 120_000})

describe('mirror-config: pull by the original names from the mirror', {timeout: 600_000}, () => {
  before(async () => {
    tb = await testbed()
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-mirror-h-'))
    assert.equal(airlock(['key', 'generate', '--name', 'Mirror', '--out', 'release']).code, 0)
    const proxy = await FaultProxy.start(tb.registries.open)
    proxyHost = proxy.host
    original = `${proxyHost}/testbed/app-a:1`
    await writeFile(path.join(dir, 'bundle.yaml'), `apiVersion: airlock/v1
kind: Bundle
metadata: {name: mirror-h, version: 1.0.0}
images:
  - ${original}
  - ref: ${tb.images['app-b'].ref}
    name: ${GHCR_NAME}
`)
    await airlockAsync(['create', 'bundle.yaml', '--sign-key', 'release.key.asc', '-o', 'bundle.tar'])
    const r = airlock(['install', 'bundle.tar', '--key', 'release.pub.asc', '--to', `registry://${tb.registries.target}/${PREFIX}`])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(r.stdout.includes(`next: airlock mirror-config bundle.tar --registry ${tb.registries.target}/${PREFIX} --format containerd|registries.conf|k3s`), r.stdout)
    await proxy.close()
  })
  after(async () => {
    await ctr('images', 'rm', original, GHCR_NAME).catch(() => '')
    await execFileP('podman', ['rmi', '-f', original, GHCR_NAME], {env: tb.processEnv}).catch(() => '')
    await rm(dir, {recursive: true, force: true})
  })

  it('the original host is gone: a pull without the configuration fails', async () => {
    await assert.rejects(ctr('images', 'pull', '--plain-http', original))
  })

  it('containerd: HOST/hosts.toml per upstream host; ctr pulls both images by their original names with the source digests', async () => {
    const r = airlock(['mirror-config', 'bundle.tar', '--key', 'release.pub.asc', '--registry', `${tb.registries.target}/${PREFIX}`, '--format', 'containerd', '-o', 'certs.d'])
    assert.equal(r.code, 0, r.stderr)
    const hostsDir = path.join(dir, 'certs.d')
    assert.deepEqual((await readdir(hostsDir)).sort(), [proxyHost, 'ghcr.io'].sort())
    const t = parseToml(await readFile(path.join(hostsDir, proxyHost, 'hosts.toml'), 'utf8')) as {server: string; host: Record<string, {capabilities: string[]; override_path: boolean}>}
    const url = `http://${tb.registries.target}/v2/${PREFIX}`
    assert.equal(t.server, url)
    assert.deepEqual([...t.host[url].capabilities], ['pull', 'resolve'])
    assert.equal(t.host[url].override_path, true)
    for (const [name, want] of [[original, tb.images['app-a'].digest], [GHCR_NAME, tb.images['app-b'].digest]]) {
      await ctr('images', 'pull', '--hosts-dir', hostsDir, name)
      const line = (await ctr('images', 'ls')).stdout.split('\n').find((l) => l.startsWith(`${name} `))
      assert.ok(line, `${name} not in ctr images ls`)
      assert.equal(line.split(/\s+/)[2], want, name)
    }
  })

  it('podman: the registries.conf drop-in; podman pulls by the original name with the source digest', async () => {
    const r = airlock(['mirror-config', 'bundle.tar', '--key', 'release.pub.asc', '--registry', `${tb.registries.target}/${PREFIX}`, '--format', 'registries.conf', '-o', 'registries.conf.d'])
    assert.equal(r.code, 0, r.stderr)
    const conf = path.join(dir, 'registries.conf.d', 'airlock-mirror-h.conf')
    const t = parseToml(await readFile(conf, 'utf8')) as {registry: {prefix: string; location: string; insecure?: boolean}[]}
    assert.deepEqual(t.registry.map((x) => [x.prefix, x.location, x.insecure]).sort(), [
      [proxyHost, `${tb.registries.target}/${PREFIX}`, true], ['ghcr.io', `${tb.registries.target}/${PREFIX}`, true],
    ].sort())
    const env = {...tb.processEnv, CONTAINERS_REGISTRIES_CONF: conf}
    for (const [name, want] of [[original, tb.images['app-a'].digest], [GHCR_NAME, tb.images['app-b'].digest]]) {
      await execFileP('podman', ['pull', '-q', name], {env, timeout: 120_000})
      const {stdout} = await execFileP('podman', ['image', 'inspect', '--format', '{{.Digest}}', name], {env})
      assert.equal(stdout.trim(), want, name)
    }
  })

  it('k3s and --json: every file with its content, and the images mapped to their mirror names', () => {
    const r = airlock(['mirror-config', 'bundle.tar', '--key', 'release.pub.asc', '--registry', `${tb.registries.target}/${PREFIX}`, '--format', 'k3s', '--ca-file', '/etc/ssl/mirror.pem', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout) as {signed: boolean; files: {path: string; content: string}[]; upstreams: {host: string; images: {name: string; mirror: string}[]}[]}
    assert.equal(j.signed, true)
    assert.deepEqual(j.upstreams.find((u) => u.host === 'ghcr.io')?.images, [{name: GHCR_NAME, mirror: `${tb.registries.target}/${PREFIX}/mirror-h/app-b:1`}])
    const y = parseYaml(j.files[0].content) as {mirrors: Record<string, {endpoint: string[]; rewrite: Record<string, string>}>; configs: Record<string, unknown>}
    assert.deepEqual(y.mirrors[proxyHost], {endpoint: [`http://${tb.registries.target}`], rewrite: {'^(.*)$': `${PREFIX}/$1`}})
    assert.deepEqual(y.configs[tb.registries.target], {tls: {ca_file: '/etc/ssl/mirror.pem'}})
  })

  it('docker: nothing written, what Docker cannot do, and install --to docker instead (exit 0)', async () => {
    const r = airlock(['mirror-config', 'bundle.tar', '--key', 'release.pub.asc', '--registry', `${tb.registries.target}/${PREFIX}`, '--format', 'docker', '-o', 'docker-out'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /registry-mirrors/)
    assert.match(r.stdout, /airlock install bundle\.tar --key KEY --to docker/)
    await assert.rejects(readdir(path.join(dir, 'docker-out')), {code: 'ENOENT'})
  })

  it('the signature is checked as verify checks it', () => {
    assert.equal(airlock(['mirror-config', 'bundle.tar', '--registry', 'reg.local/x', '--format', 'k3s'], {AIRLOCK_TRUSTED_KEYS: ''}).code, 2)
    assert.equal(airlock(['mirror-config', 'bundle.tar', '--allow-unsigned', '--registry', 'reg.local/x', '--format', 'k3s']).code, 0)
    assert.equal(airlock(['key', 'generate', '--name', 'Other', '--out', 'other']).code, 0)
    const wrong = airlock(['mirror-config', 'bundle.tar', '--key', 'other.pub.asc', '--registry', 'reg.local/x', '--format', 'k3s', '--json'])
    assert.equal(wrong.code, 3, wrong.stdout)
    const bad = airlock(['mirror-config', 'bundle.tar', '--key', 'release.pub.asc', '--registry', 'reg.local/x', '--format', 'k3s', '--ca-file', 'relative.pem', '--json'])
    assert.equal(bad.code, 2)
    assert.equal((JSON.parse(bad.stdout) as {error: {code: string}}).error.code, 'mirror.ca_file')
  })
})
