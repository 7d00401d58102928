import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {Readable} from 'node:stream'
import {after, before, describe, it} from 'node:test'

import {AirlockError, InputError, VerifyError} from '../../../../src/core/errors.js'
import {hasBlob, openBlob, putBlob} from '../../../../src/transports/registry/blobs.js'
import {drain} from '../../../../src/transports/registry/transport/http.js'
import {RegistryTransport} from '../../../../src/transports/registry/transport/request.js'
import {type Handler, type LocalServer, localServer} from './local-server.js'

const DATA = Buffer.from('some blob bytes')
const DIGEST = `sha256:${createHash('sha256').update(DATA).digest('hex')}`

let handle: Handler
let reg: LocalServer
let t: RegistryTransport
before(async () => {
  reg = await localServer((req, res, body) => handle(req, res, body))
  t = new RegistryTransport({host: reg.host, retries: 2, retryBaseDelayMs: 1})
})
after(async () => {
  t.close()
  await reg.close()
})

const calls = () => reg.seen.map((s) => `${s.method} ${s.url.replace(/_state=[^&]*/, '_state=…')}`)
const open = () => Readable.from([DATA])

describe('blobs', () => {
  it('hasBlob: HEAD 200 / 404', async () => {
    handle = (req, res) => res.writeHead(req.url?.includes(DIGEST) ? 200 : 404).end()
    assert.equal(await hasBlob(t, 'a', DIGEST), true)
    assert.equal(await hasBlob(t, 'a', `sha256:${'0'.repeat(64)}`), false)
  })

  it('putBlob: already there → exists, nothing uploaded', async () => {
    reg.seen.length = 0
    handle = (_req, res) => res.writeHead(200).end()
    assert.equal(await putBlob(t, 'a', DIGEST, DATA.length, open), 'exists')
    assert.deepEqual(calls(), [`HEAD /v2/a/blobs/${DIGEST}`])
  })

  it('putBlob: cross-repository mount → mounted', async () => {
    reg.seen.length = 0
    handle = (req, res) => res.writeHead(req.method === 'HEAD' ? 404 : 201).end()
    assert.equal(await putBlob(t, 'b', DIGEST, DATA.length, open, {mountFrom: 'a'}), 'mounted')
    assert.deepEqual(calls(), [`HEAD /v2/b/blobs/${DIGEST}`, `POST /v2/b/blobs/uploads/?mount=${encodeURIComponent(DIGEST)}&from=a`])
  })

  it('putBlob: mount refused (202 with a session) → that session gets the upload', async () => {
    reg.seen.length = 0
    handle = (req, res) => {
      if (req.method === 'HEAD') res.writeHead(404).end()
      else if (req.method === 'POST') res.writeHead(202, {Location: '/v2/b/blobs/uploads/s1?_state=x'}).end()
      else res.writeHead(201, {'Docker-Content-Digest': DIGEST}).end()
    }
    assert.equal(await putBlob(t, 'b', DIGEST, DATA.length, open, {mountFrom: 'a'}), 'uploaded')
    const put = reg.seen.at(-1)!
    assert.equal(put.method, 'PUT')
    assert.equal(new URL(put.url, reg.origin).searchParams.get('digest'), DIGEST)
    assert.ok(put.url.startsWith('/v2/b/blobs/uploads/s1?'))
    assert.equal(put.body, DATA.toString())
  })

  it('putBlob: a failed PUT is retried in a fresh session, with a fresh stream', async () => {
    reg.seen.length = 0
    let puts = 0
    let opened = 0
    handle = (req, res) => {
      if (req.method === 'HEAD') res.writeHead(404).end()
      else if (req.method === 'POST') res.writeHead(202, {Location: `/v2/c/blobs/uploads/s${reg.seen.length}`}).end()
      else res.writeHead(++puts === 1 ? 503 : 201).end()
    }
    assert.equal(await putBlob(t, 'c', DIGEST, DATA.length, () => (opened++, open())), 'uploaded')
    assert.deepEqual(calls().map((c) => c.split('?')[0]), [`HEAD /v2/c/blobs/${DIGEST}`, 'POST /v2/c/blobs/uploads/', 'PUT /v2/c/blobs/uploads/s2', 'POST /v2/c/blobs/uploads/', 'PUT /v2/c/blobs/uploads/s4'])
    assert.equal(opened, 2)
  })

  it('putBlob: the registry storing another digest, or no Location for the session: errors', async () => {
    handle = (req, res) => {
      if (req.method === 'HEAD') res.writeHead(404).end()
      else if (req.method === 'POST') res.writeHead(202, {Location: '/v2/d/blobs/uploads/s'}).end()
      else res.writeHead(201, {'Docker-Content-Digest': `sha256:${'1'.repeat(64)}`}).end()
    }
    await assert.rejects(putBlob(t, 'd', DIGEST, DATA.length, open), (e: unknown) => e instanceof VerifyError && e.code === 'registry.digest_mismatch')
    handle = (req, res) => res.writeHead(req.method === 'HEAD' ? 404 : 202).end()
    await assert.rejects(putBlob(t, 'd', DIGEST, DATA.length, open), (e: unknown) => e instanceof AirlockError && /upload started without a Location header/.test(e.message))
  })

  it('putBlob: bad names or sizes are refused before any request', async () => {
    reg.seen.length = 0
    await assert.rejects(putBlob(t, 'Bad', DIGEST, 1, open), (e: unknown) => e instanceof InputError && e.code === 'registry.invalid_repository')
    await assert.rejects(putBlob(t, 'a', 'sha256:x', 1, open), (e: unknown) => e instanceof InputError && e.code === 'registry.invalid_digest')
    await assert.rejects(putBlob(t, 'a', DIGEST, -1, open), (e: unknown) => e instanceof InputError && e.code === 'registry.invalid_size')
    await assert.rejects(putBlob(t, 'a', DIGEST, 1, open, {mountFrom: '../x'}), (e: unknown) => e instanceof InputError && e.code === 'registry.invalid_repository')
    assert.equal(reg.seen.length, 0)
  })

  it('openBlob: Range from an offset; where the partial body starts; resumability', async () => {
    handle = (req, res) => {
      const range = req.headers.range
      if (!range) res.writeHead(200, {'Accept-Ranges': 'bytes'}).end(DATA)
      else if (range === 'bytes=5-') res.writeHead(206, {'Content-Range': `bytes 5-${DATA.length - 1}/${DATA.length}`}).end(DATA.subarray(5))
      else if (range === 'bytes=7-') res.writeHead(206, {'Content-Range': 'bytes 9-14/15'}).end()
      else res.writeHead(206, {'Content-Range': 'nonsense'}).end()
    }
    const whole = await openBlob(t, 'a', DIGEST, 0)
    drain(whole.res)
    assert.deepEqual([whole.start, whole.ranges], [0, true])
    const part = await openBlob(t, 'a', DIGEST, 5)
    drain(part.res)
    assert.deepEqual([part.start, part.ranges], [5, true])
    await assert.rejects(openBlob(t, 'a', DIGEST, 7, true), /server resumed at byte 9, asked for 7/)
    await assert.rejects(openBlob(t, 'a', DIGEST, 8, true), /invalid Content-Range in partial response/)
  })
})
