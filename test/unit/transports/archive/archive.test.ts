import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {createReadStream} from 'node:fs'
import {mkdtemp, readFile, writeFile, readdir} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'
import {after, before, describe, it} from 'node:test'

import * as openpgp from 'openpgp'
import tarFs from 'tar-fs'

import {VerifyError} from '../../../../src/core/errors.js'
import {generateKeyPair, loadPrivateKey, loadTrustedKeys} from '../../../../src/sign/keys.js'
import {ArchiveSink, readArchive} from '../../../../src/transports/archive/reader.js'
import type {AirlockMetadata} from '../../../../src/transports/archive/metadata.js'
import {dataOffset, joinTar, randomLayer, splitTar, syntheticArchive} from '../../../helpers/archive.js'

let dir: string
let key: openpgp.PrivateKey
let trusted: openpgp.Key[]
let untrusted: openpgp.PrivateKey
let good: Buffer
let goodPath: string
const shared = randomLayer(3000)

async function expectRefused(buf: Buffer, code: RegExp | string, entry: RegExp | string, opts: {keys?: openpgp.Key[]; allowUnsigned?: boolean} = {}) {
  const p = path.join(dir, `t-${Math.random().toString(36).slice(2)}.tar`)
  await writeFile(p, buf)
  const events: string[] = []
  const sink: ArchiveSink = {
    async begin() { events.push('begin') },
    async blob(d, _s, data) { for await (const _ of data) { /* consume */ } events.push(`blob ${d}`) },
    async commit() { events.push('commit') },
    async abort() { events.push('abort') },
  }
  await assert.rejects(readArchive([p], {trustedKeys: opts.keys ?? trusted, allowUnsigned: opts.allowUnsigned, sink}), (e: unknown) => {
    assert.ok(e instanceof VerifyError || (e as {code?: string}).code, `unexpected error ${String(e)}`)
    const err = e as VerifyError
    if (typeof code === 'string') assert.equal(err.code, code, err.message)
    else assert.match(err.code, code, err.message)
    assert.match(err.message, typeof entry === 'string' ? new RegExp(entry.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : entry)
    return true
  })
  assert.ok(!events.includes('commit'), 'a refused archive must never be committed')
  return events
}

describe('archive format v1: writer and streaming verifier', () => {
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-archive-test-'))
    const kp = await generateKeyPair({name: 'Archive Test', email: 'test@airlock.invalid'})
    await writeFile(path.join(dir, 'k.asc'), kp.privateKeyArmored)
    await writeFile(path.join(dir, 'k.pub.asc'), kp.publicKeyArmored)
    key = await loadPrivateKey(path.join(dir, 'k.asc'))
    trusted = await loadTrustedKeys([path.join(dir, 'k.pub.asc')])
    const other = await generateKeyPair({name: 'Mallory'})
    await writeFile(path.join(dir, 'other.asc'), other.privateKeyArmored)
    untrusted = await loadPrivateKey(path.join(dir, 'other.asc'))
    goodPath = path.join(dir, 'good.tar')
    await syntheticArchive(path.join(dir, 'blobs'), goodPath, [
      {name: 'example.com/a/one:1', layers: [shared, randomLayer(5000)]},
      {name: 'example.com/a/two:1', layers: [shared, randomLayer(7000)]},
    ], {key, epoch: 1700000000})
    good = await readFile(goodPath)
  })
  after(async () => {
    execFileSync('rm', ['-rf', dir])
  })

  it('puts metadata first, blobs sorted and each exactly once', () => {
    const names = splitTar(good).map((e) => e.name)
    assert.deepEqual(names.slice(0, 6), ['airlock.json', 'checksums.sha256', 'checksums.sha256.asc', 'oci-layout', 'index.json', 'manifest.json'])
    const blobs = names.slice(6)
    assert.ok(blobs.every((n) => /^blobs\/sha256\/[a-f0-9]{64}$/.test(n)))
    assert.deepEqual(blobs, [...blobs].sort())
    assert.equal(new Set(blobs).size, blobs.length)
    // shared layer + 2 own layers + 2 configs + 2 manifests
    assert.equal(blobs.length, 7)
  })

  it('verifies a good archive and feeds a sink every blob, then commits', async () => {
    const got: string[] = []
    let committed = false
    const r = await readArchive([goodPath], {trustedKeys: trusted, sink: {
      async blob(d, _s, data) { for await (const _ of data) { /* consume */ } got.push(d) },
      async commit() { committed = true },
    }})
    assert.equal(r.signed, true)
    assert.equal(r.signer?.userId, 'Archive Test <test@airlock.invalid>')
    assert.equal(got.length, 7)
    assert.ok(committed)
  })

  it('is sha256sum -c and gpg --verify compatible once extracted (trusted extraction with tar-fs)', async () => {
    const out = path.join(dir, 'extracted')
    await pipeline(createReadStream(goodPath), tarFs.extract(out))
    assert.ok((await readdir(path.join(out, 'blobs', 'sha256'))).length === 7)
    const sums = execFileSync('sha256sum', ['-c', 'checksums.sha256'], {cwd: out, encoding: 'utf8'})
    assert.match(sums, /airlock\.json: OK/)
    assert.doesNotMatch(sums, /FAILED/)
    const gnupg = await mkdtemp(path.join(os.tmpdir(), 'airlock-gpg-'))
    execFileSync('gpg', ['--batch', '--quiet', '--import', path.join(dir, 'k.pub.asc')], {env: {...process.env, GNUPGHOME: gnupg}, stdio: 'pipe'})
    const v = execFileSync('gpg', ['--batch', '--status-fd', '1', '--verify', 'checksums.sha256.asc', 'checksums.sha256'], {cwd: out, env: {...process.env, GNUPGHOME: gnupg}, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
    assert.match(v, /\[GNUPG:\] GOODSIG/)
    execFileSync('rm', ['-rf', gnupg])
  })

  it('signatures verify with Sequoia (sqop verify), and keys generated by gpg sign archives airlock verifies', async () => {
    const out = path.join(dir, 'sq')
    await pipeline(createReadStream(goodPath), tarFs.extract(out))
    const cert = path.join(dir, 'k.pub.asc')
    const sq = execFileSync('sqop', ['verify', path.join(out, 'checksums.sha256.asc'), cert], {input: await readFile(path.join(out, 'checksums.sha256')), encoding: 'utf8'})
    assert.match(sq, /[0-9A-F]{40}/i, 'sqop prints the verifying key')
    // a key made by gpg (ed25519, no passphrase), exported armored
    const gnupg = await mkdtemp(path.join(os.tmpdir(), 'airlock-gpgkey-'))
    const env = {...process.env, GNUPGHOME: gnupg}
    execFileSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', 'GPG Made <gpg@airlock.invalid>', 'ed25519', 'sign', 'never'], {env, stdio: 'pipe'})
    await writeFile(path.join(dir, 'gpg.sec.asc'), execFileSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--armor', '--export-secret-keys'], {env}))
    await writeFile(path.join(dir, 'gpg.pub.asc'), execFileSync('gpg', ['--batch', '--armor', '--export'], {env}))
    const gpgKey = await loadPrivateKey(path.join(dir, 'gpg.sec.asc'))
    const p = path.join(dir, 'gpg-signed.tar')
    await syntheticArchive(path.join(dir, 'blobs-gpg'), p, [{name: 'example.com/a/one:1', layers: [shared]}], {key: gpgKey, epoch: 1700000000})
    const r = await readArchive([p], {trustedKeys: await loadTrustedKeys([path.join(dir, 'gpg.pub.asc')])})
    assert.equal(r.signer?.userId, 'GPG Made <gpg@airlock.invalid>')
    execFileSync('rm', ['-rf', gnupg])
  })

  it('is deterministic: same content, key and epoch give identical bytes', async () => {
    const again = path.join(dir, 'again.tar')
    // rebuild from the same blobs via a second synthetic run with the same inputs
    const entries = splitTar(good)
    const meta = JSON.parse(entries[0].data.toString()) as AirlockMetadata
    const {writeArchive} = await import('../../../../src/transports/archive/writer.js')
    const blobs = entries.filter((e) => e.name.startsWith('blobs/')).map((e) => ({digest: `sha256:${e.name.slice(13)}`, size: e.data.length, path: path.join(dir, 'blobs', e.name.slice(13))}))
    await writeArchive(again, {metadata: meta, blobs, signingKey: key, epoch: 1700000000})
    assert.ok((await readFile(again)).equals(good))
  })

  // --- tamper matrix: each refused with the entry named, never committed ---
  const flip = (buf: Buffer, at: number) => { const b = Buffer.from(buf); b[at] ^= 0x01; return b }

  it('refuses one byte flipped in a blob', async () => {
    const last = splitTar(good).at(-1)!
    await expectRefused(flip(good, dataOffset(good, last.name) + 10), 'archive.digest_mismatch', last.name)
  })
  for (const name of ['index.json', 'manifest.json', 'airlock.json', 'checksums.sha256']) {
    it(`refuses one byte flipped in ${name}`, async () => {
      const events = await expectRefused(flip(good, dataOffset(good, name) + 5), /archive\.|signature\./, name === 'checksums.sha256' ? 'checksums.sha256' : name)
      assert.ok(!events.includes('begin'), 'metadata tampering must be caught before any blob reaches the target')
    })
  }
  it('refuses one byte flipped in the signature', async () => {
    const at = dataOffset(good, 'checksums.sha256.asc') + 80
    await expectRefused(flip(good, at), /signature\./, 'checksums.sha256.asc')
  })
  it('refuses a removed blob', async () => {
    const entries = splitTar(good)
    const victim = entries[8].name
    await expectRefused(joinTar(entries.filter((e) => e.name !== victim)), 'archive.missing_entry', victim)
  })
  it('refuses an extra entry', async () => {
    const entries = splitTar(good)
    const extra = {name: `blobs/sha256/${'f'.repeat(64)}`, data: Buffer.from('x')}
    await expectRefused(joinTar([...entries, extra]), 'archive.unexpected_entry', extra.name)
    await expectRefused(joinTar([...entries.slice(0, 6), {name: 'README', data: Buffer.from('hi')}, ...entries.slice(6)]), 'archive.unexpected_entry', 'README')
  })
  it('refuses an entry renamed to ../x or an absolute path', async () => {
    const entries = splitTar(good)
    await expectRefused(joinTar(entries.map((e, i) => (i === 7 ? {...e, name: '../x'} : e))), 'archive.unexpected_entry', /\.\.\/x.*not allowed/)
    await expectRefused(joinTar(entries.map((e, i) => (i === 7 ? {...e, name: '/etc/x'} : e))), 'archive.unexpected_entry', /\/etc\/x.*absolute/)
  })
  it('refuses a symlink entry', async () => {
    const entries = splitTar(good)
    await expectRefused(joinTar(entries.map((e, i) => (i === 7 ? {...e, type: '2', data: Buffer.alloc(0)} : e))), 'archive.bad_entry_type', 'symbolic link')
  })
  it('refuses a truncated archive', async () => {
    await expectRefused(good.subarray(0, good.length - 3000), /archive\.(truncated|missing_entry|bad_header)/, /truncated|missing|ustar/)
    await expectRefused(good.subarray(0, 700), 'archive.truncated', /truncated/)
  })
  it('refuses an archive signed by an untrusted key', async () => {
    const p = path.join(dir, 'evil.tar')
    await syntheticArchive(path.join(dir, 'blobs2'), p, [{name: 'example.com/a/one:1', layers: [shared]}], {key: untrusted})
    await expectRefused(await readFile(p), 'signature.untrusted', /not among the trusted keys/)
  })
  it('refuses when no --key is given, and an unsigned archive without --allow-unsigned', async () => {
    await expectRefused(good, 'signature.no_keys', /--key/, {keys: []})
    const p = path.join(dir, 'unsigned.tar')
    await syntheticArchive(path.join(dir, 'blobs3'), p, [{name: 'example.com/a/one:1', layers: [shared]}])
    await expectRefused(await readFile(p), 'signature.missing', /unsigned/)
    const ok = await readArchive([p], {trustedKeys: [], allowUnsigned: true})
    assert.equal(ok.signed, false)
  })
  it('refuses an expired bundle', async () => {
    const p = path.join(dir, 'expired.tar')
    await syntheticArchive(path.join(dir, 'blobs4'), p, [{name: 'example.com/a/one:1', layers: [shared]}], {key, expires: '2001-01-01T00:00:00.000Z'})
    await expectRefused(await readFile(p), 'bundle.expired', /expired/)
  })
  it('refuses duplicate and reordered blobs', async () => {
    const entries = splitTar(good)
    await expectRefused(joinTar([...entries.slice(0, 8), entries[7], ...entries.slice(8)]), 'archive.duplicate_entry', entries[7].name)
    const swapped = [...entries.slice(0, 6), entries[7], entries[6], ...entries.slice(8)]
    await expectRefused(joinTar(swapped), 'archive.bad_order', entries[6].name)
  })
  it('refuses data after the end-of-archive marker', async () => {
    await expectRefused(Buffer.concat([good, Buffer.from('garbage'), Buffer.alloc(505)]), 'archive.trailing_data', /after the end-of-archive/)
  })
})
