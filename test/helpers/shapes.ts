/**
 * The shapes of content real registries serve today, built here and pushed byte for byte to a
 * testbed registry (registry-push.ts), with runnable linux/amd64 images (a static busybox and a
 * script that prints a line) wherever the shape is an image:
 *
 * - buildkit: a BuildKit-style multi-arch index (linux/amd64, linux/arm64, and one in-toto
 *   attestation manifest per platform, `unknown/unknown`, annotated as BuildKit does);
 * - nested: an index listing a child index (linux/amd64 + linux/arm64) and a linux/arm/v7 image;
 * - chart: a Helm chart in Helm's OCI format (tag = chart version);
 * - sbom: an image (tag 1), an OCI 1.1 artifact (`artifactType`, the empty config, `subject` = that
 *   image) pushed by digest, and the referrers fallback tag `sha256-<hex of the image>`: an index
 *   listing the artifact (docker-registry 2.8 has no referrers API);
 * - signed: an image and its cosign signature under `sha256-<hex>.sig` (simple signing payload,
 *   ECDSA P-256 signature made here);
 * - zstd, plain (uncompressed layers), layers64 (64 layers): single images.
 *
 *   const shapes = await pushShapes('127.0.0.1:5301', 'shapes-run1')
 *   shapes.buildkit.ref   // 127.0.0.1:5301/shapes-run1/buildkit:1
 */
import {execFileSync} from 'node:child_process'
import {generateKeyPairSync, KeyObject, sign} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {gzipSync} from 'node:zlib'

import {pack} from 'tar-stream'

import {BuiltImage, buildImageBlobs, buildIndexBlobs, DEFAULT_EPOCH, ImageSpec, LayerSpec, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, platformString, PlatformSpec} from './images.js'
import {addBlob, addManifest, Content, emptyContent, mergeContent, pushContent} from './registry-push.js'

export const OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd'
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json'
/** The OCI empty descriptor's blob: the two bytes `{}`. */
export const EMPTY_BLOB = Buffer.from('{}')
export const EMPTY_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'
export const HELM_CONFIG = 'application/vnd.cncf.helm.config.v1+json'
export const HELM_CHART = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip'
export const IN_TOTO = 'application/vnd.in-toto+json'
export const COSIGN_SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json'
export const SBOM_ARTIFACT_TYPE = 'application/vnd.example.sbom.v1+json'
export const CHART_VERSION = '0.1.0'

/** What a test needs of a runnable linux/amd64 image: what docker loads, and what it prints. */
export interface Runnable {
  /** The platform manifest's digest. */
  manifest: string
  /** Its config digest (docker's image ID). */
  config: string
  /** `docker run --rm IMAGE` prints this line. */
  output: string
}

/** One entry of a bundle: a reference and the graph under it. */
export interface Shape {
  /** host/repository (no tag). */
  repository: string
  /** The reference for bundle.yaml (tag, digest-only or tag@digest). */
  ref: string
  /** The tag, when the shape has one. */
  tag?: string
  /** The entry's digest (its top manifest or index). */
  digest: string
  mediaType: string
  /** Every manifest and index under `digest`, itself included, parents before children. */
  manifests: string[]
  /** Every other blob (configs, layers) the graph uses. */
  blobs: string[]
  /** The linux/amd64 image an engine loads; absent for content that is not runnable. */
  runnable?: Runnable
}

export interface Shapes {
  registry: string
  prefix: string
  /** Tag ref; `images` and `attestations` by platform. */
  buildkit: Shape & {images: {amd64: string; arm64: string}; attestations: {amd64: string; arm64: string}}
  /** Digest-only ref (platforms: all); `child` is the nested index. */
  nested: Shape & {child: string}
  chart: Shape
  /** The subject image of `sbom` (tag 1). */
  sbomSubject: Shape
  /** The OCI 1.1 artifact, digest-only ref. */
  sbom: Shape
  /** The referrers fallback tag `sha256-<hex of sbomSubject>`: an index listing `sbom`. */
  referrers: Shape
  signed: Shape
  /** The cosign signature of `signed`, tag `sha256-<hex>.sig`; `publicKey` verifies it. */
  signature: Shape & {payload: Buffer; signatureB64: string; publicKey: KeyObject}
  zstd: Shape
  /** Uncompressed layers; ref `repo:1@sha256:…`. */
  plain: Shape
  /** 64 layers; digest-only ref. */
  layers64: Shape
}

// ------------------------------------------------------------------ images

let busyboxCache: Buffer | undefined
const busybox = (): Buffer => (busyboxCache ??= readFileSync('/bin/busybox'))

/** A static busybox and `/bin/sh`: enough to run /app/run.sh. */
export function busyboxLayer(): LayerSpec {
  return {files: {'bin/busybox': {content: busybox(), mode: 0o755}, 'bin/sh': {symlink: 'busybox'}}}
}

const greeting = (name: string) => `hello from shapes ${name}`

function appLayer(name: string, script = `echo "${greeting(name)}"`): LayerSpec {
  return {files: {'app/run.sh': {content: `#!/bin/sh\n${script}\n`, mode: 0o755}, 'app/name': `${name}\n`}}
}

const CMD = {Cmd: ['/bin/sh', '/app/run.sh']}

/** A runnable linux/amd64 image that prints `hello from shapes NAME`. */
export function runnableSpec(name: string, extra: LayerSpec[] = []): ImageSpec {
  return {platform: 'linux/amd64', layers: [busyboxLayer(), ...extra, appLayer(name)], config: CMD}
}

/** An image for a platform this host cannot run: one small layer of its own. */
function foreignSpec(name: string, platform: string): ImageSpec {
  return {platform, layers: [{files: {'app/run.sh': {content: `#!/bin/sh\necho ${name} ${platform}\n`, mode: 0o755}, 'app/platform': `${platform}\n`}}], config: CMD}
}

export function imageContent(img: BuiltImage): Content {
  const c = emptyContent()
  for (const [d, data] of img.blobs) if (d !== img.digest) c.blobs.set(d, data)
  c.manifests.set(img.digest, {mediaType: img.mediaType, data: img.manifest})
  return c
}

const runnableOf = (img: BuiltImage, name: string): Runnable => ({manifest: img.digest, config: img.configDigest, output: greeting(name)})

const descriptor = (d: {mediaType: string; digest: string; size: number}) => ({mediaType: d.mediaType, digest: d.digest, size: d.size})

const platformOf = (p: PlatformSpec) => ({architecture: p.architecture, os: p.os, ...(p.variant ? {variant: p.variant} : {})})

/** The same image with each layer replaced by `compress(its tar)` of media type `mediaType` (config unchanged: diff_ids are of the tars). */
function recompressed(spec: ImageSpec, mediaType: string, compress: (tar: Buffer) => Buffer): {content: Content; digest: string; config: string} {
  const plain = buildImageBlobs({...spec, layers: spec.layers.map((l) => ({...l, compression: 'none' as const}))})
  const c = emptyContent()
  c.blobs.set(plain.configDigest, plain.config)
  const layers = plain.layers.map((l) => ({mediaType, ...addBlob(c, compress(l.data))}))
  const m = addManifest(c, OCI_MANIFEST, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {mediaType: OCI_CONFIG, digest: plain.configDigest, size: plain.config.length},
    layers,
  })
  return {content: c, digest: m.digest, config: plain.configDigest}
}

/** zstd as the zstd command line writes it (the testbed installs /usr/bin/zstd). */
export function zstdCompress(data: Buffer): Buffer {
  return execFileSync('zstd', ['-q', '-c', '-3', '-T1'], {input: data, maxBuffer: 64 * 1024 * 1024})
}

// ------------------------------------------------------------------ indexes

/** A BuildKit in-toto attestation manifest for `img` (provenance, as `docker buildx build --provenance` writes it). */
function attestation(c: Content, img: BuiltImage, repository: string) {
  const statement = Buffer.from(JSON.stringify({
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType: 'https://slsa.dev/provenance/v0.2',
    subject: [{name: `pkg:docker/${repository}@1?platform=${encodeURIComponent(platformString(img.platform))}`, digest: {sha256: img.digest.slice(7)}}],
    predicate: {builder: {id: ''}, buildType: 'https://mobyproject.org/buildkit@v1', metadata: {buildInvocationID: `shapes-${img.digest.slice(7, 19)}`}},
  }))
  const layer = addBlob(c, statement)
  const config = addBlob(c, Buffer.from(JSON.stringify({architecture: 'unknown', os: 'unknown', config: {}, rootfs: {type: 'layers', diff_ids: [layer.digest]}})))
  return addManifest(c, OCI_MANIFEST, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {mediaType: OCI_CONFIG, ...config},
    layers: [{mediaType: IN_TOTO, ...layer, annotations: {'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v0.2'}}],
  })
}

export function buildkitIndex(repository: string) {
  const amd = buildImageBlobs(runnableSpec('buildkit'))
  const arm = buildImageBlobs(foreignSpec('buildkit', 'linux/arm64'))
  const c = mergeContent(emptyContent(), imageContent(amd), imageContent(arm))
  const attAmd = attestation(c, amd, repository)
  const attArm = attestation(c, arm, repository)
  const attEntry = (att: ReturnType<typeof attestation>, of: BuiltImage) => ({
    ...descriptor(att),
    annotations: {'vnd.docker.reference.digest': of.digest, 'vnd.docker.reference.type': 'attestation-manifest'},
    platform: {architecture: 'unknown', os: 'unknown'},
  })
  const index = addManifest(c, OCI_INDEX, {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      {...descriptor(amd), platform: platformOf(amd.platform)},
      {...descriptor(arm), platform: platformOf(arm.platform)},
      attEntry(attAmd, amd),
      attEntry(attArm, arm),
    ],
  })
  return {
    content: c, index, runnable: runnableOf(amd, 'buildkit'),
    manifests: [index.digest, amd.digest, arm.digest, attAmd.digest, attArm.digest],
    images: {amd64: amd.digest, arm64: arm.digest}, attestations: {amd64: attAmd.digest, arm64: attArm.digest},
  }
}

export function nestedIndex() {
  const child = buildIndexBlobs([runnableSpec('nested'), foreignSpec('nested', 'linux/arm64')])
  const armv7 = buildImageBlobs(foreignSpec('nested', 'linux/arm/v7'))
  const c = mergeContent(emptyContent(), imageContent(armv7), ...child.images.map(imageContent))
  c.manifests.set(child.digest, {mediaType: OCI_INDEX, data: child.index})
  const index = addManifest(c, OCI_INDEX, {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [descriptor(child), {...descriptor(armv7), platform: platformOf(armv7.platform)}],
  })
  return {
    content: c, index, child: child.digest, runnable: runnableOf(child.images[0], 'nested'),
    manifests: [index.digest, child.digest, ...child.images.map((i) => i.digest), armv7.digest],
  }
}

// ------------------------------------------------------------------ artifacts

async function tarGz(files: Record<string, string>): Promise<Buffer> {
  const p = pack()
  const chunks: Buffer[] = []
  p.on('data', (b: unknown) => chunks.push(b as Buffer))
  const done = new Promise<void>((resolve, reject) => {
    p.on('end', resolve)
    p.on('error', reject)
  })
  const mtime = new Date(DEFAULT_EPOCH * 1000)
  for (const [name, text] of Object.entries(files)) p.entry({name, mode: 0o644, mtime, uid: 0, gid: 0}, text)
  p.finalize()
  await done
  return gzipSync(Buffer.concat(chunks), {level: 9})
}

/** A Helm chart as `helm push` stores it: config = Chart.yaml as JSON, one layer = the chart .tgz. */
export async function helmChart() {
  const name = 'shapes-chart'
  const tgz = await tarGz({
    [`${name}/Chart.yaml`]: `apiVersion: v2\nname: ${name}\ndescription: A chart airlock carries byte for byte\ntype: application\nversion: ${CHART_VERSION}\nappVersion: "1.0.0"\n`,
    [`${name}/values.yaml`]: 'replicaCount: 1\nimage:\n  repository: registry.local/shapes/app\n  tag: "1"\n',
    [`${name}/templates/configmap.yaml`]: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-shapes\ndata:\n  replicas: "{{ .Values.replicaCount }}"\n',
  })
  const c = emptyContent()
  const config = addBlob(c, Buffer.from(JSON.stringify({name, version: CHART_VERSION, description: 'A chart airlock carries byte for byte', apiVersion: 'v2', appVersion: '1.0.0', type: 'application'})))
  const layer = addBlob(c, tgz)
  const m = addManifest(c, OCI_MANIFEST, {
    schemaVersion: 2,
    config: {mediaType: HELM_CONFIG, ...config},
    layers: [{mediaType: HELM_CHART, ...layer}],
    annotations: {'org.opencontainers.image.description': 'A chart airlock carries byte for byte', 'org.opencontainers.image.title': name, 'org.opencontainers.image.version': CHART_VERSION},
  })
  return {content: c, manifest: m, tgz}
}

/** An OCI 1.1 artifact about `subject` (an SBOM), and the referrers fallback index listing it. */
export function sbomArtifact(subject: {mediaType: string; digest: string; size: number}) {
  const c = emptyContent()
  const empty = addBlob(c, EMPTY_BLOB)
  if (empty.digest !== EMPTY_DIGEST) throw new Error(`the empty blob hashes to ${empty.digest}`)
  const sbom = addBlob(c, Buffer.from(JSON.stringify({spdxVersion: 'SPDX-2.3', SPDXID: 'SPDXRef-DOCUMENT', name: 'shapes-sbom', dataLicense: 'CC0-1.0', packages: [{name: 'busybox', SPDXID: 'SPDXRef-busybox', versionInfo: '1.35.0'}]})))
  const annotations = {'org.opencontainers.image.created': new Date(DEFAULT_EPOCH * 1000).toISOString()}
  const artifact = addManifest(c, OCI_MANIFEST, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: SBOM_ARTIFACT_TYPE,
    config: {mediaType: OCI_EMPTY, ...empty, data: 'e30='},
    layers: [{mediaType: 'application/spdx+json', ...sbom, annotations: {'org.opencontainers.image.title': 'sbom.spdx.json'}}],
    subject: descriptor(subject),
    annotations,
  })
  const referrers = addManifest(c, OCI_INDEX, {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{...descriptor(artifact), artifactType: SBOM_ARTIFACT_TYPE, annotations}],
  })
  return {content: c, artifact, referrers, tag: `sha256-${subject.digest.slice(7)}`}
}

/** The simple signing payload cosign signs for `digest` in `repository` (cosign's SIGNATURE_SPEC). */
export function cosignPayload(repository: string, digest: string): Buffer {
  return Buffer.from(JSON.stringify({critical: {identity: {'docker-reference': repository}, image: {'docker-manifest-digest': digest}, type: 'cosign container image signature'}, optional: null}))
}

/** A cosign signature manifest of `digest` (key-pair signing: ECDSA P-256 over the payload, base64 DER). */
export function cosignSignature(repository: string, digest: string) {
  const {privateKey, publicKey} = generateKeyPairSync('ec', {namedCurve: 'P-256'})
  const payload = cosignPayload(repository, digest)
  const signatureB64 = sign('sha256', payload, privateKey).toString('base64')
  const c = emptyContent()
  const layer = addBlob(c, payload)
  const zero = '0001-01-01T00:00:00Z'
  const config = addBlob(c, Buffer.from(JSON.stringify({architecture: '', created: zero, history: [{created: zero}], os: '', rootfs: {type: 'layers', diff_ids: [layer.digest]}, config: {}})))
  const m = addManifest(c, OCI_MANIFEST, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {mediaType: OCI_CONFIG, ...config},
    layers: [{mediaType: COSIGN_SIMPLE_SIGNING, ...layer, annotations: {'dev.cosignproject.cosign/signature': signatureB64}}],
  })
  return {content: c, manifest: m, payload, signatureB64, publicKey, tag: `sha256-${digest.slice(7)}.sig`}
}

// ------------------------------------------------------------------ push

const blobsOf = (c: Content): string[] => [...c.blobs.keys()]

/** Build every shape and push it to `registry` under `prefix/…`. Each call signs anew (fresh key). */
export async function pushShapes(registry: string, prefix: string): Promise<Shapes> {
  const repo = (name: string) => `${prefix}/${name}`
  const full = (name: string) => `${registry}/${repo(name)}`
  // The busybox layer goes up once, to the first repository; the others mount it from there.
  const first = repo('buildkit')
  const push = (name: string, c: Content, tags: Record<string, string>) => pushContent(registry, repo(name), c, tags, name === 'buildkit' ? {} : {mountFrom: first})
  const shape = (name: string, c: Content, top: {mediaType: string; digest: string}, manifests: string[], ref: string, tag?: string, runnable?: Runnable): Shape =>
    ({repository: full(name), ref, tag, digest: top.digest, mediaType: top.mediaType, manifests, blobs: blobsOf(c), runnable})

  const bk = buildkitIndex(full('buildkit'))
  await push('buildkit', bk.content, {'1': bk.index.digest})
  const buildkit = {...shape('buildkit', bk.content, bk.index, bk.manifests, `${full('buildkit')}:1`, '1', bk.runnable), images: bk.images, attestations: bk.attestations}

  const ne = nestedIndex()
  await push('nested', ne.content, {'1': ne.index.digest})
  const nested = {...shape('nested', ne.content, ne.index, ne.manifests, `${full('nested')}@${ne.index.digest}`, undefined, ne.runnable), child: ne.child}

  const ch = await helmChart()
  await push('chart', ch.content, {[CHART_VERSION]: ch.manifest.digest})
  const chart = shape('chart', ch.content, ch.manifest, [ch.manifest.digest], `${full('chart')}:${CHART_VERSION}`, CHART_VERSION)

  const subjectImg = buildImageBlobs(runnableSpec('sbom'))
  const sb = sbomArtifact(subjectImg)
  const subjectContent = imageContent(subjectImg)
  await push('sbom', mergeContent(emptyContent(), subjectContent, sb.content), {'1': subjectImg.digest, [sb.tag]: sb.referrers.digest})
  const sbomSubject = shape('sbom', subjectContent, subjectImg, [subjectImg.digest], `${full('sbom')}:1`, '1', runnableOf(subjectImg, 'sbom'))
  const sbom = shape('sbom', sb.content, sb.artifact, [sb.artifact.digest], `${full('sbom')}@${sb.artifact.digest}`)
  const referrers = shape('sbom', sb.content, sb.referrers, [sb.referrers.digest, sb.artifact.digest], `${full('sbom')}:${sb.tag}`, sb.tag)

  const signedImg = buildImageBlobs(runnableSpec('signed'))
  const sig = cosignSignature(full('signed'), signedImg.digest)
  await push('signed', mergeContent(emptyContent(), imageContent(signedImg), sig.content), {'1': signedImg.digest, [sig.tag]: sig.manifest.digest})
  const signed = shape('signed', imageContent(signedImg), signedImg, [signedImg.digest], `${full('signed')}:1`, '1', runnableOf(signedImg, 'signed'))
  const signature = {...shape('signed', sig.content, sig.manifest, [sig.manifest.digest], `${full('signed')}:${sig.tag}`, sig.tag), payload: sig.payload, signatureB64: sig.signatureB64, publicKey: sig.publicKey}

  const zs = recompressed(runnableSpec('zstd'), OCI_LAYER_ZSTD, zstdCompress)
  await push('zstd', zs.content, {'1': zs.digest})
  const zstd = shape('zstd', zs.content, {mediaType: OCI_MANIFEST, digest: zs.digest}, [zs.digest], `${full('zstd')}:1`, '1', {manifest: zs.digest, config: zs.config, output: greeting('zstd')})

  const pl = buildImageBlobs({...runnableSpec('plain'), layers: runnableSpec('plain').layers.map((l) => ({...l, compression: 'none' as const}))})
  await push('plain', imageContent(pl), {'1': pl.digest})
  const plain = shape('plain', imageContent(pl), pl, [pl.digest], `${full('plain')}:1@${pl.digest}`, '1', runnableOf(pl, 'plain'))

  const many: LayerSpec[] = Array.from({length: 62}, (_, i) => ({files: {[`layers/${String(i).padStart(2, '0')}`]: `layer ${i}\n`}}))
  const l64 = buildImageBlobs({...runnableSpec('layers64', many), layers: [busyboxLayer(), ...many, appLayer('layers64', `echo "${greeting('layers64')} $(busybox ls /layers | busybox wc -l)"`)]})
  if (l64.layers.length !== 64) throw new Error(`layers64 has ${l64.layers.length} layers`)
  await push('layers64', imageContent(l64), {'1': l64.digest})
  const layers64 = shape('layers64', imageContent(l64), l64, [l64.digest], `${full('layers64')}@${l64.digest}`, undefined, {...runnableOf(l64, 'layers64'), output: `${greeting('layers64')} 62`})

  return {registry, prefix, buildkit, nested, chart, sbomSubject, sbom, referrers, signed, signature, zstd, plain, layers64}
}

/** Every shape of `s`, in bundle order, with a short key. */
export function shapeList(s: Shapes): Array<[string, Shape]> {
  return [['buildkit', s.buildkit], ['nested', s.nested], ['chart', s.chart], ['sbomSubject', s.sbomSubject], ['sbom', s.sbom], ['referrers', s.referrers],
    ['signed', s.signed], ['signature', s.signature], ['zstd', s.zstd], ['plain', s.plain], ['layers64', s.layers64]]
}

