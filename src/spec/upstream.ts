/**
 * `referrers:` and `verify:` in bundle.yaml (at the top, and per image, the image's own winning):
 * which upstream signatures, attestations, SBOMs and other referrers come along with an image, and
 * which cosign key must have signed it.
 */
import {existsSync} from 'node:fs'
import path from 'node:path'

import {type Issue, type Seg, withLabel} from './paths.js'
import {DEFAULT_REFERRERS, type ReferrerChoice, type UpstreamPolicy} from './types.js'

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

const CHOICES: readonly (keyof ReferrerChoice)[] = ['signatures', 'attestations', 'sboms', 'artifacts']

/** `base` with the keys `v` sets (the schema reports anything else). */
export function referrerChoice(v: unknown, base: ReferrerChoice = DEFAULT_REFERRERS): ReferrerChoice {
  const out = {...base}
  if (!isObj(v)) return out
  for (const k of CHOICES) if (typeof v[k] === 'boolean') out[k] = v[k]
  return out
}

/**
 * A `verify:` mapping: the key file (which must exist). `keyless` is refused: this airlock has no
 * offline verifier of Fulcio certificates and Rekor bundles, and a policy is never passed silently.
 */
export function upstreamPolicy(v: unknown, segs: Seg[], dir: string, issues: Issue[]): UpstreamPolicy | undefined {
  if (!isObj(v)) return undefined
  if (v.keyless !== undefined) {
    const at = [...segs, 'keyless']
    issues.push({path: at, code: 'upstream.keyless', message: withLabel(at, 'keyless verification (Fulcio certificate and Rekor bundle against a trusted root) is not supported by this airlock (it has no offline verifier of Fulcio certificates and Rekor entries; current sigstore libraries need Node 22). Use `key:` with the signer\'s cosign public key, or leave `verify:` out')})
    return undefined
  }
  if (typeof v.key !== 'string' || v.key === '') return undefined
  const key = path.resolve(dir, v.key)
  if (!existsSync(key)) issues.push({path: [...segs, 'key'], code: 'file.not_found', message: withLabel([...segs, 'key'], `cosign key file ${v.key} not found (looked for ${key})`)})
  return {key, ...(v.attestations === true ? {attestations: true} : {})}
}

/** A policy needs what it checks: `verify:` turns `signatures` on (and `attestations` when it asks for them). */
export function withPolicy(choice: ReferrerChoice, policy: UpstreamPolicy | undefined): ReferrerChoice {
  if (!policy) return choice
  return {...choice, signatures: true, ...(policy.attestations ? {attestations: true} : {})}
}
