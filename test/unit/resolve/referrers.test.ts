/** Discovery of what refers to an image (cosign tags, OCI 1.1 referrers) over in-memory registry content. */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {AirlockError} from '../../../src/core/errors.js'
import {MediaType} from '../../../src/core/model.js'
import {keepReferrersConsistent, resolveImages, withReferrers} from '../../../src/resolve/resolve.js'
import type {Sources} from '../../../src/resolve/sources.js'
import {parseReference} from '../../../src/spec/reference.js'
import {DEFAULT_REFERRERS, type BundleSpec, type ImageSpec, type ReferrerChoice} from '../../../src/spec/types.js'
import {AMD64, Content} from './fixtures.js'

/** Sources over `c`: `tags` maps "repo:tag" to a digest; `api` (when given) answers the referrers API. */
function sources(c: Content, tags: Record<string, string>, api?: Map<string, Buffer>): Sources & {asked: string[]} {
  const asked: string[] = []
  const digestOf = (repo: string, reference: string) => (reference.startsWith('sha256:') ? reference : tags[`${repo}:${reference}`])
  const fake = {
    asked,
    async getManifest(ref: {repository: string}, reference: string) {
      asked.push(`manifest ${reference}`)
      const digest = digestOf(ref.repository, reference)
      if (!digest) throw new AirlockError('registry.not_found', `manifest unknown: ${ref.repository}:${reference}`)
      const b = c.get(digest)
      return {bytes: b.bytes, mediaType: b.mediaType, digest}
    },
    async headManifest(ref: {repository: string}, reference: string) {
      asked.push(`head ${reference}`)
      const digest = digestOf(ref.repository, reference)
      return digest ? {digest, mediaType: c.get(digest).mediaType, size: c.get(digest).bytes.length} : undefined
    },
    async getReferrers(_ref: unknown, digest: string) {
      asked.push(`referrers ${digest}`)
      const bytes = api?.get(digest)
      if (!api) return undefined
      const body = bytes ?? Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: []}))
      return {bytes: body, mediaType: MediaType.OCI_INDEX, digest: `sha256:${'0'.repeat(64)}`}
    },
    async getSmallBlob(_ref: unknown, digest: string) {
      return c.get(digest).bytes
    },
  }
  return fake as unknown as Sources & {asked: string[]}
}

function spec(images: Array<{ref: string; name?: string; referrers?: Partial<ReferrerChoice>}>): BundleSpec {
  const list: ImageSpec[] = images.map((i, n) => ({
    ref: parseReference(i.ref), refString: i.ref, name: i.name ?? i.ref, platforms: ['linux/amd64'], platformsChosen: false, subset: false,
    referrers: {...DEFAULT_REFERRERS, ...i.referrers}, line: n + 1, col: 1,
  }))
  return {file: '/b.yaml', dir: '/', metadata: {name: 't', version: '1'}, platforms: ['linux/amd64'], images: list, registries: {}}
}

/** A cosign-like signature manifest (simple-signing layer) for `digest`. */
function signature(c: Content, digest: string) {
  const config = c.add('{"rootfs":{"type":"layers","diff_ids":[]}}', MediaType.OCI_CONFIG)
  const payload = c.add(JSON.stringify({critical: {image: {'docker-manifest-digest': digest}}}), MediaType.COSIGN_SIMPLE_SIGNING)
  return c.add(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config, layers: [payload]}), MediaType.OCI_MANIFEST)
}

function sbom(c: Content, subject: {digest: string; mediaType: string; size: number}) {
  const empty = c.add('{}', MediaType.OCI_EMPTY)
  const body = c.add('{"spdxVersion":"SPDX-2.3"}', 'application/spdx+json')
  const m = c.add(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, artifactType: 'application/spdx+json', config: empty, layers: [body], subject}), MediaType.OCI_MANIFEST)
  return {...m, artifactType: 'application/spdx+json'}
}

const tag = (digest: string, suffix?: string) => `sha256-${digest.slice(7)}${suffix ? `.${suffix}` : ''}`

describe('referrers at create', () => {
  it('cosign tags: the .sig comes along by default, named after the image\'s target repository', async () => {
    const c = new Content()
    const img = c.image(AMD64)
    const sig = signature(c, img.digest)
    const src = sources(c, {'app:1': img.digest, [`app:${tag(img.digest, 'sig')}`]: sig.digest})
    const [r] = await resolveImages(spec([{ref: 'r.io/app:1', name: 'mirror.io/team/app:1'}]), src)
    assert.deepEqual(r.referrers!.map((x) => [x.spec.name, x.spec.refString, x.top.digest, x.referrerOf]), [
      [`mirror.io/team/app:${tag(img.digest, 'sig')}`, `r.io/app:${tag(img.digest, 'sig')}`, sig.digest, {subject: img.digest, image: 'mirror.io/team/app:1', kind: 'signature', via: 'tag'}],
    ])
    assert.deepEqual(r.upstream, {signatures: [sig.digest], attestations: [], sboms: [], referrers: []})
    assert.ok(!src.asked.includes(`head ${tag(img.digest, 'att')}`), 'attestations are not looked for by default')
    assert.equal(r.referrers![0].manifests[0].kind, 'signature')
  })

  it('an index: the signatures of the index and of each runnable manifest it keeps are looked for', async () => {
    const c = new Content()
    const amd = c.image(AMD64)
    const arm = c.image({os: 'linux', architecture: 'arm64', variant: 'v8'})
    const idx = c.index([amd, arm])
    const sigArm = signature(c, arm.digest)
    const src = sources(c, {'app:1': idx.digest, [`app:${tag(arm.digest, 'sig')}`]: sigArm.digest})
    const s = spec([{ref: 'r.io/app:1'}])
    s.images[0].platforms = 'all'
    const [r] = await resolveImages(s, src)
    assert.deepEqual(r.referrers!.map((x) => [x.referrerOf!.subject, x.top.digest]), [[arm.digest, sigArm.digest]])
    for (const d of [idx.digest, amd.digest, arm.digest]) assert.ok(src.asked.includes(`head ${tag(d, 'sig')}`), d)
  })

  it('no referrers: nothing carried, one lookup per kind and the referrers fallback', async () => {
    const c = new Content()
    const img = c.image(AMD64)
    const src = sources(c, {'app:1': img.digest})
    const [r] = await resolveImages(spec([{ref: 'r.io/app:1'}]), src)
    assert.deepEqual(r.referrers, [])
    assert.deepEqual(src.asked.filter((a) => !a.startsWith('manifest')), [`head ${tag(img.digest, 'sig')}`, `referrers ${img.digest}`, `head ${tag(img.digest)}`])
  })

  it('OCI referrers: the API answer is carried as is; without the API, the fallback tag', async () => {
    const c = new Content()
    const img = c.image(AMD64)
    const s = sbom(c, img)
    const answer = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [s]}))
    const viaApi = await resolveImages(spec([{ref: 'r.io/app:1', referrers: {signatures: false, sboms: true}}]), sources(c, {'app:1': img.digest}, new Map([[img.digest, answer]])))
    const ref = viaApi[0].referrers![0]
    assert.deepEqual([ref.spec.name, ref.referrerOf!.via, ref.referrerOf!.kind, ref.top.bytes.equals(answer)], [`r.io/app:${tag(img.digest)}`, 'referrers', 'referrers', true])
    assert.deepEqual(ref.manifests.map((m) => [m.digest, m.subject]), [[s.digest, img.digest]])

    const fallback = c.index([s])
    const viaTag = await resolveImages(spec([{ref: 'r.io/app:1', referrers: {signatures: false, sboms: true}}]), sources(c, {'app:1': img.digest, [`app:${tag(img.digest)}`]: fallback.digest}))
    assert.deepEqual([viaTag[0].referrers![0].top.digest, viaTag[0].referrers![0].referrerOf!.via], [fallback.digest, 'tag'])
    // a registry answering the referrers path with an error has no usable API: the fallback tag decides
    const failing = sources(c, {'app:1': img.digest, [`app:${tag(img.digest)}`]: fallback.digest})
    failing.getReferrers = async () => { throw new AirlockError('registry.rejected', 'forbidden') }
    const viaTagAfterError = await resolveImages(spec([{ref: 'r.io/app:1', referrers: {signatures: false, sboms: true}}]), failing)
    assert.equal(viaTagAfterError[0].referrers![0].top.digest, fallback.digest)
  })

  it('referrers not chosen are left out of a new index; none chosen: no entry', async () => {
    const c = new Content()
    const img = c.image(AMD64)
    const s = sbom(c, img)
    const sig = signature(c, img.digest)
    const fallback = c.index([s, sig])
    const tags = {'app:1': img.digest, [`app:${tag(img.digest)}`]: fallback.digest}
    const [only] = await resolveImages(spec([{ref: 'r.io/app:1'}]), sources(c, tags))
    const ix = only.referrers![0]
    assert.notEqual(ix.top.digest, fallback.digest)
    assert.deepEqual((JSON.parse(ix.top.bytes.toString()) as {manifests: {digest: string}[]}).manifests.map((m) => m.digest), [sig.digest])
    const [none] = await resolveImages(spec([{ref: 'r.io/app:1', referrers: {signatures: false}}]), sources(c, tags))
    assert.deepEqual(none.referrers, [])
  })

  it('a tag holding a runnable image, or an index under the fallback tag that is not one, is refused', async () => {
    const c = new Content()
    const img = c.image(AMD64)
    const other = c.image({os: 'linux', architecture: 'arm64'})
    await assert.rejects(resolveImages(spec([{ref: 'r.io/app:1'}]), sources(c, {'app:1': img.digest, [`app:${tag(img.digest, 'sig')}`]: other.digest})),
      (e: unknown) => e instanceof AirlockError && /its cosign tag sha256-[0-9a-f]{64}\.sig is not usable: .*holds a runnable image/.test(e.details.join('\n')))
    await assert.rejects(resolveImages(spec([{ref: 'r.io/app:1'}]), sources(c, {'app:1': img.digest, [`app:${tag(img.digest)}`]: other.digest})),
      (e: unknown) => e instanceof AirlockError && /tag sha256-[0-9a-f]{64} is a application\/vnd\.oci\.image\.manifest\.v1\+json, not an index of referrers/.test(e.details.join('\n')))
  })

  it('entries: a referrer bundle.yaml lists itself becomes that entry; a dropped image takes its referrers along', async () => {
    const c = new Content()
    const img = c.image(AMD64)
    const sig = signature(c, img.digest)
    const sigTag = `app:${tag(img.digest, 'sig')}`
    const src = sources(c, {'app:1': img.digest, [sigTag]: sig.digest})
    const resolved = await resolveImages(spec([{ref: 'r.io/app:1'}, {ref: `r.io/${sigTag}`}]), src)
    const entries = withReferrers(resolved)
    assert.deepEqual(entries.map((e) => [e.spec.name, e.referrerOf?.kind, e.upstream === undefined]), [['r.io/app:1', undefined, false], [`r.io/${sigTag}`, 'signature', true]])
    assert.deepEqual(entries[0].upstream!.signatures, [sig.digest])

    const alone = withReferrers(await resolveImages(spec([{ref: 'r.io/app:1'}]), src))
    assert.equal(alone.length, 2)
    assert.deepEqual(keepReferrersConsistent(alone.slice(1)), [])
    const img0 = keepReferrersConsistent([alone[0]])
    assert.deepEqual(img0[0].upstream!.signatures, [])
  })
})
