import assert from 'node:assert/strict'
import http from 'node:http'
import {after, before, describe, it} from 'node:test'

import {SecretScrubber, serverErrorText} from '../../../../src/transports/registry/transport/scrub.js'
import {type LocalServer, localServer} from './local-server.js'

describe('SecretScrubber', () => {
  it('hides passwords, identity tokens and the Basic encoding of user:password', () => {
    const s = new SecretScrubber()
    s.addCredentials({username: 'alice', password: 's3cret!'})
    s.addCredentials({identityToken: 'refresh-abc'})
    const basic = Buffer.from('alice:s3cret!').toString('base64')
    assert.equal(s.redact(`pw s3cret! tok refresh-abc hdr Basic ${basic} user alice`), 'pw *** tok *** hdr Basic *** user alice')
  })

  it('ignores secrets shorter than 4 characters (they would mangle ordinary words)', () => {
    const s = new SecretScrubber()
    s.add('abc')
    s.addCredentials(undefined)
    assert.equal(s.redact('abcdef'), 'abcdef')
  })
})

describe('serverErrorText', () => {
  let srv: LocalServer
  let reply: (res: http.ServerResponse) => void
  before(async () => {
    srv = await localServer((_req, res) => reply(res))
  })
  after(() => srv.close())

  async function textOf(r: (res: http.ServerResponse) => void, scrubber = new SecretScrubber()): Promise<string> {
    reply = r
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(`${srv.origin}/`, resolve).on('error', reject))
    return serverErrorText(res, scrubber)
  }

  it('the first error of a distribution-spec error body: message, else code', async () => {
    assert.equal(await textOf((res) => res.end(JSON.stringify({errors: [{code: 'MANIFEST_UNKNOWN', message: 'manifest unknown'}, {message: 'other'}]}))), 'manifest unknown')
    assert.equal(await textOf((res) => res.end(JSON.stringify({errors: [{code: 'DENIED'}]}))), 'DENIED')
  })

  it('other text: whitespace collapsed, capped at 200 characters; empty: ""', async () => {
    assert.equal(await textOf((res) => res.end('  <html>\n  Bad   Gateway\n</html> ')), '<html> Bad Gateway </html>')
    assert.equal((await textOf((res) => res.end('x'.repeat(5000)))).length, 200)
    assert.equal(await textOf((res) => res.end()), '')
  })

  it('secrets the client knows are scrubbed', async () => {
    const s = new SecretScrubber()
    s.add('tok-123456')
    assert.equal(await textOf((res) => res.end(JSON.stringify({errors: [{message: 'invalid token tok-123456'}]})), s), 'invalid token ***')
    assert.equal(await textOf((res) => res.end('echo: Bearer tok-123456'), s), 'echo: Bearer ***')
  })

  it('a body over 64 KiB is not read: ""', async () => {
    assert.equal(await textOf((res) => res.end('y'.repeat(65 * 1024))), '')
  })
})
