import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {InputError} from '../../../../src/core/errors.js'
import {checkDigest, checkReference, checkRepo, checkSize, pullScope, pushScope, refString} from '../../../../src/transports/registry/names.js'

const D = `sha256:${'a'.repeat(64)}`
const code = (fn: () => unknown): string => {
  try {
    fn()
  } catch (e) {
    assert.ok(e instanceof InputError)
    return e.code
  }
  return 'ok'
}

describe('registry names', () => {
  it('repository names per the distribution spec', () => {
    for (const r of ['a', 'library/nginx', 'a/b/c', 'my-app', 'my__app', 'a.b_c', 'a---b']) assert.equal(code(() => checkRepo(r)), 'ok', r)
    for (const r of ['', 'A', 'a/', '/a', 'a//b', '-a', 'a-', 'a:b', 'a b', '../a', 'a'.repeat(256)]) assert.equal(code(() => checkRepo(r)), 'registry.invalid_repository', r)
  })

  it('a reference is a digest (true) or a tag (false)', () => {
    assert.equal(checkReference(D), true)
    assert.equal(checkReference('1.0'), false)
    assert.equal(checkReference('latest_v-2'), false)
    for (const r of ['', '-x', '.x', 'a b', 'a/b', 'x'.repeat(129), 'sha256:abc']) assert.equal(code(() => checkReference(r)), 'registry.invalid_reference', r)
  })

  it('digests are sha256 with 64 lowercase hex digits; sizes are safe non-negative integers', () => {
    assert.equal(code(() => checkDigest(D)), 'ok')
    assert.equal(code(() => checkDigest(D.toUpperCase())), 'registry.invalid_digest')
    assert.equal(code(() => checkDigest('sha512:' + 'a'.repeat(64))), 'registry.invalid_digest')
    assert.equal(code(() => checkSize(0)), 'ok')
    for (const n of [-1, 1.5, Number.NaN, 2 ** 53]) assert.equal(code(() => checkSize(n)), 'registry.invalid_size', String(n))
  })

  it('scopes and the names messages use', () => {
    assert.equal(pullScope('a/b'), 'repository:a/b:pull')
    assert.equal(pushScope('a/b'), 'repository:a/b:pull,push')
    assert.equal(refString('r:5000', 'a/b', '1.0'), 'r:5000/a/b:1.0')
    assert.equal(refString('r:5000', 'a/b', D), `r:5000/a/b@${D}`)
  })
})
