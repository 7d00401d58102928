import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {trustedKeyPaths} from '../../../src/sign/keys.js'

describe('trusted key paths', () => {
  it('trusted keys: --key values (one path each) win over AIRLOCK_TRUSTED_KEYS, a comma-separated list', () => {
    assert.deepEqual(trustedKeyPaths(['a,b'], {AIRLOCK_TRUSTED_KEYS: 'c'}), ['a,b'])
    assert.deepEqual(trustedKeyPaths(undefined, {AIRLOCK_TRUSTED_KEYS: ' c , d,,'}), ['c', 'd'])
    assert.deepEqual(trustedKeyPaths([], {}), [])
  })
})
