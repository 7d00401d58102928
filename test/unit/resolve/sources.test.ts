import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {AirlockError} from '../../../src/core/errors.js'
import {Sources} from '../../../src/resolve/sources.js'
import {parseReference} from '../../../src/spec/reference.js'
import {type LocalServer, json, localServer} from '../transports/registry/local-server.js'
import {AMD64, Content} from './fixtures.js'

/** A registry serving `content` under any repository, tags from `tags`; 404 for the rest. */
async function registry(content: Content, tags: Record<string, string>): Promise<LocalServer> {
  return localServer((req, res) => {
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(req.url ?? '')
    const digest = m ? (m[3].startsWith('sha256:') ? m[3] : tags[`${m[1]}:${m[3]}`]) : undefined
    const blob = digest ? content.blobs.get(digest) : undefined
    if (!m || !blob) {
      json(res, 404, {errors: [{code: 'MANIFEST_UNKNOWN', message: 'manifest unknown'}]})
      return
    }
    res.writeHead(200, {'Content-Type': m[2] === 'manifests' ? blob.mediaType : 'application/octet-stream', 'Content-Length': blob.bytes.length, 'Docker-Content-Digest': digest})
    res.end(req.method === 'HEAD' ? undefined : blob.bytes)
  })
}

describe('Sources (in-process registries)', () => {
  const c = new Content()
  const m = c.image(AMD64)
  const config = (JSON.parse(c.get(m.digest).bytes.toString()) as {config: {digest: string; size: number}}).config
  let main: LocalServer
  let mirror: LocalServer
  let emptyMirror: LocalServer
  const open: Sources[] = []
  before(async () => {
    main = await registry(c, {'app:1': m.digest})
    mirror = await registry(c, {'app:1': m.digest})
    emptyMirror = await registry(new Content(), {})
  })
  after(async () => {
    for (const s of open) for (const host of [main.host, mirror.host, emptyMirror.host]) s.client(host).close()
    await Promise.all([main.close(), mirror.close(), emptyMirror.close()])
  })

  function sources(mirrors: string[]): Sources {
    const s = new Sources({registries: {[main.host]: {mirrors}}, retries: 0, retryBaseDelayMs: 1})
    open.push(s)
    return s
  }
  const ref = () => parseReference(`${main.host}/app:1`)

  it('a mirror is asked first; the registry itself is not asked when the mirror has it', async () => {
    main.seen.length = 0
    mirror.seen.length = 0
    const got = await sources([mirror.host]).getManifest(ref(), '1')
    assert.equal(got.digest, m.digest)
    assert.equal(mirror.seen.length, 1)
    assert.equal(main.seen.length, 0)
  })

  it('a mirror that lacks it: the registry answers', async () => {
    main.seen.length = 0
    emptyMirror.seen.length = 0
    const got = await sources([emptyMirror.host]).getManifest(ref(), '1')
    assert.equal(got.digest, m.digest)
    assert.equal(emptyMirror.seen.length, 1)
    assert.equal(main.seen.length, 1)
  })

  it('nowhere: the last error (the registry\'s own)', async () => {
    await assert.rejects(sources([emptyMirror.host]).getManifest(parseReference(`${main.host}/nope:1`), '1'), (e: unknown) =>
      e instanceof AirlockError && e.code === 'registry.not_found' && e.message.includes(`${main.host}/nope:1`))
  })

  it('small blobs (configs) are fetched verified, once, and kept for create', async () => {
    main.seen.length = 0
    const s = sources([])
    const a = await s.getSmallBlob(ref(), config.digest, config.size)
    const b = await s.getSmallBlob(ref(), config.digest, config.size)
    assert.equal(a, b)
    assert.equal(s.small.get(config.digest), a)
    assert.equal(main.seen.filter((r) => r.url.includes('/blobs/')).length, 1)
  })

  it('a config over 16 MiB is refused before anything is fetched', async () => {
    await assert.rejects(sources([]).getSmallBlob(ref(), config.digest, 17 * 1024 * 1024), (e: unknown) => e instanceof AirlockError && e.code === 'registry.blob_too_large')
  })

  it('a blob whose size differs from the descriptor is refused (verified stream)', async () => {
    await assert.rejects(sources([]).getSmallBlob(ref(), config.digest, config.size + 1), (e: unknown) => e instanceof AirlockError && e.code === 'registry.size_mismatch')
  })

  it('one client per host, reused', () => {
    const s = sources([])
    assert.equal(s.client(main.host), s.client(main.host))
    assert.notEqual(s.client(main.host), s.client(mirror.host))
  })
})
