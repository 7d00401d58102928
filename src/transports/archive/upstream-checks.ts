import {DIGEST_RE} from '../../core/model.js'
import {fail} from './checks.js'
import {ENTRY, REFERRER_KINDS} from './metadata.js'

/**
 * The shape of the upstream fields of airlock.json (format 3): `referrerOf` on an entry that refers
 * to another entry's image, `upstream` on an image. Strict, since they are signed claims that
 * `verify --cosign-key` and the targets act on: every digest listed is an entry referring to this image.
 */

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const UPSTREAM_LISTS = ['signatures', 'attestations', 'sboms', 'referrers'] as const

export function checkUpstreamShape(images: Record<string, unknown>[], formatVersion: number): void {
  const e = ENTRY.METADATA
  const names = new Set(images.map((img) => img.name))
  for (const [i, img] of images.entries()) {
    const where = `image #${i + 1}`
    if ((img.referrerOf !== undefined || img.upstream !== undefined) && formatVersion < 3) fail('archive.bad_metadata', e, `${where}: referrerOf/upstream need format 3`)
    const r = img.referrerOf
    if (r !== undefined) {
      if (!isObj(r) || typeof r.subject !== 'string' || !DIGEST_RE.test(r.subject) || typeof r.image !== 'string' || !REFERRER_KINDS.includes(r.kind as never) || (r.via !== 'tag' && r.via !== 'referrers')) {
        fail('archive.bad_metadata', e, `${where}: bad referrerOf`)
      }
      if (!names.has(r.image) || r.image === img.name) fail('archive.bad_metadata', e, `${where}: referrerOf names ${JSON.stringify(r.image)}, which is not another entry`)
      if (img.upstream !== undefined) fail('archive.bad_metadata', e, `${where}: a referrer entry has no upstream of its own`)
    }
  }
  for (const [i, img] of images.entries()) {
    const where = `image #${i + 1}`
    const u = img.upstream
    if (u === undefined) continue
    if (!isObj(u)) fail('archive.bad_metadata', e, `${where}: bad upstream`)
    const mine = new Set(images.filter((x) => isObj(x.referrerOf) && x.referrerOf.image === img.name).map((x) => x.digest))
    for (const k of UPSTREAM_LISTS) {
      const list = u[k]
      if (!Array.isArray(list) || !list.every((d) => typeof d === 'string' && DIGEST_RE.test(d))) fail('archive.bad_metadata', e, `${where}: bad upstream.${k}`)
      for (const d of list as string[]) if (!mine.has(d)) fail('archive.bad_metadata', e, `${where}: upstream.${k} lists ${d}, which is no entry referring to ${String(img.name)}`)
    }
    const v = u.verifiedBy
    if (v !== undefined && (!isObj(v) || typeof v.keyFingerprint !== 'string' || !DIGEST_RE.test(v.keyFingerprint) || typeof v.signature !== 'string' || !DIGEST_RE.test(v.signature) || (v.attestation !== undefined && (typeof v.attestation !== 'string' || !DIGEST_RE.test(v.attestation))))) {
      fail('archive.bad_metadata', e, `${where}: bad upstream.verifiedBy`)
    }
    const extra = Object.keys(u).filter((k) => !(UPSTREAM_LISTS as readonly string[]).includes(k) && k !== 'verifiedBy')
    if (extra.length > 0) fail('archive.bad_metadata', e, `${where}: upstream has unknown fields ${extra.join(', ')}`)
  }
}
