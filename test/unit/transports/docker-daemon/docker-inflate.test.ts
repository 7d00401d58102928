/**
 * install --to docker sends gzip layers inflated (dockerd's classic store then has no gzip to
 * undo after the upload). The pieces that decide and do it, without a daemon: the size taken
 * from the gzip trailer, the store detection, and the tar entry written by
 * VerifiedTarStream.inflatedBlob (its size check, and that a verification error of the source
 * wins over an inflate problem). The real dockerd runs in install-engines.test.ts.
 */
import assert from 'node:assert/strict'
import {createHash, randomBytes} from 'node:crypto'
import {gzipSync} from 'node:zlib'
import {describe, it} from 'node:test'

import {VerifyError} from '../../../../src/core/errors.js'
import {InflatedSizeError, VerifiedTarStream} from '../../../../src/transports/docker-archive/tarstream.js'
import type {VerifiedHead} from '../../../../src/transports/archive/reader.js'
import type {ImageRecord} from '../../../../src/transports/archive/metadata.js'
import {classicImageStore, inflatedSizeFor} from '../../../../src/transports/docker-daemon/destination.js'
import {splitTar} from '../../../helpers/archive.js'

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

describe('inflatedSizeFor: the size announced for a layer sent inflated', () => {
  it('takes ISIZE from a gzip with a plausible trailer', () => {
    assert.equal(inflatedSizeFor(1000, {magic: true, untrustedIsize: 5000}), 5000)
    assert.equal(inflatedSizeFor(40_000_000, {magic: true, untrustedIsize: 100_000_000}), 100_000_000)
    assert.equal(inflatedSizeFor(100_000, {magic: true, untrustedIsize: 120_000}), 120_000)
  })
  it('sends incompressible layers as they are (gzip saved less than 10%)', () => {
    assert.equal(inflatedSizeFor(100_050, {magic: true, untrustedIsize: 100_000}), undefined)
    assert.equal(inflatedSizeFor(150_000_000, {magic: true, untrustedIsize: 160_000_000}), undefined)
  })
  it('sends the layer as it is when it is not gzip, too small, or ISIZE cannot be the size', () => {
    assert.equal(inflatedSizeFor(1000, {magic: false, untrustedIsize: 5000}), undefined)
    assert.equal(inflatedSizeFor(19, {magic: true, untrustedIsize: 5000}), undefined)
    // less than the compressed size: wrapped at 4 GiB
    assert.equal(inflatedSizeFor(10_000_000, {magic: true, untrustedIsize: 1_000_000}), undefined)
    // 1 GiB of gzip claiming 1.5 GiB may as well be 5.5 GiB (a ratio of 5): too ambiguous
    assert.equal(inflatedSizeFor(2 ** 30, {magic: true, untrustedIsize: 1.5 * 2 ** 30}), undefined)
    // 100 MB claiming 300 MB: the alternative (4.3 GB, a ratio of 43) is unlikely
    assert.equal(inflatedSizeFor(100_000_000, {magic: true, untrustedIsize: 300_000_000}), 300_000_000)
  })
})

describe('classicImageStore', () => {
  it('is true for a graphdriver, false for the containerd image store or an unknown answer', () => {
    assert.equal(classicImageStore({Driver: 'overlay2', DriverStatus: [['Backing Filesystem', 'extfs']]}), true)
    assert.equal(classicImageStore({Driver: 'vfs', DriverStatus: null}), true)
    assert.equal(classicImageStore({Driver: 'overlayfs', DriverStatus: [['driver-type', 'io.containerd.snapshotter.v1']]}), false)
    assert.equal(classicImageStore({}), false)
  })
})

const image = (layers: string[]): ImageRecord => ({
  ref: 'x', name: 'x:1', mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:' + 'a'.repeat(64), size: 1,
  sourceDigest: 'sha256:' + 'a'.repeat(64), platforms: ['linux/amd64'],
  manifests: [{digest: 'sha256:' + 'a'.repeat(64), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1, platform: 'linux/amd64', config: 'sha256:' + 'c'.repeat(64), layers}],
  dockerManifest: 'sha256:' + 'a'.repeat(64), blobs: layers.map((digest) => ({digest, size: 1})),
})

async function* chunks(buf: Buffer, size = 7000, failAtEnd?: Error): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) {
    if (failAtEnd && i + size >= buf.length) {
      // as the reader does: the last piece only after the whole blob hashed (later than inflate's verdict)
      await new Promise((r) => setTimeout(r, 100))
      throw failAtEnd
    }
    yield buf.subarray(i, i + size)
  }
}

/** Run begin + one inflatedBlob + finish; return the tar bytes, or the error. */
async function run(gz: Buffer, declared: number, data?: AsyncIterable<Buffer>): Promise<{tar?: Buffer; error?: unknown}> {
  const t = new VerifiedTarStream()
  const out: Buffer[] = []
  t.stream.on('data', (c: Buffer) => out.push(c))
  const ended = new Promise((r) => t.stream.on('end', r))
  const digest = sha(gz)
  try {
    await t.begin({} as VerifiedHead, [image([digest])], {ociLayout: false})
    await t.inflatedBlob(digest, declared, data ?? chunks(gz))
    await t.finish()
    await ended
    return {tar: Buffer.concat(out)}
  } catch (error) {
    return {error}
  }
}

describe('VerifiedTarStream.inflatedBlob', () => {
  const layer = Buffer.concat([randomBytes(300_000), Buffer.alloc(200_000, 'a')])
  const gz = gzipSync(layer)

  it('writes the inflated layer under the blob name, with the declared size; no OCI layout with ociLayout: false', async () => {
    const {tar, error} = await run(gz, layer.length)
    assert.equal(error, undefined)
    const entries = splitTar(tar!)
    assert.deepEqual(entries.map((e) => e.name), ['manifest.json', `blobs/sha256/${sha(gz).slice(7)}`])
    assert.ok(entries[1].data.equals(layer))
  })

  it('a gzip of several members inflates to more than the last member\'s ISIZE: InflatedSizeError', async () => {
    const two = Buffer.concat([gzipSync(layer.subarray(0, 250_000)), gzipSync(layer.subarray(250_000))])
    const isize = two.readUInt32LE(two.length - 4)
    assert.equal(isize, 250_000)
    const {error} = await run(two, isize)
    assert.ok(error instanceof InflatedSizeError, String(error))
    assert.equal(error.code, 'install.inflated_size')
    assert.match(error.message, /inflates to more than 250000 bytes/)
  })

  it('fewer bytes than declared: InflatedSizeError', async () => {
    const {error} = await run(gz, layer.length + 1)
    assert.ok(error instanceof InflatedSizeError)
    assert.match(error.message, new RegExp(`inflates to ${layer.length} bytes`))
  })

  it('bytes that are not gzip: InflatedSizeError once the blob verified', async () => {
    const junk = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), randomBytes(50_000)])
    const {error} = await run(junk, 100_000)
    assert.ok(error instanceof InflatedSizeError, String(error))
    assert.match(error.message, /cannot be inflated/)
  })

  it('a source that fails verification is reported as such, even when the bytes also break gzip', async () => {
    const bad = Buffer.from(gz)
    bad[11] ^= 0xff // the first deflate block header: inflate fails on the first chunk
    const verr = new VerifyError('archive.digest_mismatch', 'blob: sha256 differs', {entry: 'blobs/sha256/x'})
    for (const b of [bad, gz]) {
      const {error} = await run(b, layer.length, chunks(b, 7000, verr))
      assert.equal(error, verr)
    }
  })
})
