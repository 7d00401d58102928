import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {maxSatisfying, parseRange, satisfies} from '../../../src/core/semver.js'

const VERSIONS = ['0.9.0', '1.0.0', '1.2.0', '1.2.5', '1.3.0-rc.1', '1.3.0', '1.10.1', '2.0.0-beta', '2.0.0', '2.1.0']
const best = (r: string) => maxSatisfying(VERSIONS, parseRange(r)!)

describe('semver ranges (chart versions in index.yaml)', () => {
  it('picks the highest version a range allows', () => {
    assert.equal(best('1.2.0'), '1.2.0')
    assert.equal(best('=1.2.5'), '1.2.5')
    assert.equal(best('^1.2'), '1.10.1')
    assert.equal(best('~1.2'), '1.2.5')
    assert.equal(best('~1.2.1'), '1.2.5')
    assert.equal(best('1.x'), '1.10.1')
    assert.equal(best('1.2.*'), '1.2.5')
    assert.equal(best('*'), '2.1.0')
    assert.equal(best(''), '2.1.0')
    assert.equal(best('>=1.0 <2'), '1.10.1')
    assert.equal(parseRange('>= 1.0, < 2'), undefined) // commas are not semver syntax
    assert.equal(best('>= 1.0 < 2'), '1.10.1')
    assert.equal(best('<1.2.5'), '1.2.0')
    assert.equal(best('<=1.2'), '1.2.5')
    assert.equal(best('>1.3'), '2.1.0')
    assert.equal(best('1.0.0 - 1.2.5'), '1.2.5')
    assert.equal(best('^0.9.0 || ~2.0.0'), '2.0.0')
    assert.equal(best('^3'), undefined)
  })

  it('keeps pre-releases out unless the range names one on the same version', () => {
    assert.equal(best('~1.3.0'), '1.3.0')
    assert.equal(satisfies('1.3.0-rc.1', parseRange('^1.2')!), false)
    assert.equal(satisfies('1.3.0-rc.1', parseRange('>=1.3.0-rc.0')!), true)
    assert.equal(satisfies('2.0.0-beta', parseRange('2.0.0-beta')!), true)
    assert.equal(satisfies('1.0.0', parseRange('^0.9')!), false)
    assert.equal(satisfies('0.9.5', parseRange('^0.9')!), true)
    assert.equal(satisfies('0.0.4', parseRange('^0.0.3')!), false)
  })

  it('refuses what is not a range', () => {
    for (const bad of ['latest', '1.2.3.4', '>>1', 'v1.x.2.3', '^']) assert.equal(parseRange(bad), undefined, bad)
  })
})
