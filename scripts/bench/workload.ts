/**
 * Benchmark workload: 8 images with realistic sharing, written as ONE OCI image layout and
 * pushed with skopeo to the testbed registry under `bench/<name>/app-N:1`.
 *
 *   base (2 layers, shared by all 8) → middle (one of 2 runtimes, shared by 4) → app (unique)
 *
 * Layer content is deterministic pseudo-random data (AES-CTR keystream, seeded by the layer
 * name), gzip level 1: incompressible, fast to generate, and identical on every run, so a
 * rerun pushes nothing new to the registry. The `text` variant fills the files with words drawn
 * from the same keystream (gzip level 6, about 2.5:1, like source trees, docs and scripts), for
 * the measurements where compression matters (install → docker).
 */
import {execFile} from 'node:child_process'
import {createCipheriv, createHash} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import {mkdir, rename, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {promisify} from 'node:util'
import {createGzip} from 'node:zlib'

import {encodeHeader, paddingFor} from '../../src/transports/archive/tar.js'

const execFileP = promisify(execFile)
const MB = 1024 * 1024
const EPOCH = 1704067200

export interface Workload {
  name: string
  /** Image references on the source registry. */
  refs: string[]
  /** Sum of the sizes of the unique blobs (layers, configs, manifests). */
  uniqueBytes: number
  /** Sum over images of their blobs (what a non-deduplicated copy moves). */
  referencedBytes: number
  blobs: number
}

interface Layer {digest: string; diffId: string; size: number}

function keystream(seed: string) {
  const key = createHash('sha256').update(seed).digest()
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
}

/** Words of 2–9 letters from the keystream, skewed so that a few are frequent (as in text). */
function textFiller(seed: string): (n: number) => Buffer {
  const ks = keystream(`${seed}/text`)
  const letters = ks.update(Buffer.alloc(4096 * 10))
  const words: Buffer[] = []
  for (let i = 0; i < 4096; i++) {
    const len = 2 + (letters[i * 10] % 8)
    words.push(Buffer.from(Array.from(letters.subarray(i * 10 + 1, i * 10 + 1 + len), (b) => 97 + (b % 26)).concat(i % 13 === 0 ? [10] : [32])))
  }
  return (n: number) => {
    const out = Buffer.allocUnsafe(n)
    const picks = ks.update(Buffer.alloc(Math.ceil(n / 2) * 2))
    let o = 0
    for (let i = 0; o < n; i += 2) {
      const r = picks.readUInt16LE(i % (picks.length - 1))
      o += words[(r * r) >>> 20].copy(out, o)
    }
    return out
  }
}

/**
 * A gzip layer holding `files` regular files of `size/files` bytes each: random bytes at gzip
 * level 1 (incompressible), or `text` at level 6.
 */
async function makeLayer(blobDir: string, seed: string, size: number, files = 4, text = false): Promise<Layer> {
  const tmp = path.join(blobDir, `.tmp-${seed.replace(/[^a-z0-9]/gi, '_')}`)
  const diff = createHash('sha256')
  const comp = createHash('sha256')
  let csize = 0
  const gz = createGzip({level: text ? 6 : 1, chunkSize: MB})
  const out = createWriteStream(tmp)
  gz.on('data', (c: Buffer) => { comp.update(c); csize += c.length })
  gz.pipe(out)
  const done = new Promise<void>((resolve, reject) => { out.on('finish', resolve); out.on('error', reject); gz.on('error', reject) })
  const write = async (b: Buffer) => {
    diff.update(b)
    if (!gz.write(b)) await new Promise((r) => gz.once('drain', r))
  }
  const ks = keystream(seed)
  const zero = Buffer.alloc(MB)
  const fill = text ? textFiller(seed) : (n: number) => ks.update(zero.subarray(0, n))
  const per = Math.floor(size / files)
  for (let f = 0; f < files; f++) {
    await write(encodeHeader(`data/${seed}-${f}.${text ? 'txt' : 'bin'}`, per, EPOCH))
    let left = per
    while (left > 0) {
      const n = Math.min(left, MB)
      await write(fill(n))
      left -= n
    }
    const pad = paddingFor(per)
    if (pad) await write(Buffer.alloc(pad))
  }
  await write(Buffer.alloc(1024))
  gz.end()
  await done
  const digest = `sha256:${comp.digest('hex')}`
  await rename(tmp, path.join(blobDir, digest.slice(7)))
  return {digest, diffId: `sha256:${diff.digest('hex')}`, size: csize}
}

async function putBlob(blobDir: string, data: Buffer): Promise<{digest: string; size: number}> {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
  await writeFile(path.join(blobDir, digest.slice(7)), data)
  return {digest, size: data.length}
}

/**
 * Generate the workload (sizes scale with `mb`, the approximate unique compressed size in MB)
 * into an OCI layout at `dir` and push every image to `registry/bench/NAME/app-N:1`.
 */
export async function generateWorkload(dir: string, name: string, mb: number, registry: string, log: (s: string) => void, opts: {text?: boolean} = {}): Promise<Workload> {
  // Split of the unique bytes: base 10%, 2 runtimes 25% (12.5% each), 8 apps 65% (8.125% each).
  const blobDir = path.join(dir, 'blobs', 'sha256')
  await mkdir(blobDir, {recursive: true})
  const t0 = Date.now()
  const sz = (f: number) => Math.max(1, Math.round(mb * f)) * MB
  const layer = (seed: string, size: number) => makeLayer(blobDir, seed, size, 4, opts.text)
  const base = [await layer(`${name}-base-0`, sz(0.06)), await layer(`${name}-base-1`, sz(0.04))]
  const mids = [await layer(`${name}-runtime-a`, sz(0.125)), await layer(`${name}-runtime-b`, sz(0.125))]
  const index: {schemaVersion: 2; mediaType: string; manifests: unknown[]} = {schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: []}
  const refs: string[] = []
  const unique = new Map<string, number>()
  let referenced = 0
  for (const l of [...base, ...mids]) unique.set(l.digest, l.size)
  for (let i = 0; i < 8; i++) {
    const app = await layer(`${name}-app-${i}`, sz(0.08125))
    unique.set(app.digest, app.size)
    const layers = [...base, mids[i % 2], app]
    const config = Buffer.from(JSON.stringify({
      architecture: 'amd64', os: 'linux', created: new Date(EPOCH * 1000).toISOString(),
      config: {Cmd: ['/data/run'], Labels: {'bench.image': `app-${i}`}},
      rootfs: {type: 'layers', diff_ids: layers.map((l) => l.diffId)},
    }))
    const c = await putBlob(blobDir, config)
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: c.digest, size: c.size},
      layers: layers.map((l) => ({mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size})),
    }))
    const m = await putBlob(blobDir, manifest)
    unique.set(c.digest, c.size)
    unique.set(m.digest, m.size)
    referenced += c.size + m.size + layers.reduce((a, l) => a + l.size, 0)
    index.manifests.push({mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m.digest, size: m.size, annotations: {'org.opencontainers.image.ref.name': `app-${i}`}})
    refs.push(`${registry}/bench/${name}/app-${i}:1`)
  }
  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  await writeFile(path.join(dir, 'index.json'), JSON.stringify(index))
  const uniqueBytes = [...unique.values()].reduce((a, b) => a + b, 0)
  log(`  generated ${name}: 8 images, ${unique.size} unique blobs, ${(uniqueBytes / 1e6).toFixed(0)} MB unique, ${(referenced / 1e6).toFixed(0)} MB referenced (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
  const t1 = Date.now()
  for (let i = 0; i < 8; i++) {
    await execFileP('skopeo', ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${dir}:app-${i}`, `docker://${refs[i]}`], {maxBuffer: 16 * MB})
  }
  log(`  pushed ${name} to ${registry} (${((Date.now() - t1) / 1000).toFixed(1)} s)`)
  return {name, refs, uniqueBytes, referencedBytes: referenced, blobs: unique.size}
}
