/** What docker and podman load of the selected entries, and what they report as left out (src/transports/engine-content.ts). */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {MediaType} from '../../../src/core/model.js'
import type {ImageRecord, ManifestRecord} from '../../../src/transports/archive/metadata.js'
import {countsText, describeLeftOut, engineContent} from '../../../src/transports/engine-content.js'

const d = (c: string) => `sha256:${c.repeat(64)}`
const m = (c: string, kind?: ManifestRecord['kind'], platform = 'unknown/unknown'): ManifestRecord =>
  ({digest: d(c), mediaType: MediaType.OCI_MANIFEST, size: 1, platform, config: d('f'), layers: [], ...(kind ? {kind} : {})})
const entry = (name: string, manifests: ManifestRecord[], dockerManifest?: string): ImageRecord => ({
  ref: name, name, mediaType: manifests.length > 1 ? MediaType.OCI_INDEX : MediaType.OCI_MANIFEST, digest: manifests.length > 1 ? d('0') : manifests[0].digest, size: 1,
  sourceDigest: d('0'), platforms: [], manifests, ...(dockerManifest ? {dockerManifest} : {}), blobs: [],
})

describe('engineContent', () => {
  it('loads runnable entries, skips the rest by kind, counts what a loaded entry leaves out', () => {
    const app = entry('r/app:1', [m('a', 'image', 'linux/amd64'), m('b', 'image', 'linux/arm64'), m('c', 'attestation'), m('e', 'attestation')], d('a'))
    const chart = entry('r/chart:1', [m('1', 'artifact')])
    const sig = entry('r/app:sha256-x.sig', [m('2', 'signature')])
    const mixed = entry('r/mixed:1', [m('3', 'signature'), m('4', 'attestation')])
    const old = entry('r/old:1', [m('5', undefined, 'linux/amd64')], d('5'))
    const {runnable, leftOut} = engineContent([app, chart, sig, mixed, old], 'docker')
    assert.deepEqual(runnable.map((i) => i.name), ['r/app:1', 'r/old:1'])
    assert.deepEqual(leftOut.skipped.map((s) => [s.name, s.kind]), [['r/chart:1', 'artifact'], ['r/app:sha256-x.sig', 'signature'], ['r/mixed:1', 'artifact']])
    assert.match(leftOut.skipped[1].reason, /^a signature, nothing docker can run: docker loads runnable images only/)
    assert.deepEqual(leftOut.manifests, [{name: 'r/app:1', digest: d('0'), counts: {image: 1, attestation: 2}}])
    assert.equal(countsText(leftOut.manifests[0].counts), '1 other platform, 2 attestations')
    assert.equal(describeLeftOut(leftOut).length, 4)
  })
})
