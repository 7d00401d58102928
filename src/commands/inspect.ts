import {STDIN} from '../blob/multi-file.js'
import {AirlockCommand} from '../cli/base.js'
import {archiveArg, keysFlag} from '../cli/flags.js'
import {formatBytes} from '../cli/progress.js'
import {ContentCounts, describeCreated, inspectArchive, InspectResult} from '../verify/inspect.js'

export default class Inspect extends AirlockCommand {
  static override summary = 'Show what an archive holds, reading only its metadata entries'
  static override description = 'Instant even on a very large archive: only airlock.json, checksums.sha256 and the signature are read. With --key the signature is verified; without, the signer is shown as unverified. Blob contents are not checked: use `airlock verify` for that.'

  static override examples = [
    '<%= config.bin %> inspect release.tar',
    '<%= config.bin %> inspect release.tar --key release.pub.asc --json',
  ]

  static override args = {
    archive: archiveArg('inspect'),
  }

  static override flags = {
    key: keysFlag('trusted public key file or directory, to verify the signer'),
  }

  async run(): Promise<InspectResult> {
    const {args, flags} = await this.parse(Inspect)
    const r = await inspectArchive({archive: args.archive, keys: flags.key ?? []})
    if (!this.jsonEnabled()) {
      this.log(`${r.bundle.name} ${r.bundle.version}${r.bundle.description ? ` — ${r.bundle.description}` : ''}`)
      this.log(`  created ${describeCreated(r.bundle.created)}${r.bundle.expires ? `, expires ${r.bundle.expires}` : ''}, format v${r.formatVersion}, made by airlock ${r.tool}`)
      this.log(`  signature: ${r.signature.status}${r.signature.fingerprint ? ` ${r.signature.fingerprint}` : r.signature.keyId ? ` key ${r.signature.keyId}` : ''}${r.signature.userId ? ` (${r.signature.userId})` : ''}`)
      if (r.signers.length > 1) for (const s of r.signers) this.log(`    signed by ${s.verified ? `${s.fingerprint}${s.userId ? ` (${s.userId})` : ''}, verified` : `key ${s.keyId}, not verified (not a trusted key)`}`)
      if (r.archive === STDIN && r.partSize) this.log(`  split into parts of at most ${formatBytes(r.partSize)}, read as one stream from standard input`)
      else if (r.parts.length > 1 || r.partSize) this.log(`  split into ${r.parts.length} part(s) of at most ${formatBytes(r.partSize ?? 0)}: ${r.parts.map((p) => `${p.file} (${formatBytes(p.bytes)})`).join(', ')}`)
      if (r.base) this.log(`  differential: leaves out ${r.base.blobs} blob(s) (${formatBytes(r.base.bytes)}) shipped by ${r.base.name} ${r.base.version}; the target must hold them, or pass install --base`)
      this.log(`  ${r.images.length} images, ${r.blobs.count} unique blobs, ${formatBytes(r.blobs.bytes)} (without dedupe ${formatBytes(r.blobs.referencedBytes)}, saved ${formatBytes(r.blobs.saved)})`)
      for (const img of r.images) {
        this.log(`  ${img.name}`)
        this.log(`      ${img.digest}  ${img.platforms.length > 0 ? `[${img.platforms.join(', ')}]` : img.kind}  ${formatBytes(img.size)}${img.sharedBlobs ? `, ${img.sharedBlobs} blobs shared` : ''}`)
        const carried = describeContent(img.content)
        if (carried) this.log(`      carries ${carried}`)
        if (img.referrerOf) this.log(`      ${img.referrerOf.kind} of ${img.referrerOf.image} (${img.referrerOf.subject.slice(0, 19)}…), found by ${img.referrerOf.via === 'tag' ? 'tag' : 'the referrers API'}`)
        if (img.upstream) this.log(`      upstream: ${upstreamLine(img.upstream)}`)
        if (img.chart) this.log(`      chart ${img.chart.name} ${img.chart.version}`)
        for (const f of img.files ?? []) this.log(`      file ${f.path}  ${f.mode}  ${formatBytes(f.size)}`)
        if (img.omitted) this.log(`      platform subset of ${img.sourceDigest}: left out ${img.omitted.map((o) => `${o.kind} ${o.platform === 'unknown' ? '' : `${o.platform} `}${o.digest.slice(0, 19)}`).join(', ')}`)
      }
    }
    return r
  }
}

/** `2 signatures, 1 attestation; verified at create by cosign key sha256:…`. */
export function upstreamLine(u: NonNullable<InspectResult['images'][number]['upstream']>): string {
  const n = (list: string[], one: string) => `${list.length} ${one}${list.length === 1 ? '' : 's'}`
  const verified = u.verifiedBy ? `verified at create by cosign key ${u.verifiedBy.keyFingerprint} (signature ${u.verifiedBy.signature.slice(0, 19)}…)` : 'not verified at create (no verify: policy)'
  return `${n(u.signatures, 'signature')}, ${n(u.attestations, 'attestation')}, ${n(u.sboms, 'SBOM')}, ${n(u.referrers, 'referrers index')}; ${verified}`
}

/** `2 images, 2 attestations, 1 nested index`; empty for a plain image. */
export function describeContent(c: ContentCounts): string {
  const parts: string[] = []
  const add = (n: number, one: string, many: string) => { if (n > 0) parts.push(`${n} ${n === 1 ? one : many}`) }
  if (c.images > 1 || c.attestations + c.signatures + c.artifacts + c.nestedIndexes > 0) add(c.images, 'image', 'images')
  add(c.attestations, 'attestation', 'attestations')
  add(c.signatures, 'signature', 'signatures')
  add(c.artifacts, 'artifact', 'artifacts')
  add(c.nestedIndexes, 'nested index', 'nested indexes')
  return parts.join(', ')
}
