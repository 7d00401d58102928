import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {InputError} from '../../../src/core/errors.js'
import {type BundleLock, checkLocked, withPins} from '../../../src/resolve/lock.js'

const D = (c: string) => `sha256:${c.repeat(64)}`
const empty: BundleLock = {apiVersion: 'airlock/v1', kind: 'BundleLock', images: []}
const URL1 = 'https://dl.example.com/k3s.tar.zst'
const CHART = 'https://charts.example.com app ^1.2'

describe('lock file pins of file URLs and repository charts', () => {
  it('records URL → digest and REPO NAME RANGE → version and digest', () => {
    const l = withPins(empty, new Map([[URL1, D('a')], [CHART, `1.3.0 ${D('b')}`]]))
    assert.deepEqual(l.files, [{source: URL1, digest: D('a')}])
    assert.deepEqual(l.charts, [{chart: CHART, version: '1.3.0', digest: D('b')}])
    assert.equal(withPins(empty, new Map()).files, undefined)
  })

  it('--locked: the same pins pass; changed content, another chart version or a new item is refused with exit 2 and says which', () => {
    const was = withPins(empty, new Map([[URL1, D('a')], [CHART, `1.3.0 ${D('b')}`]]))
    checkLocked('b.lock.yaml', was, was)
    const drift = withPins(empty, new Map([[URL1, D('c')], [CHART, `1.4.0 ${D('d')}`], ['https://new.example.com/x', D('e')]]))
    assert.throws(() => checkLocked('b.lock.yaml', was, drift), (e: InputError) => {
      assert.equal(e.code, 'lock.mismatch')
      assert.equal(e.exitCode, 2)
      assert.deepEqual(e.details, [
        `${URL1}: the content changed since it was pinned (${D('a')}, the server now sends ${D('c')})`,
        'https://new.example.com/x: not in the lock file',
        `chart ${CHART}: locked to 1.3.0 ${D('b')}, the repository now gives 1.4.0 ${D('d')}`,
      ])
      return true
    })
  })
})
