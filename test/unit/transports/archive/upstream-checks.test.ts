/** airlock.json's upstream fields are signed claims: checkMetadataShape refuses any that do not hold together. */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {VerifyError} from '../../../../src/core/errors.js'
import {checkMetadataShape} from '../../../../src/transports/archive/checks.js'

const D = (c: string) => `sha256:${c.repeat(64)}`

function metadata(edit: (images: Record<string, unknown>[]) => void = () => {}): Record<string, unknown> {
  const image = {
    ref: 'r.io/app:1', name: 'r.io/app:1', mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D('a'), size: 1, sourceDigest: D('a'),
    platforms: ['linux/amd64'], manifests: [{digest: D('a'), config: D('b'), layers: [D('c')], kind: 'image'}], dockerManifest: D('a'), blobs: [],
    upstream: {signatures: [D('d')], attestations: [], sboms: [], referrers: [], verifiedBy: {keyFingerprint: D('e'), signature: D('d')}},
  }
  const sig = {
    ref: 'r.io/app:sha256-x.sig', name: `r.io/app:sha256-${'a'.repeat(64)}.sig`, mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D('d'), size: 1, sourceDigest: D('d'),
    platforms: [], manifests: [{digest: D('d'), config: D('b'), layers: [D('f')], kind: 'signature'}], blobs: [],
    referrerOf: {subject: D('a'), image: 'r.io/app:1', kind: 'signature', via: 'tag'},
  }
  const images = [image, sig] as Record<string, unknown>[]
  edit(images)
  return {formatVersion: 3, bundle: {name: 't', version: '1', created: 'now'}, images}
}

function refused(edit: (images: Record<string, unknown>[]) => void, reason: RegExp): void {
  assert.throws(() => checkMetadataShape(metadata(edit)), (e: unknown) => e instanceof VerifyError && e.code === 'archive.bad_metadata' && reason.test(e.message))
}

describe('airlock.json upstream fields', () => {
  it('accepts an image, its signature entry, and the key that verified it', () => {
    checkMetadataShape(metadata())
  })

  it('refuses a referrer of an entry that is not there, of itself, or of an unknown kind', () => {
    refused((i) => { (i[1].referrerOf as Record<string, unknown>).image = 'r.io/other:1' }, /referrerOf names "r\.io\/other:1", which is not another entry/)
    refused((i) => { (i[1].referrerOf as Record<string, unknown>).image = i[1].name }, /not another entry/)
    refused((i) => { (i[1].referrerOf as Record<string, unknown>).kind = 'blessing' }, /bad referrerOf/)
    refused((i) => { (i[1].referrerOf as Record<string, unknown>).subject = 'sha256:short' }, /bad referrerOf/)
  })

  it('refuses upstream lists naming digests that are no entry referring to the image', () => {
    refused((i) => { (i[0].upstream as Record<string, unknown>).attestations = [D('9')] }, /upstream\.attestations lists sha256:9+, which is no entry referring to r\.io\/app:1/)
    refused((i) => { (i[0].upstream as Record<string, unknown>).sboms = 'none' }, /bad upstream\.sboms/)
    refused((i) => { (i[0].upstream as Record<string, unknown>).verifiedBy = {keyFingerprint: 'me'} }, /bad upstream\.verifiedBy/)
    refused((i) => { (i[0].upstream as Record<string, unknown>).trusted = true }, /unknown fields trusted/)
    refused((i) => { i[1].upstream = i[0].upstream }, /a referrer entry has no upstream of its own/)
  })

  it('refuses the fields in an older format', () => {
    assert.throws(() => checkMetadataShape({...metadata(), formatVersion: 2}), /referrerOf\/upstream need format 3|dockerManifest missing/)
  })
})
