/**
 * Format 3 entries are graphs: nested indexes, attestations, artifacts with a subject. The reader
 * accepts a consistent graph and refuses metadata that describes another graph than the blobs hold.
 */
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {VerifyError} from '../../../../src/core/errors.js'
import {MediaType} from '../../../../src/core/model.js'
import {AirlockMetadata, buildDockerManifestJson, FORMAT_VERSION, ImageRecord} from '../../../../src/transports/archive/metadata.js'
import {readArchive} from '../../../../src/transports/archive/reader.js'
import {BlobFile, writeArchive} from '../../../../src/transports/archive/writer.js'

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

let dir: string
before(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-graph-')) })
after(async () => { await rm(dir, {recursive: true, force: true}) })

/** A nested index (top → inner → amd64 image) plus an OCI 1.1 artifact whose subject is the image. */
async function graph(): Promise<{blobs: Map<string, BlobFile>; record: ImageRecord; artifact: ImageRecord}> {
  const blobs = new Map<string, BlobFile>()
  const put = async (data: Buffer | string, mediaType: string) => {
    const b = Buffer.from(data)
    const d = sha(b)
    const p = path.join(dir, d.slice(7))
    await writeFile(p, b)
    blobs.set(d, {digest: d, size: b.length, path: p})
    return {mediaType, digest: d, size: b.length}
  }
  const layer = await put('layer bytes', 'application/vnd.oci.image.layer.v1.tar')
  const config = await put(JSON.stringify({os: 'linux', architecture: 'amd64', rootfs: {type: 'layers', diff_ids: [layer.digest]}}), MediaType.OCI_CONFIG)
  const image = await put(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config, layers: [layer]}), MediaType.OCI_MANIFEST)
  const inner = await put(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [{...image, platform: {os: 'linux', architecture: 'amd64'}}]}), MediaType.OCI_INDEX)
  const top = await put(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [inner]}), MediaType.OCI_INDEX)
  const empty = await put('{}', MediaType.OCI_EMPTY)
  const payload = await put('{"sbom":true}', 'application/vnd.example.sbom.v1+json')
  const art = await put(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, artifactType: 'application/vnd.example.sbom.v1+json', config: empty, layers: [payload], subject: image}), MediaType.OCI_MANIFEST)
  const own = (ds: {digest: string; size: number}[]) => ds.map((d) => ({digest: d.digest, size: d.size}))
  const record: ImageRecord = {
    ref: 'r.io/app:1', name: 'r.io/app:1', mediaType: MediaType.OCI_INDEX, digest: top.digest, size: top.size, sourceDigest: top.digest,
    platforms: ['linux/amd64'],
    manifests: [{digest: image.digest, mediaType: image.mediaType, size: image.size, platform: 'linux/amd64', config: config.digest, layers: [layer.digest], kind: 'image'}],
    indexes: [{digest: top.digest, mediaType: top.mediaType, size: top.size, manifests: [inner.digest]}, {digest: inner.digest, mediaType: inner.mediaType, size: inner.size, manifests: [image.digest]}],
    dockerManifest: image.digest,
    blobs: own([top, inner, image, config, layer]),
  }
  const artifact: ImageRecord = {
    ref: 'r.io/app:sbom', name: 'r.io/app:sbom', mediaType: MediaType.OCI_MANIFEST, digest: art.digest, size: art.size, sourceDigest: art.digest,
    platforms: [],
    manifests: [{digest: art.digest, mediaType: art.mediaType, size: art.size, platform: 'unknown', config: empty.digest, layers: [payload.digest], kind: 'artifact', artifactType: 'application/vnd.example.sbom.v1+json', subject: image.digest}],
    blobs: own([art, empty, payload]),
  }
  return {blobs, record, artifact}
}

async function archiveOf(name: string, images: ImageRecord[], blobs: Map<string, BlobFile>): Promise<string> {
  const used = new Set(images.flatMap((i) => i.blobs.map((b) => b.digest)))
  const all = [...blobs.values()].filter((b) => used.has(b.digest))
  const metadata: AirlockMetadata = {
    formatVersion: FORMAT_VERSION, tool: {name: 'airlock', version: 'test'},
    bundle: {name: 'graph', version: '1.0.0', created: new Date(0).toISOString()},
    images, blobs: {count: all.length, bytes: all.reduce((a, b) => a + b.size, 0), referencedBytes: all.reduce((a, b) => a + b.size, 0)},
  }
  const out = path.join(dir, name)
  await writeArchive(out, {metadata, blobs: all, epoch: 0})
  return out
}

const read = (file: string) => readArchive([file], {trustedKeys: [], allowUnsigned: true})

describe('format 3: an entry is a graph', () => {
  it('a nested index and an artifact with a subject are read and checked; manifest.json lists only the runnable entry', async () => {
    const {blobs, record, artifact} = await graph()
    const file = await archiveOf('good.tar', [record, artifact], blobs)
    const {head} = await read(file)
    assert.equal(head.metadata.formatVersion, 3)
    const docker = JSON.parse(buildDockerManifestJson(head.metadata.images).toString()) as unknown[]
    assert.equal(docker.length, 1, 'the artifact is not a docker image')
  })

  it('metadata that leaves the nested index out is refused: the top index lists a digest the entry does not describe', async () => {
    const {blobs, record} = await graph()
    const bad = {...record, indexes: [record.indexes![0]], blobs: record.blobs.filter((b) => b.digest !== record.indexes![1].digest)}
    await assert.rejects(read(await archiveOf('no-inner.tar', [bad], blobs)), (e: unknown) => e instanceof VerifyError && /lists sha256:[a-f0-9]{64}, which the entry does not describe/.test(e.message))
  })

  it('an index record that lists other digests than the index blob is refused', async () => {
    const {blobs, record} = await graph()
    const [top, inner] = record.indexes!
    const bad = {...record, indexes: [top, {...inner, manifests: [record.manifests[0].digest, record.manifests[0].digest.replace(/.$/, '0')]}]}
    bad.manifests = [...record.manifests, {...record.manifests[0], digest: record.manifests[0].digest.replace(/.$/, '0')}]
    await assert.rejects(read(await archiveOf('wrong-children.tar', [bad], blobs)), (e: unknown) => e instanceof VerifyError)
  })

  it("a manifest whose subject is not the one airlock.json names is refused", async () => {
    const {blobs, artifact} = await graph()
    const bad = {...artifact, manifests: [{...artifact.manifests[0], subject: `sha256:${'0'.repeat(64)}`}]}
    await assert.rejects(read(await archiveOf('subject.tar', [bad], blobs)), (e: unknown) => e instanceof VerifyError && /subject is not the one airlock.json names/.test(e.message))
  })

  it('an entry with nothing runnable has no dockerManifest; before format 3 that was required', async () => {
    const {blobs, artifact} = await graph()
    await read(await archiveOf('artifact.tar', [artifact], blobs))
    const {record} = await graph()
    const noDocker = {...record}
    delete noDocker.dockerManifest
    // An entry WITH a runnable image and no dockerManifest is fine too (format 3 allows it); the metadata decides.
    await read(await archiveOf('no-docker.tar', [noDocker], blobs))
  })
})
