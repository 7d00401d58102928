import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {after, before, describe, it} from 'node:test'

import {dataOffset, joinTar, splitTar} from '../helpers/archive.js'
import {registryTags} from '../helpers/registry-state.js'
import {Testbed, testbed} from '../helpers/testbed.js'
import {runCli} from '../helpers/cli.js'

const execFileP = promisify(execFile)

let tb: Testbed
let dir: string
let archive: string
let good: Buffer
let pub: string

function airlock(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(args, {cwd: dir, env: {...tb.processEnv, ...env}, timeout: 300_000})
}

async function headDigest(host: string, repo: string, ref: string): Promise<string | null> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, {method: 'HEAD', headers: {Accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json'}})
  return res.ok ? res.headers.get('docker-content-digest') : null
}

describe('airlock verify / inspect / install (registry and OCI targets)', {timeout: 600_000}, () => {
  before(async () => {
    tb = await testbed()
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-install-test-'))
    const k = airlock(['key', 'generate', '--name', 'Install Test', '--out', path.join(dir, 'release')])
    assert.equal(k.code, 0, k.stderr)
    pub = path.join(dir, 'release.pub.asc')
    await writeFile(path.join(dir, 'bundle.yaml'), `apiVersion: airlock/v1
kind: Bundle
metadata: {name: install-test, version: 2.0.0}
images:
  - 127.0.0.1:5301/testbed/app-a:1
  - 127.0.0.1:5301/testbed/app-b:1
  - ref: 127.0.0.1:5301/testbed/multi:1
    platforms: all
`)
    archive = path.join(dir, 'bundle.tar')
    const r = airlock(['create', 'bundle.yaml', '--sign-key', 'release.key.asc', '-o', archive, '--cache-dir', path.join(dir, 'cache')])
    assert.equal(r.code, 0, r.stderr)
    good = await readFile(archive)
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('verify: OK with the trusted key, --json report with signer and images', () => {
    const r = airlock(['verify', archive, '--key', pub, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout) as {ok: boolean; signed: boolean; signer: {userId: string; fingerprint: string}; images: {name: string}[]; blobs: number}
    assert.equal(j.ok, true)
    assert.equal(j.signer.userId, 'Install Test')
    assert.match(j.signer.fingerprint, /^[0-9A-F]{40}$/)
    assert.deepEqual(j.images.map((i) => i.name), ['127.0.0.1:5301/testbed/app-a:1', '127.0.0.1:5301/testbed/app-b:1', '127.0.0.1:5301/testbed/multi:1'])
  })

  it('inspect: signer, images, shared blobs and dedupe savings from the metadata alone', () => {
    const r = airlock(['inspect', archive, '--key', pub, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout) as {signature: {status: string}; images: {name: string; platforms: string[]; sharedBlobs: number}[]; blobs: {saved: number; shared: number}}
    assert.equal(j.signature.status, 'verified')
    assert.deepEqual(j.images[2].platforms, ['linux/amd64', 'linux/arm64/v8'])
    assert.ok(j.blobs.shared > 0 && j.blobs.saved > 0)
    // Only the metadata entries are read: a damaged blob region does not matter to inspect.
    const cut = path.join(dir, 'inspect-cut.tar')
    return writeFile(cut, good.subarray(0, dataOffset(good, 'oci-layout'))).then(() => {
      const c = airlock(['inspect', cut])
      assert.equal(c.code, 0, c.stderr)
      assert.match(c.stdout, /install-test 2\.0\.0/)
      assert.match(c.stdout, /signature: unverified key [0-9A-F]{16}/)
    })
  })

  it('install --to registry://HOST/PREFIX pushes every image with its signed digest, tags last; rerun skips', async () => {
    const target = `registry://${tb.registries.target}/mirror`
    const r = airlock(['install', archive, '--key', pub, '--to', target, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout) as {images: {name: string; digest: string; confirmed: string}[]}
    assert.deepEqual(j.images.map((i) => i.name), [
      `${tb.registries.target}/mirror/testbed/app-a:1`, `${tb.registries.target}/mirror/testbed/app-b:1`, `${tb.registries.target}/mirror/testbed/multi:1`,
    ])
    for (const [name, img] of [['app-a', tb.images['app-a']], ['app-b', tb.images['app-b']], ['multi', tb.images.multi]] as const) {
      assert.equal(await headDigest(tb.registries.target, `mirror/testbed/${name}`, '1'), img.digest, `${name} pulled back with the signed digest`)
    }
    // both platforms of the index are pullable by digest
    for (const m of tb.images.multi.manifests) assert.equal(await headDigest(tb.registries.target, 'mirror/testbed/multi', m.digest), m.digest)
    // skopeo agrees
    const {stdout} = await execFileP('skopeo', ['inspect', '--tls-verify=false', `docker://${tb.registries.target}/mirror/testbed/app-b:1`], {env: tb.processEnv})
    assert.equal((JSON.parse(stdout) as {Digest: string}).Digest, tb.images['app-b'].digest)
    const again = airlock(['install', archive, '--key', pub, '--to', target, '--json'])
    assert.equal(again.code, 0, again.stderr)
  })

  it('install --to oci:DIR writes a layout skopeo reads, and merges into an existing one; --only installs a subset', async () => {
    const oci = path.join(dir, 'oci')
    const first = airlock(['install', archive, '--key', pub, '--to', `oci:${oci}`, '--only', 'app-a:1'])
    assert.equal(first.code, 0, first.stderr)
    let index = JSON.parse(await readFile(path.join(oci, 'index.json'), 'utf8')) as {manifests: {digest: string; annotations: Record<string, string>}[]}
    assert.deepEqual(index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']), ['127.0.0.1:5301/testbed/app-a:1'])
    const blobsAfterFirst = (await readdir(path.join(oci, 'blobs', 'sha256'))).length
    assert.equal(blobsAfterFirst, tb.images['app-a'].manifests[0].layers.length + 2, '--only copies only the blobs of the selected image')
    const second = airlock(['install', archive, '--key', pub, '--to', `oci:${oci}`])
    assert.equal(second.code, 0, second.stderr)
    index = JSON.parse(await readFile(path.join(oci, 'index.json'), 'utf8')) as typeof index
    assert.equal(index.manifests.length, 3)
    const {stdout} = await execFileP('skopeo', ['inspect', `oci:${oci}:127.0.0.1:5301/testbed/app-b:1`])
    assert.equal((JSON.parse(stdout) as {Digest: string}).Digest, tb.images['app-b'].digest)
  })

  it('--dry-run verifies and lists, and changes nothing', async () => {
    const before = await registryTags(tb.registries.target)
    const r = airlock(['install', archive, '--key', pub, '--to', `registry://${tb.registries.target}/dryrun`, '--dry-run', '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as {dryRun: boolean; images: unknown[]}).images.length, 3)
    assert.equal(await registryTags(tb.registries.target), before)
  })

  it('--only with an unknown name is a clear error with a suggestion', () => {
    const r = airlock(['install', archive, '--key', pub, '--to', `oci:${path.join(dir, 'never')}`, '--only', 'app-x:1'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--only app-x:1: no such image in the bundle/)
    assert.ok(!existsSync(path.join(dir, 'never')))
  })

  describe('tamper matrix: refused, entry named, target exactly as before', () => {
    const flip = (at: number) => { const b = Buffer.from(good); b[at] ^= 0x20; return b }
    const entries = () => splitTar(good)
    const cases: [string, () => Buffer, RegExp, {key?: string | null}?][] = [
      ['one byte flipped in a blob', () => flip(dataOffset(good, entries()[8].name) + 100), /blobs\/sha256\/[a-f0-9]{64}: content does not match its signed sha256/],
      ['one byte flipped in the last blob', () => flip(dataOffset(good, entries().at(-1)!.name) + 1), /blobs\/sha256\/[a-f0-9]{64}: content does not match/],
      ['one byte flipped in index.json', () => flip(dataOffset(good, 'index.json') + 20), /index\.json: content does not match its signed sha256/],
      ['one byte flipped in manifest.json', () => flip(dataOffset(good, 'manifest.json') + 10), /manifest\.json: content does not match its signed sha256/],
      ['one byte flipped in airlock.json', () => flip(dataOffset(good, 'airlock.json') + 30), /airlock\.json: content does not match its signed sha256/],
      ['one byte flipped in checksums.sha256', () => flip(dataOffset(good, 'checksums.sha256') + 3), /checksums\.sha256\.asc: signature by key [0-9A-F]+ does not verify/],
      ['one byte flipped in the signature', () => flip(dataOffset(good, 'checksums.sha256.asc') + 100), /checksums\.sha256\.asc: /],
      ['a blob removed', () => joinTar(entries().filter((_, i) => i !== 9)), /blobs\/sha256\/[a-f0-9]{64}: is listed in the signed checksums.sha256 but missing/],
      ['an extra entry added', () => joinTar([...entries(), {name: 'extra.sh', data: Buffer.from('echo pwned')}]), /extra\.sh.*not a name this format allows/],
      ['an entry renamed to ../x', () => joinTar(entries().map((e, i) => (i === 7 ? {...e, name: '../x'} : e))), /"\.\.\/x".*"\.\." are not allowed|\.\.\/x: path names with/],
      ['an entry renamed to an absolute path', () => joinTar(entries().map((e, i) => (i === 7 ? {...e, name: '/tmp/x'} : e))), /\/tmp\/x.*absolute path names are not allowed/],
      ['a symlink entry', () => joinTar(entries().map((e, i) => (i === 7 ? {...e, type: '2', data: Buffer.alloc(0)} : e))), /is a symbolic link; only regular files are allowed/],
      ['a truncated archive', () => good.subarray(0, good.length - 40_000), /truncated/],
      ['no --key given', () => good, /no trusted key given/, {key: null}],
      ['signed by an untrusted key', () => good, /signed by key [0-9A-F]+, which is not among the trusted keys/, {key: 'other'}],
    ]
    for (const [title, make, message, opts] of cases) {
      it(title, async () => {
        const p = path.join(dir, `tampered-${title.replace(/\W+/g, '-')}.tar`)
        await writeFile(p, make())
        let keyArgs: string[] = ['--key', pub]
        if (opts?.key === null) keyArgs = []
        if (opts?.key === 'other') {
          const o = airlock(['key', 'generate', '--name', 'Mallory', '--out', path.join(dir, 'mallory'), '--force'])
          assert.equal(o.code, 0)
          keyArgs = ['--key', path.join(dir, 'mallory.pub.asc')]
        }
        const v = airlock(['verify', p, ...keyArgs])
        assert.notEqual(v.code, 0, `verify accepted: ${title}`)
        assert.match(v.stderr, message)
        assert.doesNotMatch(v.stderr, /\n\s+at /)
        const before = await registryTags(tb.registries.target)
        const oci = path.join(dir, `oci-tamper-${title.replace(/\W+/g, '-')}`)
        const i = airlock(['install', p, ...keyArgs, '--to', `registry://${tb.registries.target}/tampered`])
        assert.notEqual(i.code, 0)
        assert.match(i.stderr, message)
        assert.equal(await registryTags(tb.registries.target), before, 'no new tag or repository on the target registry')
        const o = airlock(['install', p, ...keyArgs, '--to', `oci:${oci}`])
        assert.notEqual(o.code, 0)
        assert.ok(!existsSync(oci), 'no OCI layout left behind')
      })
    }
  })
})
