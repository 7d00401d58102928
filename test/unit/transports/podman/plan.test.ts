/** What one `podman load` gets for one image, so that podman keeps its digests (src/transports/podman/plan.ts). */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {MediaType} from '../../../../src/core/model.js'
import type {ImageRecord, ManifestRecord} from '../../../../src/transports/archive/metadata.js'
import {podmanLoadPlan, podmanLookups, repositoryOf} from '../../../../src/transports/podman/plan.js'

const d = (c: string) => `sha256:${c.repeat(64)}`
/** The config digest of manifest `c`. */
const cfg = (c: string) => `sha256:${c.repeat(63)}0`
const manifest = (c: string, platform: string, kind: ManifestRecord['kind'] = 'image'): ManifestRecord =>
  ({digest: d(c), mediaType: MediaType.OCI_MANIFEST, size: 100, platform, config: cfg(c), layers: [d('9')], kind})

function entry(name: string, manifests: ManifestRecord[], opts: {index?: string; indexes?: ImageRecord['indexes']; docker?: string} = {}): ImageRecord {
  const top = opts.index ?? manifests[0].digest
  return {
    ref: name, name, mediaType: opts.index ? MediaType.OCI_INDEX : MediaType.OCI_MANIFEST, digest: top, size: 300, sourceDigest: top,
    platforms: manifests.filter((m) => m.kind === 'image').map((m) => m.platform), manifests,
    ...(opts.indexes ? {indexes: opts.indexes} : {}), dockerManifest: opts.docker ?? manifests[0].digest, blobs: [],
  }
}

describe('podmanLoadPlan', () => {
  it('a tagged single manifest: the manifest, named by its tag', () => {
    const p = podmanLoadPlan(entry('reg.local:5000/team/app:1', [manifest('a', 'linux/amd64')]), 'linux/amd64')
    assert.equal(p.top.digest, d('a'))
    assert.equal(p.loadName, 'reg.local:5000/team/app:1')
    assert.deepEqual(podmanLookups(p), ['reg.local:5000/team/app:1', `reg.local:5000/team/app@${d('a')}`])
    assert.equal(p.indexNotKept, undefined)
  })

  it('an index with the host platform: the index (both digests kept), an attestation does not compete', () => {
    const img = entry(`reg.local/app@${d('1')}`, [manifest('a', 'linux/amd64'), manifest('b', 'linux/arm64/v8'), manifest('c', 'unknown/unknown', 'attestation')], {index: d('1')})
    const p = podmanLoadPlan(img, 'linux/amd64')
    assert.equal(p.top.digest, d('1'))
    assert.equal(p.top.mediaType, MediaType.OCI_INDEX)
    assert.equal(p.loadName, `reg.local/app@${d('1')}`)
    assert.deepEqual(p.blobs, [d('1'), d('a'), cfg('a'), d('9')])
    assert.deepEqual(podmanLookups(p), [p.loadName, `reg.local/app@${d('1')}`, `reg.local/app@${d('a')}`])
  })

  it('another platform than podman\'s, or a nested index: the platform manifest, and the name carries its digest', () => {
    const img = entry(`reg.local/app@${d('1')}`, [manifest('a', 'linux/amd64'), manifest('b', 'linux/arm64/v8')], {index: d('1'), docker: d('b')})
    const p = podmanLoadPlan(img, 'linux/amd64')
    assert.equal(p.top.digest, d('b'))
    assert.equal(p.loadName, `reg.local/app@${d('b')}`)
    assert.match(p.indexNotKept ?? '', /linux\/arm64\/v8/)
    const nested = entry('reg.local/app:2', [manifest('a', 'linux/amd64')], {index: d('1'), indexes: [
      {digest: d('1'), mediaType: MediaType.OCI_INDEX, size: 300, manifests: [d('2')]},
      {digest: d('2'), mediaType: MediaType.OCI_INDEX, size: 200, manifests: [d('a')]},
    ]})
    const q = podmanLoadPlan(nested, 'linux/amd64')
    assert.equal(q.top.digest, d('a'))
    assert.equal(q.loadName, 'reg.local/app:2')
    assert.match(q.indexNotKept ?? '', /nested index/)
  })

  it('two images of the host platform in one index: the platform manifest (podman might pick the other)', () => {
    const img = entry('reg.local/app:3', [manifest('a', 'linux/amd64'), manifest('b', 'linux/amd64/v3')], {index: d('1')})
    assert.equal(podmanLoadPlan(img, 'linux/amd64').top.digest, d('a'))
  })
})

describe('repositoryOf', () => {
  it('strips a tag and a digest, keeps a registry port', () => {
    assert.equal(repositoryOf('127.0.0.1:5301/a/b:1'), '127.0.0.1:5301/a/b')
    assert.equal(repositoryOf(`127.0.0.1:5301/a/b@${d('1')}`), '127.0.0.1:5301/a/b')
    assert.equal(repositoryOf(`127.0.0.1:5301/a/b:1@${d('1')}`), '127.0.0.1:5301/a/b')
    assert.equal(repositoryOf('127.0.0.1:5301/a/b'), '127.0.0.1:5301/a/b')
  })
})
