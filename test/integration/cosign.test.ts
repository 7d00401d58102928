/**
 * Co-signing a 1 GiB archive: `airlock sign` reads and writes only a few kilobytes (counted by
 * the kernel for this process, /proc/self/io), and stock gpg still verifies the doubly signed
 * checksums.sha256 with both keys.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdir, mkdtemp, open, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import * as openpgp from 'openpgp'

import {cosignArchive} from '../../src/create/cosign.js'
import {SIGNATURE_SLOT} from '../../src/transports/archive/metadata.js'
import {verifyArchive} from '../../src/verify/verify.js'
import {splitTar, syntheticArchive} from '../helpers/archive.js'

const GiB = 1024 * 1024 * 1024

/** Bytes this process has read and written through system calls so far (Linux). */
async function ioCounters(): Promise<{read: number; written: number}> {
  const text = await readFile('/proc/self/io', 'utf8')
  const get = (k: string) => Number(new RegExp(`^${k}: (\\d+)$`, 'm').exec(text)![1])
  return {read: get('rchar'), written: get('wchar')}
}

describe('co-signing a 1 GiB archive', () => {
  let dir: string
  const keys: Record<string, {priv: openpgp.PrivateKey; pub: string; pubFile: string}> = {}
  let archive: string

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-cosign-big-'))
    for (const name of ['alice', 'bob']) {
      const {privateKey, publicKey} = await openpgp.generateKey({type: 'ecc', curve: 'curve25519Legacy', userIDs: [{name, email: `${name}@example.test`}], format: 'armored'})
      const pubFile = path.join(dir, `${name}.pub.asc`)
      await writeFile(pubFile, publicKey)
      keys[name] = {priv: await openpgp.readPrivateKey({armoredKey: privateKey}), pub: publicKey, pubFile}
    }
    archive = path.join(dir, 'big.tar')
    await syntheticArchive(path.join(dir, 'blobs'), archive, [{name: 'example.test/big:1', layers: [Buffer.alloc(GiB)]}], {key: keys.alice.priv})
    await rm(path.join(dir, 'blobs'), {recursive: true, force: true})
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('adds the signature reading and writing a few kilobytes, and both keys then meet --threshold 2', async () => {
    const before = await ioCounters()
    const r = await cosignArchive({archive, signingKey: keys.bob.priv})
    const after = await ioCounters()
    assert.equal(r.signatures.length, 2)
    const written = after.written - before.written
    const read = after.read - before.read
    assert.ok(written >= SIGNATURE_SLOT && written < 64 * 1024, `wrote ${written} bytes`)
    assert.ok(read < 256 * 1024, `read ${read} bytes`)
    const v = await verifyArchive({archive, keys: [keys.alice.pubFile, keys.bob.pubFile], threshold: 2})
    assert.equal(v.signers?.length, 2)
  })

  it('stock gpg --verify checks the doubly signed checksums with both keys', async () => {
    const fh = await open(archive, 'r')
    const start = Buffer.alloc(64 * 1024)
    await fh.read(start, 0, start.length, 0)
    await fh.close()
    const head = splitTar(start)
    const out = path.join(dir, 'extracted')
    await mkdir(out, {recursive: true})
    for (const e of head.filter((x) => x.name.startsWith('checksums.sha256'))) await writeFile(path.join(out, e.name), e.data)
    const home = path.join(dir, 'gnupg')
    await mkdir(home, {mode: 0o700})
    const gpg = (args: string[]) => execFileSync('gpg', ['--homedir', home, '--batch', ...args], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
    gpg(['--import', keys.alice.pubFile, keys.bob.pubFile])
    const status = execFileSync('gpg', ['--homedir', home, '--batch', '--status-fd', '1', '--verify', path.join(out, 'checksums.sha256.asc'), path.join(out, 'checksums.sha256')], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
    assert.equal(status.split('\n').filter((l) => l.startsWith('[GNUPG:] GOODSIG')).length, 2, status)
  })
})
