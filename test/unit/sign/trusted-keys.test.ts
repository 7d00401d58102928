/**
 * Trusted key files: every armored block and binary concatenations are read, and revocation
 * certificates are honoured wherever they stand (a second block, their own --key file, a key
 * directory, binary form). No services: keys and archives are made in memory.
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {before, describe, test} from 'node:test'

import * as openpgp from 'openpgp'

import {InputError, VerifyError} from '../../../src/core/errors.js'
import {loadTrustedKeys} from '../../../src/sign/keys.js'
import {readArchive} from '../../../src/transports/archive/reader.js'
import {verifyArchive} from '../../../src/verify/verify.js'
import {randomLayer, syntheticArchive} from '../../helpers/archive.js'

interface Made {pub: string; priv: string; rev: string; key: openpgp.PrivateKey}

async function makeKey(name: string): Promise<Made> {
  const {privateKey, publicKey, revocationCertificate} = await openpgp.generateKey({type: 'ecc', curve: 'curve25519Legacy', userIDs: [{name}], format: 'armored', date: new Date(0)})
  return {pub: publicKey, priv: privateKey, rev: revocationCertificate, key: await openpgp.readPrivateKey({armoredKey: privateKey})}
}

const dearmor = async (armored: string) => Buffer.from((await openpgp.unarmor(armored)).data as Uint8Array)

async function verifyWith(archive: string, keyPaths: string[]) {
  return readArchive([archive], {trustedKeys: loadTrustedKeys(keyPaths)})
}

describe('trusted key files', () => {
  let dir: string
  let a: Made
  let b: Made
  let signedByA: string
  let signedByB: string
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-keys-'))
    ;[a, b] = await Promise.all([makeKey('A'), makeKey('B')])
    signedByA = path.join(dir, 'a.tar')
    signedByB = path.join(dir, 'b.tar')
    const images = [{name: 'example.com/x:1', layers: [randomLayer(3000)]}]
    await syntheticArchive(path.join(dir, 'blobs-a'), signedByA, images, {key: a.key})
    await syntheticArchive(path.join(dir, 'blobs-b'), signedByB, images, {key: b.key})
  })

  const write = async (name: string, data: string | Buffer) => {
    const p = path.join(dir, name)
    await mkdir(path.dirname(p), {recursive: true})
    await writeFile(p, data)
    return p
  }

  const refusedAsRevoked = async (archive: string, keys: string[]) => {
    await assert.rejects(verifyWith(archive, keys), (e: unknown) => {
      assert.ok(e instanceof VerifyError, String(e))
      assert.equal(e.exitCode, 3)
      assert.match(e.message, /revoked/i)
      return true
    })
  }

  test('the key alone verifies (the baseline the revocation cases change)', async () => {
    const r = await verifyWith(signedByA, [await write('a-only.asc', a.pub)])
    assert.equal(r.signer?.fingerprint, (await openpgp.readKey({armoredKey: a.pub})).getFingerprint().toUpperCase())
  })

  test('a revocation as a second armored block is honoured', async () => {
    await refusedAsRevoked(signedByA, [await write('a-and-rev.asc', a.pub + a.rev)])
  })

  test('a revocation in its own --key file is honoured', async () => {
    await refusedAsRevoked(signedByA, [await write('a.pub.asc', a.pub), await write('a.rev.asc', a.rev)])
  })

  test('a revocation inside a key directory is honoured', async () => {
    await write('keydir/a.pub.asc', a.pub)
    await write('keydir/a.rev', a.rev)
    await refusedAsRevoked(signedByA, [path.join(dir, 'keydir')])
  })

  test('a revocation in binary form, concatenated after the key, is honoured', async () => {
    await refusedAsRevoked(signedByA, [await write('a-and-rev.gpg', Buffer.concat([await dearmor(a.pub), await dearmor(a.rev)]))])
  })

  test('a second key appended as its own block is trusted', async () => {
    const r = await verifyWith(signedByB, [await write('a-then-b.asc', a.pub + '\n' + b.pub)])
    assert.equal(r.signer?.fingerprint, (await openpgp.readKey({armoredKey: b.pub})).getFingerprint().toUpperCase())
  })

  test('a revocation of another key does not touch the signer', async () => {
    const r = await verifyWith(signedByB, [await write('b-and-a-rev.asc', b.pub + a.rev)])
    assert.ok(r.signed)
  })

  test('content outside the blocks is refused (exit 2), described, never quoted', async () => {
    const p = await write('leftover.asc', a.pub + 'root:$6$secret-hash:19000:0:99999:7:::\n')
    await assert.rejects(loadTrustedKeys([p]), (e: unknown) => {
      assert.ok(e instanceof InputError, String(e))
      assert.equal(e.code, 'key.leftover')
      assert.doesNotMatch(e.message, /secret-hash/)
      return true
    })
  })

  test('a secret key given as a trusted key is used as its public key, with a warning', async () => {
    const warnings: string[] = []
    const keys = await loadTrustedKeys([await write('a.key.asc', a.priv)], {warn: (m) => warnings.push(m)})
    assert.equal(keys.length, 1)
    assert.equal(keys[0].isPrivate(), false)
    assert.equal(warnings.length, 1)
    assert.match(warnings[0], /secret key/)
  })

  test('verify says so when a secret key is given as the trusted key, and still verifies with its public half', async () => {
    const warnings: string[] = []
    const r = await verifyArchive({archive: signedByA, keys: [await write('a-secret.asc', a.priv)], warn: (m) => warnings.push(m)})
    assert.ok(r.signed)
    assert.deepEqual(warnings.map((w) => /^WARNING: .*a-secret\.asc holds a secret key/.test(w)), [true])
  })
})
