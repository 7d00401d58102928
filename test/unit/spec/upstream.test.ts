import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {after, describe, it} from 'node:test'

import {validateBundleText} from '../../../src/spec/index.js'

const tmp = mkdtempSync(path.join(tmpdir(), 'airlock-spec-upstream-'))
after(() => rmSync(tmp, {recursive: true, force: true}))
const HEAD = 'apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: t, version: "1"}\n'
const file = path.join(tmp, 'bundle.yaml')
writeFileSync(path.join(tmp, 'cosign.pub'), 'PEM')

function problems(text: string): string[] {
  return validateBundleText(text, file).problems.map((p) => `${p.line}:${p.col} ${p.code} ${p.message}`)
}

describe('bundle.yaml referrers: and verify:', () => {
  it('default: signatures only; the top level, then each image, choose', () => {
    const {spec, problems: p} = validateBundleText(`${HEAD}referrers: {attestations: true}\nimages:\n  - a.io/x:1\n  - ref: a.io/y:1\n    referrers: {signatures: false, sboms: true}\n    verify: {key: cosign.pub}\n  - ref: a.io/z:1\n`, file)
    assert.deepEqual(p, [])
    assert.deepEqual(spec!.images.map((i) => [i.referrers, i.verify]), [
      [{signatures: true, attestations: true, sboms: false, artifacts: false}, undefined],
      // a policy needs the signatures: verify: turns them on
      [{signatures: true, attestations: true, sboms: true, artifacts: false}, {key: path.join(tmp, 'cosign.pub')}],
      [{signatures: true, attestations: true, sboms: false, artifacts: false}, undefined],
    ])
    const bare = validateBundleText(`${HEAD}images: [a.io/x:1]\n`, file).spec!
    assert.deepEqual(bare.images[0].referrers, {signatures: true, attestations: false, sboms: false, artifacts: false})
  })

  it('verify: {attestations: true} brings the attestations along', () => {
    const {spec} = validateBundleText(`${HEAD}images:\n  - ref: a.io/x:1\n    verify: {key: cosign.pub, attestations: true}\n`, file)
    assert.deepEqual(spec!.images[0].verify, {key: path.join(tmp, 'cosign.pub'), attestations: true})
    assert.equal(spec!.images[0].referrers!.attestations, true)
  })

  it('a top-level verify: applies to every image', () => {
    const {spec} = validateBundleText(`${HEAD}verify: {key: cosign.pub}\nimages: [a.io/x:1]\n`, file)
    assert.deepEqual(spec!.images[0].verify, {key: path.join(tmp, 'cosign.pub')})
  })

  it('unknown keys, wrong types, a missing key file and keyless: problems at their line:col', () => {
    const p = problems(`${HEAD}referrers: {signature: true}\nverify: {key: missing.pem}\nimages:\n  - ref: a.io/x:1\n    referrers: {sboms: yes please}\n  - ref: a.io/y:1\n    verify:\n      keyless: {trustedRoot: root.json, identity: me, issuer: https://issuer}\n`)
    assert.ok(p.some((l) => /^4:\d+ schema\.\w+ .*signature/.test(l)), p.join('\n'))
    assert.ok(p.some((l) => /^5:\d+ file\.not_found verify\.key: cosign key file missing\.pem not found/.test(l)), p.join('\n'))
    assert.ok(p.some((l) => /^8:\d+ schema\.type .*must be true or false/.test(l)), p.join('\n'))
    assert.ok(p.some((l) => /^11:\d+ upstream\.keyless .*keyless verification .* is not supported/.test(l)), p.join('\n'))
  })

  it('verify: needs exactly one of key or keyless', () => {
    const p = problems(`${HEAD}verify: {}\nimages: [a.io/x:1]\n`)
    assert.ok(p.some((l) => /^4:\d+ .*exactly one of `key`/.test(l)), p.join('\n'))
  })
})
