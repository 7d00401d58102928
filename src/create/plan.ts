import type * as openpgp from 'openpgp'

import {imageBlobs, ResolvedImage} from '../resolve/resolve.js'
import type {BundleSpec} from '../spec/types.js'
import {AirlockMetadata, bundleLayers, FORMAT_VERSION, ImageRecord} from '../transports/archive/metadata.js'
import {resolveArchiveParts} from '../transports/archive/parts.js'
import {readArchive} from '../transports/archive/reader.js'
import {ArchivePlan, planArchive} from '../transports/archive/writer.js'
import {TOOL_VERSION} from '../version.js'

/** The bundle a differential (--since) bundle is built against: the layers it shipped or expected. */
export interface PreviousBundle {
  name: string
  version: string
  layers: Set<string>
}

/** The layers a previous bundle shipped or expected (its metadata only; it is our own earlier output). */
export async function previousBundle(archive: string): Promise<PreviousBundle> {
  const {head} = await readArchive(await resolveArchiveParts(archive), {trustedKeys: [], allowUnsigned: true, headOnly: true, checkExpiry: false})
  return {name: head.metadata.bundle.name, version: head.metadata.bundle.version, layers: bundleLayers(head.metadata)}
}

/** What every layout of this run shares: the bundle, its timestamps and signing key. */
export interface LayoutContext {
  spec: BundleSpec
  /** Seconds since the epoch for every timestamp in the archive. */
  epoch: number
  expires?: Date
  signingKey?: openpgp.PrivateKey
  splitSize?: number
  previous?: PreviousBundle
}

/** A blob the archive holds, and an image to pull it from. */
export interface UniqueBlob {
  digest: string
  size: number
  image: ResolvedImage
}

/** Everything the archive of some images holds, and its signed layout. */
export interface ArchiveLayout {
  /** Blobs written into the archive, by digest. */
  unique: Map<string, UniqueBlob>
  /** Blobs left out because the previous bundle (--since) has them. */
  external: {digest: string; size: number}[]
  records: ImageRecord[]
  referencedBytes: number
  uniqueBytes: number
  plan: ArchivePlan
  /** --since: the bundle this one is differential against. */
  previous?: PreviousBundle
}

/**
 * Lay out the archive of `images`: the metadata is complete and signed, and every blob's offset
 * fixed, before any blob moves.
 */
export async function planLayout(images: ResolvedImage[], ctx: LayoutContext): Promise<ArchiveLayout> {
  const unique = new Map<string, UniqueBlob>()
  let referencedBytes = 0
  for (const image of images) {
    for (const b of imageBlobs(image)) {
      referencedBytes += b.size
      if (!unique.has(b.digest)) unique.set(b.digest, {digest: b.digest, size: b.size, image})
    }
  }
  const external = [...unique.values()].filter((b) => ctx.previous?.layers.has(b.digest)).map((b) => ({digest: b.digest, size: b.size}))
  for (const b of external) unique.delete(b.digest)
  const records = images.map((img) => imageRecord(img))
  const uniqueBytes = [...unique.values()].reduce((a, b) => a + b.size, 0)
  const metadata = bundleMetadata(ctx, records, {count: unique.size, bytes: uniqueBytes, referencedBytes}, external)
  const plan = await planArchive({
    metadata, blobs: [...unique.values()].map((b) => ({digest: b.digest, size: b.size})), signingKey: ctx.signingKey, epoch: ctx.epoch,
    ...(ctx.splitSize ? {partSize: ctx.splitSize} : {}),
  })
  return {unique, external, records, referencedBytes, uniqueBytes, plan, ...(ctx.previous ? {previous: ctx.previous} : {})}
}

function bundleMetadata(ctx: LayoutContext, images: ImageRecord[], blobs: AirlockMetadata['blobs'], external: {digest: string; size: number}[]): AirlockMetadata {
  const {spec, previous} = ctx
  return {
    formatVersion: FORMAT_VERSION,
    tool: {name: 'airlock', version: TOOL_VERSION},
    bundle: {
      name: spec.metadata.name,
      version: spec.metadata.version,
      ...(spec.metadata.description ? {description: spec.metadata.description} : {}),
      created: new Date(ctx.epoch * 1000).toISOString(),
      ...(ctx.expires ? {expires: ctx.expires.toISOString()} : {}),
    },
    images,
    blobs,
    ...(ctx.splitSize ? {split: {partSize: ctx.splitSize}} : {}),
    ...(previous ? {base: {name: previous.name, version: previous.version, blobs: [...external].sort((x, y) => (x.digest < y.digest ? -1 : 1))}} : {}),
  }
}

function imageRecord(img: ResolvedImage): ImageRecord {
  const blobs = imageBlobs(img).map((b) => ({digest: b.digest, size: b.size}))
  return {
    ref: img.spec.refString,
    name: img.spec.name,
    mediaType: img.top.mediaType,
    digest: img.top.digest,
    size: img.top.size,
    sourceDigest: img.sourceDigest,
    platforms: img.platforms,
    manifests: img.manifests.map((m) => ({
      digest: m.digest, mediaType: m.mediaType, size: m.size, platform: m.platform, config: m.config.digest, layers: m.layers.map((l) => l.digest),
      kind: m.kind,
      ...(m.artifactType ? {artifactType: m.artifactType} : {}),
      ...(m.subject ? {subject: m.subject} : {}),
      ...(m.zstd ? {zstd: true as const} : {}),
    })),
    ...(img.indexes.length > 0 ? {indexes: img.indexes.map((ix) => ({digest: ix.digest, mediaType: ix.mediaType, size: ix.size, manifests: ix.manifests}))} : {}),
    ...(img.dockerManifest ? {dockerManifest: img.dockerManifest} : {}),
    ...(img.omitted ? {omitted: img.omitted} : {}),
    ...(img.referrerOf ? {referrerOf: img.referrerOf} : {}),
    ...(img.upstream ? {upstream: img.upstream} : {}),
    ...(img.content ? {content: img.content} : {}),
    blobs,
  }
}
