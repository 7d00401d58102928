/**
 * `serve` on the wire, against a synthetic archive on 127.0.0.1 (no testbed): Range as RFC 9110
 * says (bad syntax or another unit ignored, unsatisfiable 416 with `bytes *\/SIZE`) and repository
 * names as the distribution spec says (no `.`/`..` segments, never resolved into another name).
 */
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import http from 'node:http'
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {startServe, type ServeHandle} from '../../../src/serve/server.js'
import {randomLayer, syntheticArchive} from '../../helpers/archive.js'

interface Answer {status: number; headers: http.IncomingHttpHeaders; body: Buffer}

/** GET with the path sent exactly as written (no URL normalisation on our side). */
function get(url: string, rawPath: string, headers: Record<string, string> = {}): Promise<Answer> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = http.request({host: u.hostname, port: u.port, path: rawPath, headers}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks)}))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('serve: Range and repository names on the wire', () => {
  let dir: string
  let srv: ServeHandle
  const layer = randomLayer(10_000)
  const digest = `sha256:${createHash('sha256').update(layer).digest('hex')}`
  const blob = `/v2/shop/api/blobs/${digest}`

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-serve-proto-'))
    const archive = path.join(dir, 'a.tar')
    await syntheticArchive(path.join(dir, 'blobs'), archive, [{name: 'registry.example/shop/api:1', layers: [layer]}])
    srv = await startServe({archive, keys: [], allowUnsigned: true, listen: '127.0.0.1:0', log: () => {}})
  })
  after(async () => {
    await srv.close()
    await rm(dir, {recursive: true, force: true})
  })

  it('a satisfiable range: 206 with exactly those bytes', async () => {
    const r = await get(srv.url, blob, {Range: 'bytes=10-19'})
    assert.equal(r.status, 206)
    assert.equal(r.headers['content-range'], `bytes 10-19/${layer.length}`)
    assert.ok(r.body.equals(layer.subarray(10, 20)))
  })

  for (const ignored of ['bytes=5-2', 'items=0-1', 'bytes=0-1,5-6', 'bytes=abc']) {
    it(`Range "${ignored}" is ignored: 200 and the whole blob`, async () => {
      const r = await get(srv.url, blob, {Range: ignored})
      assert.equal(r.status, 200)
      assert.equal(r.headers['content-range'], undefined)
      assert.ok(r.body.equals(layer))
    })
  }

  it('an unsatisfiable range: 416 with Content-Range bytes */SIZE', async () => {
    const r = await get(srv.url, blob, {Range: `bytes=${layer.length}-`})
    assert.equal(r.status, 416)
    assert.equal(r.headers['content-range'], `bytes */${layer.length}`)
  })

  for (const bad of ['/v2/shop/x/../api/manifests/1', '/v2/shop/./api/manifests/1', '/v2/shop/%2e%2e/shop/api/tags/list', '/v2/Shop/api/manifests/1']) {
    it(`${bad}: 400 NAME_INVALID, not resolved into another repository`, async () => {
      const r = await get(srv.url, bad)
      assert.equal(r.status, 400)
      assert.equal((JSON.parse(r.body.toString()) as {errors: {code: string}[]}).errors[0].code, 'NAME_INVALID')
    })
  }

  it('the same repository named plainly is served', async () => {
    const r = await get(srv.url, '/v2/shop/api/manifests/1')
    assert.equal(r.status, 200)
  })
})
