import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {isRepositoryName, parseListen, parseRange, plainPath} from '../../../src/serve/server.js'

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
    // RFC 9110: a range that cannot be satisfied is 416; bad syntax, another unit or several ranges are ignored (200, whole body).
    for (const unsatisfiable of ['bytes=10-', 'bytes=-0', 'BYTES=10-']) assert.equal(parseRange(unsatisfiable, 10), null, unsatisfiable)
    for (const ignored of ['bytes=5-2', 'bytes=1-2,4-5', 'items=1-2', 'bytes=-', 'bytes=x-y', 'bytes 1-2']) assert.equal(parseRange(ignored, 10), undefined, ignored)
  })

  it('repository names: the distribution-spec grammar; "." and ".." segments are refused, plain or encoded', () => {
    for (const good of ['shop/api', 'a', 'a0/b-c/d__e/f.g', 'x--y']) assert.ok(isRepositoryName(good), good)
    for (const bad of ['Shop/api', 'a/', '/a', 'a//b', 'a/../b', 'a/./b', '.', '..', 'a..b', '-a', 'a_', 'a/b.']) assert.ok(!isRepositoryName(bad), bad)
    assert.equal(plainPath('/v2/shop/api/manifests/1?x=y'), '/v2/shop/api/manifests/1')
    for (const bad of ['/v2/shop/../other/manifests/1', '/v2/./shop/manifests/1', '/v2/shop/%2e%2E/x/blobs/sha256:00', '/v2/shop/%2E/x/tags/list']) assert.equal(plainPath(bad), undefined, bad)
  })
})
