import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {sha256Digest} from '../../../src/core/digest.js'
import {AirlockError, InputError} from '../../../src/core/errors.js'
import {type ImageIndex, MediaType} from '../../../src/core/model.js'
import {imageBlobs, resolveImages} from '../../../src/resolve/resolve.js'
import type {Sources} from '../../../src/resolve/sources.js'
import {parseReference} from '../../../src/spec/reference.js'
import type {BundleSpec, ImageSpec} from '../../../src/spec/types.js'
import {AMD64, ARM64, ATTESTATION, Content} from './fixtures.js'

/** Sources over in-memory content: `tags` maps "repo:tag" to a digest. */
function sources(c: Content, tags: Record<string, string>): Sources & {asked: string[]} {
  const asked: string[] = []
  const fake = {
    asked,
    async getManifest(ref: {repository: string}, reference: string) {
      asked.push(`manifest ${reference}`)
      const digest = reference.startsWith('sha256:') ? reference : tags[`${ref.repository}:${reference}`]
      if (!digest) throw new AirlockError('registry.not_found', `manifest unknown: ${ref.repository}:${reference}`)
      const b = c.get(digest)
      return {bytes: b.bytes, mediaType: b.mediaType, digest}
    },
    async getSmallBlob(_ref: unknown, digest: string) {
      asked.push(`blob ${digest}`)
      return c.get(digest).bytes
    },
  }
  return fake as unknown as Sources & {asked: string[]}
}

function spec(images: Array<{ref: string; platforms?: string[] | 'all'; name?: string}>): BundleSpec {
  const list: ImageSpec[] = images.map((i, n) => {
    const ref = parseReference(i.ref)
    return {ref, refString: i.ref, name: i.name ?? i.ref, platforms: i.platforms ?? ['linux/amd64'], line: n + 1, col: 1}
  })
  return {file: '/b.yaml', dir: '/', metadata: {name: 't', version: '1'}, platforms: ['linux/amd64'], images: list, registries: {}}
}

describe('resolveImages', () => {
  it('a single-platform image: the manifest itself, its platform read from the config', async () => {
    const c = new Content()
    const m = c.image(AMD64)
    const [img] = await resolveImages(spec([{ref: 'r.io/app:1'}]), sources(c, {'app:1': m.digest}))
    assert.equal(img.top.digest, m.digest)
    assert.equal(img.sourceDigest, m.digest)
    assert.deepEqual(img.platforms, ['linux/amd64'])
    assert.equal(img.dockerManifest, m.digest)
    assert.equal(img.manifests[0].layers.length, 1)
  })

  it('a single-platform image for another platform: InputError naming both', async () => {
    const c = new Content()
    const m = c.image(ARM64)
    await assert.rejects(resolveImages(spec([{ref: 'r.io/app:1'}]), sources(c, {'app:1': m.digest})), (e: unknown) =>
      e instanceof AirlockError && e.code === 'resolve.failed' && /single-platform image for linux\/arm64\/v8; wanted linux\/amd64/.test(e.details[0]))
  })

  it('an index, platform subset: a new index of the chosen manifests, in the registry order', async () => {
    const c = new Content()
    const a = c.image(AMD64)
    const b = c.image(ARM64)
    const att = c.image(ATTESTATION, 'attestation')
    const idx = c.index([a, b, att])
    const [img] = await resolveImages(spec([{ref: 'r.io/app:1', platforms: ['linux/arm64', 'linux/amd64']}]), sources(c, {'app:1': idx.digest}))
    assert.equal(img.sourceDigest, idx.digest)
    assert.notEqual(img.top.digest, idx.digest)
    assert.equal(img.top.digest, sha256Digest(img.top.bytes))
    const sub = JSON.parse(img.top.bytes.toString()) as ImageIndex
    assert.deepEqual(sub.manifests.map((d) => d.digest), [a.digest, b.digest])
    assert.equal(sub.mediaType, MediaType.OCI_INDEX)
    assert.deepEqual(img.platforms, ['linux/amd64', 'linux/arm64/v8'])
    assert.equal(img.dockerManifest, b.digest, 'the first wanted platform is the one docker gets')
  })

  it("'all': every manifest but attestations; the index kept as is when nothing is left out", async () => {
    const c = new Content()
    const a = c.image(AMD64)
    const b = c.image(ARM64)
    const whole = c.index([a, b])
    const [img] = await resolveImages(spec([{ref: 'r.io/app:1', platforms: 'all'}]), sources(c, {'app:1': whole.digest}))
    assert.equal(img.top.digest, whole.digest)
    assert.equal(img.dockerManifest, a.digest, 'linux/amd64 by default')
    const withAtt = c.index([a, b, c.image(ATTESTATION, 'att')])
    const [img2] = await resolveImages(spec([{ref: 'r.io/app:2', platforms: 'all'}]), sources(c, {'app:2': withAtt.digest}))
    assert.equal(img2.manifests.length, 2)
    assert.notEqual(img2.top.digest, withAtt.digest)
  })

  it('a wanted platform the index lacks: says which it has', async () => {
    const c = new Content()
    const idx = c.index([c.image(AMD64), c.image(ATTESTATION, 'att')])
    await assert.rejects(resolveImages(spec([{ref: 'r.io/app:1', platforms: ['linux/s390x']}]), sources(c, {'app:1': idx.digest})), (e: unknown) =>
      e instanceof AirlockError && e.details[0] === 'r.io/app:1 has no linux/s390x image; it has: linux/amd64')
  })

  it('by digest: the registry must serve that digest', async () => {
    const c = new Content()
    const m = c.image(AMD64)
    const other = c.image(AMD64, 'other layer')
    const s = sources(c, {})
    ;(s as unknown as {getManifest: Sources['getManifest']}).getManifest = async () => ({...c.get(other.digest), digest: other.digest})
    await assert.rejects(resolveImages(spec([{ref: `r.io/app@${m.digest}`}]), s), (e: unknown) =>
      e instanceof AirlockError && e.details[0] === `r.io/app@${m.digest}: registry served ${other.digest}`)
  })

  it('every image is tried; failures are listed together, one line each, naming the image', async () => {
    const c = new Content()
    const m = c.image(AMD64)
    await assert.rejects(
      resolveImages(spec([{ref: 'r.io/ok:1'}, {ref: 'r.io/missing:1'}, {ref: 'r.io/gone:2'}]), sources(c, {'ok:1': m.digest})),
      (e: unknown) => e instanceof AirlockError && !(e instanceof InputError) && e.code === 'resolve.failed'
        && e.message === 'could not resolve 2 of 3 images'
        && e.details.length === 2 && e.details[0].startsWith('r.io/missing:1: manifest unknown'))
  })

  it('imageBlobs: top, manifests, configs and layers, each once', async () => {
    const c = new Content()
    const a = c.image(AMD64, 'shared')
    const b = c.image(ARM64, 'shared')
    const idx = c.index([a, b])
    const [img] = await resolveImages(spec([{ref: 'r.io/app:1', platforms: 'all'}]), sources(c, {'app:1': idx.digest}))
    const blobs = imageBlobs(img)
    assert.equal(blobs.length, 1 + 2 + 2 + 1)
    assert.equal(new Set(blobs.map((x) => x.digest)).size, blobs.length)
    assert.equal(blobs[0].digest, idx.digest)
  })
})
