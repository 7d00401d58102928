/** Small images (config, layers, manifests, index) held in memory, for resolve tests. */
import {sha256Digest} from '../../../src/core/digest.js'
import {type Descriptor, type Platform, MediaType} from '../../../src/core/model.js'

export interface Blob {
  bytes: Buffer
  mediaType: string
}

/** digest → blob: what a registry would serve. */
export class Content {
  readonly blobs = new Map<string, Blob>()

  add(bytes: Buffer | string, mediaType: string): Descriptor {
    const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes)
    const digest = sha256Digest(b)
    this.blobs.set(digest, {bytes: b, mediaType})
    return {mediaType, digest, size: b.length}
  }

  /** An image manifest for `platform` with one layer; returns its descriptor (with platform). */
  image(platform: Platform, layer = `layer of ${platform.os}/${platform.architecture}`): Descriptor {
    const config = this.add(JSON.stringify({os: platform.os, architecture: platform.architecture, variant: platform.variant}), MediaType.OCI_CONFIG)
    const l = this.add(layer, 'application/vnd.oci.image.layer.v1.tar')
    const m = this.add(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config, layers: [l]}), MediaType.OCI_MANIFEST)
    return {...m, platform}
  }

  /** A BuildKit attestation manifest for the image `subject`, as its index entry lists it. */
  attestation(subject: Descriptor): Descriptor {
    const config = this.add('{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}', MediaType.OCI_CONFIG)
    const statement = this.add(JSON.stringify({_type: 'https://in-toto.io/Statement/v0.1', subject: [{digest: {sha256: subject.digest.slice(7)}}]}), MediaType.IN_TOTO)
    const m = this.add(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config, layers: [statement]}), MediaType.OCI_MANIFEST)
    return {...m, platform: {os: 'unknown', architecture: 'unknown'}, annotations: {'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': subject.digest}}
  }

  /** A Helm chart in Helm's OCI format. */
  chart(name = 'demo'): Descriptor {
    const config = this.add(JSON.stringify({name, version: '1.0.0'}), MediaType.HELM_CONFIG)
    const chart = this.add(`chart ${name}`, MediaType.HELM_CHART)
    return this.add(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config, layers: [chart]}), MediaType.OCI_MANIFEST)
  }

  index(manifests: Descriptor[]): Descriptor {
    return this.add(JSON.stringify({schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests}), MediaType.OCI_INDEX)
  }

  get(digest: string): Blob {
    const b = this.blobs.get(digest)
    if (!b) throw new Error(`no blob ${digest}`)
    return b
  }
}

export const AMD64: Platform = {os: 'linux', architecture: 'amd64'}
export const ARM64: Platform = {os: 'linux', architecture: 'arm64', variant: 'v8'}
