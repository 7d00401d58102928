import {readFile} from 'node:fs/promises'

import {InputError, VerifyError} from '../core/errors.js'
import {checkSignatureManifest, type CosignKey, MAX_PAYLOAD_BYTES, parseCosignKey} from '../sign/cosign-verify.js'
import type {ArchiveSink, VerifiedHead} from '../transports/archive/reader.js'
import {type ImageRecord, kindOf} from '../transports/archive/metadata.js'

/**
 * `verify --cosign-key`: the upstream signatures the archive carries, checked again from the
 * archive alone. A sink of the one verifying pass keeps the signature manifests and their payload
 * layers (small, bounded) as they stream by, hashed like every blob; once every byte has checked,
 * each image (every entry that is not itself a referrer) must have a signature by one of the keys
 * over its digest, naming its source repository.
 */

export interface UpstreamCheck {
  name: string
  digest: string
  /** The signature manifest that verified. */
  signature: string
  keyFingerprint: string
}

export async function loadCosignKeys(files: string[]): Promise<CosignKey[]> {
  return Promise.all(files.map(async (f) => {
    let pem: Buffer
    try {
      pem = await readFile(f)
    } catch (error) {
      throw new InputError('upstream.bad_key', `cannot read the cosign key ${f}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
    }
    return parseCosignKey(pem, f)
  }))
}

/** The signature manifests that could sign `img` (in the entries that refer to it), by digest. */
function candidates(img: ImageRecord, images: ImageRecord[]): string[] {
  return images.filter((r) => r.referrerOf?.image === img.name && r.referrerOf.subject === img.digest)
    .flatMap((r) => r.manifests.filter((m) => kindOf(m) === 'signature' && (r.referrerOf!.kind === 'signature' || m.subject === img.digest)).map((m) => m.digest))
}

export class UpstreamSink implements ArchiveSink {
  private readonly wanted = new Set<string>()
  private readonly held = new Map<string, Buffer>()
  readonly checks: UpstreamCheck[] = []

  constructor(private readonly keys: CosignKey[]) {}

  async begin(head: VerifiedHead): Promise<void> {
    for (const r of head.metadata.images) {
      if (!r.referrerOf) continue
      for (const m of r.manifests.filter((x) => kindOf(x) === 'signature')) {
        this.wanted.add(m.digest)
        for (const l of m.layers) if ((head.blobs.get(l.slice(7)) ?? Infinity) <= MAX_PAYLOAD_BYTES) this.wanted.add(l)
      }
    }
  }

  async blob(digest: string, _size: number, data: AsyncIterable<Buffer>): Promise<void> {
    const keep = this.wanted.has(digest)
    const chunks: Buffer[] = []
    for await (const chunk of data) if (keep) chunks.push(Buffer.from(chunk))
    if (keep) this.held.set(digest, Buffer.concat(chunks))
  }

  async commit(head: VerifiedHead): Promise<void> {
    const images = head.metadata.images
    const failed: string[] = []
    // Files and repository charts are made by create itself: they have no upstream to sign them.
    for (const img of images.filter((i) => !i.referrerOf && !i.content)) {
      const reasons: string[] = []
      const subject = {digest: img.digest, reference: img.ref}
      const ok = candidates(img, images).some((sig) => {
        const bytes = this.held.get(sig)
        if (!bytes) return false
        for (const k of this.keys) {
          const r = checkSignatureManifest(bytes, (d) => this.held.get(d), subject, k.key)
          if (r.ok) {
            this.checks.push({name: img.name, digest: img.digest, signature: sig, keyFingerprint: k.fingerprint})
            return true
          }
          reasons.push(`signature ${sig}: ${r.reason}`)
        }
        return false
      })
      if (!ok) failed.push(`${img.name} (${img.digest}): ${reasons.length > 0 ? reasons.join('; ') : 'the bundle carries no cosign signature of it'}`)
    }
    if (failed.length > 0) {
      throw new VerifyError('upstream.unsigned', `${failed.length} image${failed.length === 1 ? '' : 's'} in the bundle without a valid upstream signature by the cosign key${this.keys.length === 1 ? '' : 's'} given`, {details: failed})
    }
  }
}
