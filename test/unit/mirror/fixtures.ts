/** Hand-made image records (the signed metadata of a bundle), for the mirror and diff unit tests. */
import type {ImageRecord} from '../../../src/transports/archive/metadata.js'

export const digest = (c: string) => `sha256:${c.repeat(64).slice(0, 64)}`

/** One image; `platforms` maps platform → [manifest, config, ...layers] as one-letter digests, each blob 100 × its position + 10 bytes. */
export function image(name: string, top: string, platforms: Record<string, string[]>): ImageRecord {
  const manifests = Object.entries(platforms).map(([platform, [m, config, ...layers]]) => ({
    digest: digest(m), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, platform, config: digest(config), layers: layers.map(digest),
  }))
  const blobs = new Map<string, number>([[digest(top), 10]])
  for (const [m, config, ...layers] of Object.values(platforms)) {
    blobs.set(digest(m), 10)
    blobs.set(digest(config), 20)
    for (const l of layers) blobs.set(digest(l), sizeOf(l))
  }
  return {
    ref: name, name, mediaType: 'application/vnd.oci.image.index.v1+json', digest: digest(top), size: 10, sourceDigest: digest(top),
    platforms: Object.keys(platforms), manifests, dockerManifest: manifests[0].digest, blobs: [...blobs].map(([d, size]) => ({digest: d, size})),
  }
}

/** The size of the layer named by one letter: distinct per letter, so sums identify the layers. */
export function sizeOf(letter: string): number {
  return 1000 * (letter.charCodeAt(0) - 96)
}
