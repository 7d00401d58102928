/** Helpers for tests that need archives without a registry: synthetic images and raw tar surgery. */
import {createHash, randomBytes} from 'node:crypto'
import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type * as openpgp from 'openpgp'

import {MediaType} from '../../src/core/model.js'
import {AirlockMetadata, FORMAT_VERSION, ImageRecord} from '../../src/transports/archive/metadata.js'
import {BlobFile, writeArchive} from '../../src/transports/archive/writer.js'
import {BLOCK, encodeHeader, paddingFor} from '../../src/transports/archive/tar.js'

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

export interface SyntheticImage {
  name: string
  layers: Buffer[]
  /** The config's rootfs.diff_ids (default: the sha256 of each layer as it is, i.e. uncompressed layers). */
  diffIds?: string[]
  /** Default application/vnd.oci.image.layer.v1.tar. */
  layerMediaType?: string
}

/** Build a signed (or unsigned) archive of synthetic single-platform OCI images. */
export async function syntheticArchive(dir: string, out: string, images: SyntheticImage[], opts: {key?: openpgp.PrivateKey; epoch?: number; expires?: string; partSize?: number; bundleName?: string} = {}): Promise<AirlockMetadata> {
  await mkdir(dir, {recursive: true})
  const blobs = new Map<string, BlobFile>()
  const put = async (data: Buffer) => {
    const d = sha(data)
    if (!blobs.has(d)) {
      const p = path.join(dir, d.slice(7))
      await writeFile(p, data)
      blobs.set(d, {digest: d, size: data.length, path: p})
    }
    return d
  }
  const records: ImageRecord[] = []
  let referenced = 0
  for (const img of images) {
    const config = Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', rootfs: {type: 'layers', diff_ids: img.diffIds ?? img.layers.map(sha)}, config: {}}))
    const configDigest = await put(config)
    const layerDescs = []
    for (const l of img.layers) layerDescs.push({mediaType: img.layerMediaType ?? 'application/vnd.oci.image.layer.v1.tar', digest: await put(l), size: l.length})
    const manifest = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: {mediaType: MediaType.OCI_CONFIG, digest: configDigest, size: config.length}, layers: layerDescs}))
    const md = await put(manifest)
    const own = [{digest: md, size: manifest.length}, {digest: configDigest, size: config.length}, ...layerDescs.map((l) => ({digest: l.digest, size: l.size}))]
    const uniq = [...new Map(own.map((o) => [o.digest, o])).values()]
    referenced += uniq.reduce((a, b) => a + b.size, 0)
    records.push({
      ref: img.name, name: img.name, mediaType: MediaType.OCI_MANIFEST, digest: md, size: manifest.length, sourceDigest: md,
      platforms: ['linux/amd64'],
      manifests: [{digest: md, mediaType: MediaType.OCI_MANIFEST, size: manifest.length, platform: 'linux/amd64', config: configDigest, layers: layerDescs.map((l) => l.digest)}],
      dockerManifest: md, blobs: uniq,
    })
  }
  const all = [...blobs.values()]
  const metadata: AirlockMetadata = {
    formatVersion: FORMAT_VERSION,
    tool: {name: 'airlock', version: 'test'},
    bundle: {name: opts.bundleName ?? 'synthetic', version: '1.0.0', created: new Date((opts.epoch ?? 0) * 1000).toISOString(), ...(opts.expires ? {expires: opts.expires} : {})},
    images: records,
    blobs: {count: all.length, bytes: all.reduce((a, b) => a + b.size, 0), referencedBytes: referenced},
    ...(opts.partSize ? {split: {partSize: opts.partSize}} : {}),
  }
  await writeArchive(out, {metadata, blobs: all, signingKey: opts.key, epoch: opts.epoch ?? 0, ...(opts.partSize ? {partSize: opts.partSize} : {})})
  return metadata
}

export function randomLayer(size: number): Buffer {
  return randomBytes(size)
}

export interface RawEntry {
  name: string
  data: Buffer
  /** typeflag override for hostile entries */
  type?: string
  /** header offset in the original archive */
  offset?: number
}

/** Parse OUR archives (trusted test input) into entries. */
export function splitTar(buf: Buffer): RawEntry[] {
  const out: RawEntry[] = []
  let off = 0
  while (off + BLOCK <= buf.length) {
    const h = buf.subarray(off, off + BLOCK)
    if (h.every((b) => b === 0)) break
    const name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '')
    const size = Number.parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8)
    out.push({name, data: buf.subarray(off + BLOCK, off + BLOCK + size), offset: off})
    off += BLOCK + size + paddingFor(size)
  }
  return out
}

/** Offset of the first data byte of an entry in an archive. */
export function dataOffset(buf: Buffer, name: string): number {
  const e = splitTar(buf).find((x) => x.name === name)
  if (!e) throw new Error(`no entry ${name}`)
  return e.offset! + BLOCK
}

/** Build a tar from entries; `type` lets tests write links and other hostile kinds. */
export function joinTar(entries: RawEntry[], opts: {trailer?: boolean} = {}): Buffer {
  const parts: Buffer[] = []
  for (const e of entries) {
    let h: Buffer
    if (Buffer.byteLength(e.name) > 100 || e.type) {
      h = encodeHeader('placeholder', e.data.length, 0)
      h.fill(0, 0, 100)
      h.write(e.name.slice(0, 100), 0, 'utf8')
      if (e.type) {
        h[156] = e.type.charCodeAt(0)
        if (e.type === '2') h.write('/etc/passwd', 157, 'utf8')
      }
      h.fill(0x20, 148, 156)
      let sum = 0
      for (let i = 0; i < BLOCK; i++) sum += h[i]
      h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
    } else {
      h = encodeHeader(e.name, e.data.length, 0)
    }
    parts.push(h, e.data, Buffer.alloc(paddingFor(e.data.length)))
  }
  if (opts.trailer !== false) parts.push(Buffer.alloc(BLOCK * 2))
  return Buffer.concat(parts)
}
