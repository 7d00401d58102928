/**
 * Differential bundles (src/install/differential.ts): which blobs an archive leaves to its base,
 * the check that a target already holds them (no --base), and streaming them from the base
 * archive before the target is committed (--base). Destinations are fakes that record calls; the
 * base is a real (unsigned) archive in a temp dir.
 */
import assert from 'node:assert/strict'
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {AirlockError, InputError} from '../../../src/core/errors.js'
import {externalBlobs, requireBaseOnTarget, withBaseArchive} from '../../../src/install/differential.js'
import type {Destination} from '../../../src/transports/types.js'
import type {AirlockMetadata, ImageRecord} from '../../../src/transports/archive/metadata.js'
import type {VerifiedHead} from '../../../src/transports/archive/reader.js'
import {syntheticArchive} from '../../helpers/archive.js'

let dir: string
let baseFile: string
let baseMeta: AirlockMetadata
/** the base's two images: `a` has layers [shared, ownA], `b` has [shared, ownB] */
let a: ImageRecord
let b: ImageRecord
const shared = Buffer.alloc(3000, 's')
const ownA = Buffer.alloc(2000, 'a')
const ownB = Buffer.alloc(1000, 'b')

/** A verified head whose metadata names `base` (a differential bundle) or none. */
function headOf(images: ImageRecord[], base?: AirlockMetadata['base']): VerifiedHead {
  const metadata = {bundle: {name: 'shop', version: '2.0.0'}, images, ...(base ? {base} : {})}
  return {metadata} as unknown as VerifiedHead
}

const layersOf = (img: ImageRecord) => img.manifests[0].layers
const blobRef = (img: ImageRecord, digest: string) => img.blobs.find((x) => x.digest === digest)!

/** A destination that records what reaches it; `missing` answers from `held` when given. */
function fakeDestination(held?: Set<string>): Destination & {calls: string[]; blobs: Map<string, Buffer>} {
  const calls: string[] = []
  const blobs = new Map<string, Buffer>()
  return {
    kind: 'fake',
    calls,
    blobs,
    async begin() { calls.push('begin') },
    async blob(digest, _size, data) {
      const got: Buffer[] = []
      for await (const c of data) got.push(Buffer.from(c))
      blobs.set(digest, Buffer.concat(got))
      calls.push(`blob ${digest}`)
    },
    async commit() { calls.push('commit') },
    async confirm() { calls.push('confirm'); return [] },
    ...(held ? {async missing(digests: string[]) { calls.push(`missing ${digests.join(',')}`); return digests.filter((d) => !held.has(d)) }} : {}),
  }
}

describe('differential bundles', () => {
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-differential-'))
    baseFile = path.join(dir, 'base.tar')
    baseMeta = await syntheticArchive(path.join(dir, 'blobs'), baseFile, [
      {name: 'example.test/a:1', layers: [shared, ownA]},
      {name: 'example.test/b:1', layers: [shared, ownB]},
    ])
    a = baseMeta.images[0]
    b = baseMeta.images[1]
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('externalBlobs: the base\'s blobs that the selected images need, with their sizes', () => {
    const [sharedDigest, ownADigest] = layersOf(a)
    const ownBDigest = layersOf(b)[1]
    const base = {name: 'synthetic', version: '1.0.0', blobs: [blobRef(a, sharedDigest), blobRef(a, ownADigest), blobRef(b, ownBDigest)]}
    assert.deepEqual([...externalBlobs(headOf([a, b], base), [a])], [[sharedDigest, shared.length], [ownADigest, ownA.length]])
    assert.deepEqual([...externalBlobs(headOf([a, b], base), [b])], [[sharedDigest, shared.length], [ownBDigest, ownB.length]])
    assert.equal(externalBlobs(headOf([a, b]), [a, b]).size, 0, 'not a differential bundle')
  })

  it('without --base: a target that cannot tell what it holds is refused, naming the base', async () => {
    const base = {name: 'synthetic', version: '1.0.0', blobs: [blobRef(a, layersOf(a)[0])]}
    const dest = requireBaseOnTarget(fakeDestination(), () => [a])
    assert.equal(dest.kind, 'fake')
    await assert.rejects(dest.begin!(headOf([a], base)), (e: unknown) => {
      assert.ok(e instanceof InputError, String(e))
      assert.equal(e.code, 'install.differential_unsupported')
      assert.match(e.message, /^shop 2\.0\.0 is a differential bundle: it leaves out 1 blob\(s\) shipped by synthetic 1\.0\.0, and fake cannot load a partial archive\. Pass --base/)
      return true
    })
    // a bundle that is not differential goes through, and so do images that need nothing from the base
    await dest.begin!(headOf([a]))
    await requireBaseOnTarget(fakeDestination(), () => [b]).begin!(headOf([a, b], {...base, blobs: [blobRef(a, layersOf(a)[1])]}))
  })

  it('without --base: the target is asked for exactly the blobs left out, and refused when it lacks one', async () => {
    const [sharedDigest, ownADigest] = layersOf(a)
    const base = {name: 'synthetic', version: '1.0.0', blobs: [blobRef(a, sharedDigest), blobRef(a, ownADigest)]}
    const lacking = fakeDestination(new Set([sharedDigest]))
    await assert.rejects(requireBaseOnTarget(lacking, () => [a]).begin!(headOf([a], base)), (e: unknown) => {
      assert.ok(e instanceof InputError, String(e))
      assert.equal(e.code, 'install.base_missing')
      assert.equal(e.message, `the target lacks 1 of the 2 blob(s) this differential bundle expects from synthetic 1.0.0 (e.g. ${ownADigest}): install synthetic 1.0.0 there first, or pass --base with its archive`)
      return true
    })
    assert.deepEqual(lacking.calls, ['begin', `missing ${sharedDigest},${ownADigest}`])
    const holding = fakeDestination(new Set([sharedDigest, ownADigest]))
    const dest = requireBaseOnTarget(holding, () => [a])
    await dest.begin!(headOf([a], base))
    await dest.confirm()
    assert.deepEqual(holding.calls, ['begin', `missing ${sharedDigest},${ownADigest}`, 'confirm'])
  })

  it('with --base: the blobs left out are streamed from the base archive, each once, before the commit', async () => {
    const [sharedDigest, ownADigest] = layersOf(a)
    const base = {name: 'synthetic', version: '1.0.0', blobs: [blobRef(a, sharedDigest), blobRef(a, ownADigest), blobRef(b, layersOf(b)[1])]}
    const inner = fakeDestination()
    const dest = withBaseArchive(inner, () => [a], {parts: [baseFile], trustedKeys: [], allowUnsigned: true})
    await dest.commit!(headOf([a], base))
    assert.deepEqual(inner.calls, [`blob ${sharedDigest}`, `blob ${ownADigest}`].sort().concat('commit'))
    assert.ok(inner.blobs.get(sharedDigest)!.equals(shared))
    assert.ok(inner.blobs.get(ownADigest)!.equals(ownA))
  })

  it('with --base: a bundle that is not differential commits without reading the base', async () => {
    const inner = fakeDestination()
    await withBaseArchive(inner, () => [a], {parts: [path.join(dir, 'no-such-base.tar')], trustedKeys: [], allowUnsigned: true}).commit!(headOf([a]))
    assert.deepEqual(inner.calls, ['commit'])
  })

  it('with --base: the wrong base bundle, or one lacking a blob, is refused and nothing is committed', async () => {
    const sharedDigest = layersOf(a)[0]
    const wrong = fakeDestination()
    await assert.rejects(withBaseArchive(wrong, () => [a], {parts: [baseFile], trustedKeys: [], allowUnsigned: true}).commit!(headOf([a], {name: 'synthetic', version: '0.9.0', blobs: [blobRef(a, sharedDigest)]})),
      (e: unknown) => e instanceof InputError && e.code === 'install.wrong_base' && e.message === '--base is synthetic 1.0.0, but this bundle was made against synthetic 0.9.0')
    assert.ok(!wrong.calls.includes('commit'))

    // a blob the base does not have, and one it has at another size
    const absent = {digest: `sha256:${'e'.repeat(64)}`, size: 10}
    const resized = {...blobRef(a, sharedDigest), size: shared.length + 1}
    const needy: ImageRecord = {...a, blobs: [...a.blobs.filter((x) => x.digest !== sharedDigest), resized, absent]}
    const lacking = fakeDestination()
    await assert.rejects(withBaseArchive(lacking, () => [needy], {parts: [baseFile], trustedKeys: [], allowUnsigned: true}).commit!(headOf([needy], {name: 'synthetic', version: '1.0.0', blobs: [resized, absent]})),
      (e: unknown) => e instanceof AirlockError && e.code === 'install.base_incomplete' && e.message.startsWith(`--base ${baseFile} lacks 2 blob(s) this bundle needs`))
    assert.ok(!lacking.calls.includes('commit'))
  })
})
