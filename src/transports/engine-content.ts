/**
 * What an engine (docker, podman) can take of the selected entries: the runnable image of each
 * entry that has one. Entries with nothing runnable (a Helm chart, a signature, an attestation,
 * any other OCI artifact) are skipped, and the manifests of a loaded entry that the engine does
 * not get (other platforms, attestations, signatures) are counted; both are reported, never
 * silently dropped.
 */
import type {ContentKind} from '../core/content.js'
import {kindOf, runnableManifestOf, type ImageRecord} from './archive/metadata.js'
import type {LeftOut, LeftOutManifests, SkippedEntry} from './types.js'

const WHAT: Record<ContentKind, string> = {
  image: 'an image',
  attestation: 'an attestation',
  signature: 'a signature',
  artifact: 'an OCI artifact',
}

/** The kind of an entry without a runnable image: that of its manifests when they agree, else `artifact`. */
function entryKind(img: ImageRecord): ContentKind {
  const kinds = new Set(img.manifests.map(kindOf))
  return kinds.size === 1 ? [...kinds][0] : 'artifact'
}

export function skippedEntry(img: ImageRecord, engine: string): SkippedEntry {
  const kind = entryKind(img)
  return {
    name: img.name, digest: img.digest, kind,
    reason: `${WHAT[kind]}, nothing ${engine} can run: ${engine} loads runnable images only (a registry, oci or containerd target takes it)`,
  }
}

function leftOutOf(img: ImageRecord): LeftOutManifests | undefined {
  const counts: Partial<Record<ContentKind, number>> = {}
  for (const m of img.manifests) {
    if (m.digest === img.dockerManifest) continue
    const k = kindOf(m)
    counts[k] = (counts[k] ?? 0) + 1
  }
  return Object.keys(counts).length === 0 ? undefined : {name: img.name, digest: img.digest, counts}
}

/** Split the selected entries into what `engine` loads and what it leaves out. */
export function engineContent(images: ImageRecord[], engine: string): {runnable: ImageRecord[]; leftOut: LeftOut} {
  const runnable: ImageRecord[] = []
  const leftOut: LeftOut = {skipped: [], manifests: []}
  for (const img of images) {
    if (runnableManifestOf(img) === undefined) {
      leftOut.skipped.push(skippedEntry(img, engine))
      continue
    }
    runnable.push(img)
    const rest = leftOutOf(img)
    if (rest) leftOut.manifests.push(rest)
  }
  return {runnable, leftOut}
}

/** One line per left-out thing, for the progress output. */
export function describeLeftOut(leftOut: LeftOut): string[] {
  const lines = leftOut.skipped.map((s) => `  left out ${s.name} (${s.kind}): ${s.reason}`)
  for (const m of leftOut.manifests) lines.push(`  ${m.name}: left out ${countsText(m.counts)}`)
  return lines
}

export function countsText(counts: Partial<Record<ContentKind, number>>): string {
  const label: Record<ContentKind, string> = {image: 'other platform', attestation: 'attestation', signature: 'signature', artifact: 'artifact'}
  return (Object.entries(counts) as [ContentKind, number][]).map(([k, n]) => `${n} ${label[k]}${n === 1 ? '' : 's'}`).join(', ')
}
