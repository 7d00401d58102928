/** `airlock diff` on hand-made signed metadata (src/verify/diff.ts): images, platforms, layers, the differential size. */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {diffHeads} from '../../../src/verify/diff.js'
import type {SignedBundleHead} from '../../../src/verify/signed-head.js'
import type {ImageRecord} from '../../../src/transports/archive/metadata.js'
import {digest, image, sizeOf} from '../mirror/fixtures.js'

function head(version: string, images: ImageRecord[]): SignedBundleHead {
  return {
    archive: `shop-${version}.tar`, verified: true, signers: [],
    metadata: {formatVersion: 2, tool: {name: 'airlock', version: '0'}, bundle: {name: 'shop', version, created: '1970-01-01T00:00:00.000Z'}, images, blobs: {count: 0, bytes: 0, referencedBytes: 0}},
  }
}

// Layers are the letters after manifest and config: p (shared base), q, r, s, t, u.
const OLD = head('1', [
  image('reg/app:1', 'A', {'linux/amd64': ['B', 'C', 'p', 'q'], 'linux/arm64': ['D', 'E', 'p', 'r']}),
  image('reg/db:1', 'F', {'linux/amd64': ['G', 'H', 'p', 's']}),
  image('reg/gone:1', 'I', {'linux/amd64': ['J', 'K', 't']}),
])
const NEW = head('2', [
  // amd64 changed (new top layer u), arm64 unchanged, s390x added
  image('reg/app:1', 'L', {'linux/amd64': ['M', 'N', 'p', 'u'], 'linux/arm64': ['D', 'E', 'p', 'r'], 'linux/s390x': ['O', 'P', 'q']}),
  image('reg/db:1', 'F', {'linux/amd64': ['G', 'H', 'p', 's']}),
  image('reg/new:1', 'Q', {'linux/amd64': ['R', 'S', 'p', 'v']}),
])

describe('diff of two bundles\' metadata', () => {
  const r = diffHeads(OLD, NEW)

  it('images added, removed, changed (per platform) and unchanged, by name', () => {
    assert.deepEqual(r.added, [{name: 'reg/new:1', digest: digest('Q'), platforms: ['linux/amd64']}])
    assert.deepEqual(r.removed.map((i) => i.name), ['reg/gone:1'])
    assert.deepEqual(r.unchanged, ['reg/db:1'])
    assert.deepEqual(r.changed, [{
      name: 'reg/app:1', old: digest('A'), new: digest('L'), platforms: [
        {platform: 'linux/amd64', change: 'changed', old: digest('B'), new: digest('M')},
        {platform: 'linux/s390x', change: 'added', new: digest('O')},
      ],
    }])
  })

  it('new layers are those no image of OLD used; removed ones those NEW no longer uses', () => {
    assert.deepEqual(r.layers.added.map((b) => b.digest), [digest('u'), digest('v')])
    assert.equal(r.layers.addedBytes, sizeOf('u') + sizeOf('v'))
    assert.deepEqual(r.layers.removed.map((b) => b.digest), [digest('t')])
    assert.equal(r.layers.removedBytes, sizeOf('t'))
  })

  it('the differential bundle: every blob of NEW but the layers OLD had (q is a layer of OLD, reused by another platform)', () => {
    const newBlobs = new Map(NEW.metadata.images.flatMap((i) => i.blobs.map((b) => [b.digest, b.size] as const)))
    const leftOut = ['p', 'q', 'r', 's'].map(digest)
    assert.deepEqual(r.differential.leftOut, {blobs: 4, bytes: ['p', 'q', 'r', 's'].reduce((n, l) => n + sizeOf(l), 0)})
    assert.equal(r.differential.blobs, newBlobs.size - leftOut.length)
    assert.equal(r.differential.bytes, [...newBlobs].filter(([d]) => !leftOut.includes(d)).reduce((n, [, s]) => n + s, 0))
  })

  it('a bundle compared with itself: nothing changed, nothing new, only manifests and configs to ship', () => {
    const same = diffHeads(NEW, NEW)
    assert.equal(same.added.length + same.removed.length + same.changed.length, 0)
    assert.equal(same.layers.added.length, 0)
    assert.equal(same.differential.leftOut.blobs, 6)
  })
})
