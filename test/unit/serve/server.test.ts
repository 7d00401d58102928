import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseListen, parseRange} from '../../../src/serve/server.js'

describe('serve: parsing', () => {
  it('--listen and Range headers', () => {
    assert.deepEqual(parseListen('127.0.0.1:5000'), {host: '127.0.0.1', port: 5000})
    assert.deepEqual(parseListen('[::1]:0'), {host: '::1', port: 0})
    assert.deepEqual(parseListen('5001'), {host: '127.0.0.1', port: 5001})
    assert.throws(() => parseListen('host:99999'), /--listen/)
    assert.throws(() => parseListen('a:b:c'), /--listen/)
    assert.equal(parseRange(undefined, 10), undefined)
    assert.deepEqual(parseRange('bytes=2-5', 10), {start: 2, end: 5})
    assert.deepEqual(parseRange('bytes=7-', 10), {start: 7, end: 9})
    assert.deepEqual(parseRange('bytes=-3', 10), {start: 7, end: 9})
    assert.deepEqual(parseRange('bytes=5-100', 10), {start: 5, end: 9})
    for (const bad of ['bytes=10-', 'bytes=5-2', 'bytes=-0', 'bytes=1-2,4-5', 'items=1-2', 'bytes=-']) assert.equal(parseRange(bad, 10), null, bad)
  })
})
