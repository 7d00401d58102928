/**
 * Co-signing: `airlock sign` adds a signature by another key in place, and --threshold N asks for
 * N distinct trusted signers. Archives made in memory; no services.
 */
import assert from 'node:assert/strict'
import {copyFile, mkdtemp, readFile, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {before, describe, it} from 'node:test'

import * as openpgp from 'openpgp'

import {AirlockError, VerifyError} from '../../../src/core/errors.js'
import {cosignArchive} from '../../../src/create/cosign.js'
import {SIGNATURE_SLOT} from '../../../src/transports/archive/metadata.js'
import {inspectArchive} from '../../../src/verify/inspect.js'
import {verifyArchive} from '../../../src/verify/verify.js'
import {dataOffset, randomLayer, syntheticArchive} from '../../helpers/archive.js'

const FIXTURE_V1 = path.resolve(import.meta.dirname, '../../fixtures/format-v1')

interface Key {priv: openpgp.PrivateKey; pubFile: string; fingerprint: string}

describe('co-signing and --threshold', () => {
  let dir: string
  let alice: Key
  let bob: Key
  let signedByAlice: string

  const makeKey = async (name: string): Promise<Key> => {
    const {privateKey, publicKey} = await openpgp.generateKey({type: 'ecc', curve: 'curve25519Legacy', userIDs: [{name}], format: 'armored', date: new Date(0)})
    const pubFile = path.join(dir, `${name}.pub.asc`)
    await writeFile(pubFile, publicKey)
    const priv = await openpgp.readPrivateKey({armoredKey: privateKey})
    return {priv, pubFile, fingerprint: priv.getFingerprint().toUpperCase()}
  }
  /** A copy of the archive signed by Alice, to sign further. */
  const copy = async (name: string) => {
    const p = path.join(dir, name)
    await copyFile(signedByAlice, p)
    return p
  }
  const rejectsWith = (p: Promise<unknown>, code: string) => assert.rejects(p, (e: unknown) => e instanceof AirlockError && e.code === code)

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-cosign-'))
    alice = await makeKey('alice')
    bob = await makeKey('bob')
    signedByAlice = path.join(dir, 'alice.tar')
    await syntheticArchive(path.join(dir, 'blobs'), signedByAlice, [{name: 'example.test/app:1', layers: [randomLayer(200_000)]}], {key: alice.priv})
  })

  it('signed by Alice and Bob: --threshold 2 passes with both trusted, and both are reported', async () => {
    const archive = await copy('both.tar')
    const r = await cosignArchive({archive, signingKey: bob.priv, keys: [alice.pubFile]})
    assert.equal(r.signatures.length, 2)
    assert.deepEqual(r.verified?.map((s) => s.fingerprint), [alice.fingerprint])
    const v = await verifyArchive({archive, keys: [alice.pubFile, bob.pubFile], threshold: 2})
    assert.deepEqual(v.signers?.map((s) => s.fingerprint).sort(), [alice.fingerprint, bob.fingerprint].sort())
    // One trusted key is enough without a threshold; with --threshold 2 it is not.
    assert.equal((await verifyArchive({archive, keys: [alice.pubFile]})).signer?.fingerprint, alice.fingerprint)
    await rejectsWith(verifyArchive({archive, keys: [alice.pubFile], threshold: 2}), 'signature.threshold')
  })

  it('one key signing twice counts once', async () => {
    const archive = await copy('twice.tar')
    await cosignArchive({archive, signingKey: alice.priv, date: new Date(1000)})
    await rejectsWith(verifyArchive({archive, keys: [alice.pubFile, bob.pubFile], threshold: 2}), 'signature.threshold')
  })

  it('only the signature slot changes: every other byte of the archive is as it was', async () => {
    const archive = await copy('inplace.tar')
    const before = await readFile(archive)
    await cosignArchive({archive, signingKey: bob.priv})
    const after = await readFile(archive)
    const slot = dataOffset(before, 'checksums.sha256.asc')
    assert.equal(after.length, before.length)
    assert.ok(after.subarray(0, slot).equals(before.subarray(0, slot)))
    assert.ok(after.subarray(slot + SIGNATURE_SLOT).equals(before.subarray(slot + SIGNATURE_SLOT)))
    assert.ok(!after.subarray(slot, slot + SIGNATURE_SLOT).equals(before.subarray(slot, slot + SIGNATURE_SLOT)))
  })

  it('inspect lists every signer, verified or not', async () => {
    const archive = await copy('inspect.tar')
    await cosignArchive({archive, signingKey: bob.priv})
    const r = await inspectArchive({archive, keys: [alice.pubFile]})
    assert.equal(r.signers.length, 2)
    assert.deepEqual(r.signers.map((s) => s.verified), [true, false])
    assert.equal(r.signers[0].fingerprint, alice.fingerprint)
  })

  it('a tampered co-signature fails the whole check, even with the threshold met by the others', async () => {
    const archive = await copy('tampered.tar')
    await cosignArchive({archive, signingKey: bob.priv})
    const buf = await readFile(archive)
    const slot = dataOffset(buf, 'checksums.sha256.asc')
    const text = buf.subarray(slot, slot + SIGNATURE_SLOT).toString('latin1')
    // Flip one character inside the last base64 line before the checksum line of the armor.
    const lines = text.trimEnd().split('\n')
    const i = lines.length - 3
    lines[i] = (lines[i][5] === 'A' ? 'B' : 'A').padStart(6, lines[i].slice(0, 5)) + lines[i].slice(6)
    await assert.rejects(verifyArchive({archive: await writeTampered(buf, slot, lines.join('\n')), keys: [alice.pubFile, bob.pubFile]}), (e: unknown) => e instanceof VerifyError)
  })

  async function writeTampered(buf: Buffer, slot: number, text: string): Promise<string> {
    const out = Buffer.from(buf)
    const bytes = Buffer.alloc(SIGNATURE_SLOT, 0x0a)
    Buffer.from(`${text}\n`).copy(bytes)
    bytes.copy(out, slot)
    const p = path.join(dir, 'tampered-out.tar')
    await writeFile(p, out)
    return p
  }

  it('an unsigned archive, and a format 1 archive, are refused with a clear message', async () => {
    const unsigned = path.join(dir, 'unsigned.tar')
    await syntheticArchive(path.join(dir, 'blobs-u'), unsigned, [{name: 'example.test/app:1', layers: [randomLayer(1000)]}])
    await rejectsWith(cosignArchive({archive: unsigned, signingKey: bob.priv}), 'sign.unsigned_archive')
    const v1 = path.join(dir, 'v1.tar')
    await copyFile(path.join(FIXTURE_V1, 'bundle.tar'), v1)
    await rejectsWith(cosignArchive({archive: v1, signingKey: bob.priv}), 'sign.no_slot')
  })

  it('format 1 archives are still read', async () => {
    const r = await verifyArchive({archive: path.join(FIXTURE_V1, 'bundle.tar'), keys: [path.join(FIXTURE_V1, 'signer.pub.asc')]})
    assert.equal(r.signers?.length, 1)
    assert.equal(r.images[0].name, 'example.test/v1/app:1')
  })
})
