import assert from 'node:assert/strict'
import {generateKeyPairSync} from 'node:crypto'
import {describe, it} from 'node:test'

import {AirlockError} from '../../../src/core/errors.js'
import {checkDsseEnvelope, checkSignatureManifest, checkSimpleSigning, decodeBase64, MAX_PAYLOAD_BYTES, pae, parseCosignKey, repositoryOf} from '../../../src/sign/cosign-verify.js'
import {attestationManifest, ecKeyPair, sha256, signatureManifest, signB64, simpleSigningPayload} from '../../helpers/cosign-fixtures.js'

const good = ecKeyPair()
const other = ecKeyPair()
const DIGEST = sha256('the image manifest')
const REF = 'registry.example.com/shop/api:1.0'
const subject = {digest: DIGEST, reference: REF}

/** Payload bytes by digest, from a fixture's blobs. */
const blobsOf = (a: {blobs: Map<string, Buffer>}) => (d: string) => a.blobs.get(d)

describe('cosign simple signing', () => {
  it('accepts a signature by the key over the payload naming the digest and the repository', () => {
    const sig = signatureManifest({digest: DIGEST, reference: 'registry.example.com/shop/api', key: good.privateKey})
    assert.deepEqual(checkSignatureManifest(sig.bytes, blobsOf(sig), subject, parseCosignKey(good.pem, 'k').key), {ok: true})
  })

  it('reads the PEM cosign writes; the fingerprint is the sha256 of the SPKI DER', () => {
    const k = parseCosignKey(good.pem, 'cosign.pub')
    assert.equal(k.fingerprint, sha256(good.publicKey.export({type: 'spki', format: 'der'})))
    assert.throws(() => parseCosignKey('not a key', 'x.pem'), (e: unknown) => e instanceof AirlockError && e.code === 'upstream.bad_key' && /x\.pem is not a PEM public key/.test(e.message))
  })

  it('accepts Ed25519 and RSA keys too', () => {
    for (const pair of [generateKeyPairSync('ed25519'), generateKeyPairSync('rsa', {modulusLength: 2048})]) {
      const pem = pair.publicKey.export({type: 'spki', format: 'pem'}).toString()
      const sig = signatureManifest({digest: DIGEST, reference: REF, key: pair.privateKey})
      assert.deepEqual(checkSignatureManifest(sig.bytes, blobsOf(sig), subject, parseCosignKey(pem, 'k').key), {ok: true})
    }
  })

  const refuse = (name: string, make: () => ReturnType<typeof signatureManifest>, reason: RegExp) => void it(`refuses ${name}`, () => {
    const sig = make()
    const r = checkSignatureManifest(sig.bytes, blobsOf(sig), subject, good.publicKey)
    assert.equal(r.ok, false)
    assert.match((r as {reason: string}).reason, reason)
  })
  refuse('a payload naming another digest', () => signatureManifest({digest: sha256('another image'), reference: REF, key: good.privateKey}), /its payload signs "sha256:[0-9a-f]{64}", not sha256:/)
  refuse('a payload for another repository', () => signatureManifest({digest: DIGEST, reference: 'registry.example.com/evil/api', key: good.privateKey}), /names repository "registry\.example\.com\/evil\/api", not registry\.example\.com\/shop\/api/)
  refuse('a signature by another key', () => signatureManifest({digest: DIGEST, reference: REF, key: other.privateKey}), /does not verify with the key/)
  refuse('malformed base64', () => signatureManifest({digest: DIGEST, reference: REF, key: good.privateKey, signature: 'MEUC!!not*base64'}), /annotation is not base64/)
  refuse('base64 of something that is not DER', () => signatureManifest({digest: DIGEST, reference: REF, key: good.privateKey, signature: Buffer.from('garbage').toString('base64')}), /does not verify/)
  refuse('a huge signature annotation', () => signatureManifest({digest: DIGEST, reference: REF, key: good.privateKey, signature: 'A'.repeat(70_000)}), /at most 65536 characters/)
  refuse('a huge payload (without reading it)', () => signatureManifest({digest: DIGEST, reference: REF, key: good.privateKey, payload: Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20)}), /more than the 1048576 allowed/)
  refuse('a signed payload that is not JSON', () => {
    const payload = Buffer.from('not json at all')
    return signatureManifest({digest: DIGEST, reference: REF, key: good.privateKey, payload})
  }, /its payload is not JSON/)
  refuse('a signed payload of another type', () => {
    const payload = Buffer.from(JSON.stringify({critical: {identity: {'docker-reference': REF}, image: {'docker-manifest-digest': DIGEST}, type: 'something else'}}))
    return signatureManifest({digest: DIGEST, reference: REF, key: good.privateKey, payload})
  }, /critical\.type is "something else"/)

  it('refuses a manifest that is not JSON, or has no simple-signing layer, or whose payload is missing', () => {
    assert.match((checkSignatureManifest(Buffer.from('<html>'), () => undefined, subject, good.publicKey) as {reason: string}).reason, /not JSON/)
    assert.match((checkSignatureManifest(Buffer.from('{"layers":[]}'), () => undefined, subject, good.publicKey) as {reason: string}).reason, /no application\/vnd\.dev\.cosign\.simplesigning\.v1\+json layer/)
    const sig = signatureManifest({digest: DIGEST, reference: REF, key: good.privateKey})
    assert.match((checkSignatureManifest(sig.bytes, () => undefined, subject, good.publicKey) as {reason: string}).reason, /payload is not in the bundle/)
  })

  it('checks the exact payload bytes (one byte changed: refused)', () => {
    const payload = simpleSigningPayload(DIGEST, REF)
    const sig = signB64(good.privateKey, payload)
    assert.deepEqual(checkSimpleSigning(payload, sig, subject, good.publicKey), {ok: true})
    const changed = Buffer.from(payload.toString().replace('"optional":null', '"optional":{}'))
    assert.equal(checkSimpleSigning(changed, sig, subject, good.publicKey).ok, false)
  })

  it('compares repositories as Docker names them', () => {
    assert.equal(repositoryOf('nginx'), 'docker.io/library/nginx')
    assert.equal(repositoryOf('index.docker.io/library/nginx:1@sha256:' + 'a'.repeat(64)), 'docker.io/library/nginx')
    assert.equal(repositoryOf('127.0.0.1:5000/a/b:tag'), '127.0.0.1:5000/a/b')
    assert.equal(repositoryOf('127.0.0.1:5000/a/b'), '127.0.0.1:5000/a/b')
  })

  it('decodes strict base64 only', () => {
    assert.deepEqual(decodeBase64('aGk='), Buffer.from('hi'))
    for (const bad of ['', 'a', 'a b', 'aGk=x', 42, null]) assert.equal(decodeBase64(bad), undefined, String(bad))
  })
})

describe('DSSE attestations', () => {
  const envelopeOf = (a: ReturnType<typeof attestationManifest>) => [...a.blobs.values()].find((b) => b.toString().includes('payloadType'))!

  it('accepts an in-toto statement about the digest signed over PAE', () => {
    assert.deepEqual(checkDsseEnvelope(envelopeOf(attestationManifest({digest: DIGEST, key: good.privateKey})), subject, good.publicKey), {ok: true})
    assert.equal(pae('t', Buffer.from('ab')).toString(), 'DSSEv1 1 t 2 ab')
  })

  it('refuses another key, another subject, and garbage', () => {
    const env = envelopeOf(attestationManifest({digest: DIGEST, key: good.privateKey}))
    assert.match((checkDsseEnvelope(env, subject, other.publicKey) as {reason: string}).reason, /no signature of the envelope verifies/)
    assert.match((checkDsseEnvelope(env, {...subject, digest: sha256('x')}, good.publicKey) as {reason: string}).reason, /subjects do not name/)
    assert.match((checkDsseEnvelope(Buffer.from('[1]'), subject, good.publicKey) as {reason: string}).reason, /not a JSON object/)
  })
})
