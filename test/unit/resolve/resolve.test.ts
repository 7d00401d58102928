import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {sha256Digest} from '../../../src/core/digest.js'
import {AirlockError, InputError} from '../../../src/core/errors.js'
import {type ImageIndex, MediaType} from '../../../src/core/model.js'
import {imageBlobs, resolveImages} from '../../../src/resolve/resolve.js'
import type {Sources} from '../../../src/resolve/sources.js'
import {parseReference} from '../../../src/spec/reference.js'
import type {BundleSpec, ImageSpec} from '../../../src/spec/types.js'
import {AMD64, ARM64, Content} from './fixtures.js'

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
    return {ref, refString: i.ref, name: i.name ?? i.ref, platforms: i.platforms ?? ['linux/amd64'], platformsChosen: i.platforms !== undefined, subset: false, line: n + 1, col: 1}
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

  it('an index, platform subset: a new index of the chosen manifests and their attestations, in the registry order; what was left out is named', async () => {
    const c = new Content()
    const a = c.image(AMD64)
    const b = c.image(ARM64)
    const attA = c.attestation(a)
    const attB = c.attestation(b)
    const idx = c.index([a, b, attA, attB])
    const [img] = await resolveImages(spec([{ref: 'r.io/app:1', platforms: ['linux/arm64']}]), sources(c, {'app:1': idx.digest}))
    assert.equal(img.sourceDigest, idx.digest)
    assert.notEqual(img.top.digest, idx.digest)
    assert.equal(img.top.digest, sha256Digest(img.top.bytes))
    const sub = JSON.parse(img.top.bytes.toString()) as ImageIndex
    assert.deepEqual(sub.manifests, [b, attB], 'the entries are the source index entries, unchanged')
    assert.equal(sub.mediaType, MediaType.OCI_INDEX)
    assert.deepEqual(img.platforms, ['linux/arm64/v8'])
    assert.equal(img.dockerManifest, b.digest)
    assert.deepEqual(img.manifests.map((m) => [m.digest, m.kind]), [[b.digest, 'image'], [attB.digest, 'attestation']])
    assert.deepEqual(img.omitted?.map((o) => [o.digest, o.kind, o.platform]), [[a.digest, 'image', 'linux/amd64'], [attA.digest, 'attestation', 'unknown']])
    assert.deepEqual(img.indexes.map((ix) => [ix.digest, ix.manifests]), [[img.top.digest, [b.digest, attB.digest]]])
  })

  it('two wanted platforms that are all the index has: the index is kept byte-exact, attestations included', async () => {
    const c = new Content()
    const a = c.image(AMD64)
    const b = c.image(ARM64)
    const idx = c.index([a, b, c.attestation(a)])
    const [img] = await resolveImages(spec([{ref: 'r.io/app:1', platforms: ['linux/arm64', 'linux/amd64']}]), sources(c, {'app:1': idx.digest}))
    assert.equal(img.top.digest, idx.digest)
    assert.equal(img.omitted, undefined)
    assert.equal(img.manifests.length, 3)
    assert.equal(img.dockerManifest, b.digest, 'the first wanted platform is the one docker gets')
  })

  it("'all': the index kept byte-exact with its attestations", async () => {
    const c = new Content()
    const a = c.image(AMD64)
    const b = c.image(ARM64)
    const withAtt = c.index([a, b, c.attestation(a)])
    const [img] = await resolveImages(spec([{ref: 'r.io/app:2', platforms: 'all'}]), sources(c, {'app:2': withAtt.digest}))
    assert.equal(img.top.digest, withAtt.digest)
    assert.deepEqual(img.manifests.map((m) => m.kind), ['image', 'image', 'attestation'])
    assert.deepEqual(img.platforms, ['linux/amd64', 'linux/arm64/v8'])
    assert.equal(img.dockerManifest, a.digest, 'linux/amd64 by default')
  })

  it('a wanted platform the index lacks: says which it has (attestations are not platforms)', async () => {
    const c = new Content()
    const a = c.image(AMD64)
    const idx = c.index([a, c.attestation(a)])
    await assert.rejects(resolveImages(spec([{ref: 'r.io/app:1', platforms: ['linux/s390x']}]), sources(c, {'app:1': idx.digest})), (e: unknown) =>
      e instanceof AirlockError && /^r\.io\/app:1 has no linux\/s390x image; it has: linux\/amd64 /.test(e.details[0]))
  })

  it('a nested index: kept byte-exact with every level; a subset reaches into it', async () => {
    const c = new Content()
    const a = c.image(AMD64)
    const b = c.image(ARM64)
    const inner = c.index([a, b])
    const s390 = c.image({os: 'linux', architecture: 's390x'})
    const top = c.index([inner, s390])
    const [all] = await resolveImages(spec([{ref: 'r.io/app:1', platforms: 'all'}]), sources(c, {'app:1': top.digest}))
    assert.equal(all.top.digest, top.digest)
    assert.deepEqual(all.indexes.map((ix) => ix.digest), [top.digest, inner.digest])
    assert.deepEqual(all.indexes[0].manifests, [inner.digest, s390.digest])
    assert.deepEqual(all.manifests.map((m) => m.digest), [a.digest, b.digest, s390.digest])
    assert.ok(imageBlobs(all).some((x) => x.digest === inner.digest), 'the nested index is a blob of the entry')
    const [sub] = await resolveImages(spec([{ref: 'r.io/app:1', platforms: ['linux/arm64']}]), sources(c, {'app:1': top.digest}))
    assert.deepEqual((JSON.parse(sub.top.bytes.toString()) as ImageIndex).manifests, [b])
    assert.deepEqual(sub.omitted?.map((o) => o.kind).sort(), ['image', 'image', 'index'])
  })

  it('an artifact (a Helm chart) is carried as is and never asked for a platform; it has nothing runnable', async () => {
    const c = new Content()
    const chart = c.chart()
    const [img] = await resolveImages(spec([{ref: 'r.io/charts/demo:1.0.0'}]), sources(c, {'charts/demo:1.0.0': chart.digest}))
    assert.equal(img.top.digest, chart.digest)
    assert.deepEqual(img.manifests.map((m) => m.kind), ['artifact'])
    assert.equal(img.dockerManifest, undefined)
    assert.deepEqual(img.platforms, [])
  })

  it('a pinned index: kept whole with default platforms; a chosen subset is refused unless subset: true', async () => {
    const c = new Content()
    const a = c.image(AMD64)
    const b = c.image(ARM64)
    const idx = c.index([a, b])
    const pinned = `r.io/app@${idx.digest}`
    const byDefault = spec([{ref: pinned}])
    byDefault.images[0].platformsChosen = false
    const [kept] = await resolveImages(byDefault, sources(c, {}))
    assert.equal(kept.top.digest, idx.digest)
    assert.equal(kept.dockerManifest, a.digest)
    await assert.rejects(resolveImages(spec([{ref: pinned, platforms: ['linux/amd64']}]), sources(c, {})), (e: unknown) =>
      e instanceof InputError && /is pinned to index sha256:[a-f0-9]{64}; platforms linux\/amd64 would keep linux\/amd64 of its 2 images.*subset: true/.test(e.details[0]))
    const allowed = spec([{ref: pinned, platforms: ['linux/amd64']}])
    allowed.images[0].subset = true
    const [sub] = await resolveImages(allowed, sources(c, {}))
    assert.notEqual(sub.top.digest, idx.digest)
    assert.equal(sub.sourceDigest, idx.digest)
  })

  it('a schema 1 manifest is refused with a hint that works', async () => {
    const c = new Content()
    const old = c.add(JSON.stringify({schemaVersion: 1, name: 'app', tag: '1', fsLayers: []}), 'application/vnd.docker.distribution.manifest.v1+prettyjws')
    await assert.rejects(resolveImages(spec([{ref: 'r.io/app:1'}]), sources(c, {'app:1': old.digest})), (e: unknown) =>
      e instanceof AirlockError && /schema 1 manifest.*skopeo copy --format v2s2/.test(e.details[0]))
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
