import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {AirlockError} from '../../../../src/core/errors.js'
import {BearerTokens, checkRealm, tokenExpiry} from '../../../../src/transports/registry/transport/bearer.js'
import {Agents} from '../../../../src/transports/registry/transport/http.js'
import {Retryable} from '../../../../src/transports/registry/transport/retry.js'
import {SecretScrubber} from '../../../../src/transports/registry/transport/scrub.js'
import {type LocalServer, json, localServer} from './local-server.js'

describe('token service realm rule', () => {
  const https = {host: 'registry.example.com', scheme: 'https' as const}

  it('credentials of an HTTPS registry never go to a plain-HTTP token service elsewhere', () => {
    assert.throws(() => checkRealm(new URL('http://auth.example.com/token'), https, true), (e: unknown) =>
      e instanceof AirlockError && e.code === 'registry.insecure_realm' && /registry\.example\.com/.test(e.message) && /auth\.example\.com/.test(e.message))
  })

  it('credentials of an HTTPS registry never go to a plain-HTTP realm, not even on loopback', () => {
    for (const realm of ['http://127.0.0.1:5000/token', 'http://localhost/token', 'http://[::1]:9/token', 'http://registry.example.com/token']) {
      assert.throws(() => checkRealm(new URL(realm), https, true), (e: unknown) => e instanceof AirlockError && e.code === 'registry.insecure_realm', realm)
    }
  })

  it('credentials of a plain-HTTP registry go to a plain-HTTP realm on its own host only', () => {
    const plain = {host: '127.0.0.1:5302', scheme: 'http' as const}
    checkRealm(new URL('http://127.0.0.1:5400/token'), plain, true)
    checkRealm(new URL('http://auth.lan/token'), {host: 'auth.lan:5000', scheme: 'http'}, true)
    assert.throws(() => checkRealm(new URL('http://auth.lan/token'), {host: 'registry.lan', scheme: 'http'}, true), (e: unknown) => e instanceof AirlockError && e.code === 'registry.insecure_realm')
    assert.throws(() => checkRealm(new URL('http://127.0.0.2:5400/token'), plain, true), (e: unknown) => e instanceof AirlockError && e.code === 'registry.insecure_realm')
  })

  it('allowed: no credentials, or an HTTPS realm anywhere', () => {
    checkRealm(new URL('http://auth.example.com/token'), https, false)
    checkRealm(new URL('https://auth.example.com/token'), https, true)
    checkRealm(new URL('https://auth.lan/token'), {host: 'registry.lan', scheme: 'http'}, true)
  })
})

describe('token expiry', () => {
  const now = 1_000_000_000_000
  it('expires_in less a quarter of it, at most 30 s early', () => {
    assert.equal(tokenExpiry({expires_in: 300}, now), now + 270_000)
    assert.equal(tokenExpiry({expires_in: 20}, now), now + 15_000)
  })
  it('no or a bad expires_in: 60 s', () => {
    assert.equal(tokenExpiry({}, now), now + 45_000)
    assert.equal(tokenExpiry({expires_in: 0}, now), now + 45_000)
    assert.equal(tokenExpiry({expires_in: '300'}, now), now + 45_000)
  })
  it('counted from issued_at when it is in the past, else from now', () => {
    assert.equal(tokenExpiry({expires_in: 300, issued_at: new Date(now - 100_000).toISOString()}, now), now + 170_000)
    assert.equal(tokenExpiry({expires_in: 300, issued_at: new Date(now + 100_000).toISOString()}, now), now + 270_000)
    assert.equal(tokenExpiry({expires_in: 300, issued_at: 'yesterday'}, now), now + 270_000)
  })
})

describe('BearerTokens against an in-process token service', () => {
  let srv: LocalServer
  let answer: (url: URL, body: string) => {status: number; body: unknown; headers?: Record<string, string>}
  const agents = new Agents()
  before(async () => {
    srv = await localServer((req, res, body) => {
      const a = answer(new URL(req.url ?? '/', 'http://x'), body)
      json(res, a.status, a.body, a.headers)
    })
  })
  after(async () => {
    agents.destroy()
    await srv.close()
  })

  function tokens(scrubber = new SecretScrubber()): BearerTokens {
    // A plain-HTTP registry on the token service's own host: the realm rule lets its credentials go there.
    return new BearerTokens({host: '127.0.0.1:5999', scheme: 'http', userAgent: 'airlock-test', timeoutMs: 5000, agents, scrubber})
  }
  const ch = () => ({scheme: 'bearer' as const, realm: `${srv.origin}/token`, service: 'reg.example'})

  it('GET with service and scopes, Basic credentials; cached per scope set', async () => {
    srv.seen.length = 0
    let n = 0
    answer = () => ({status: 200, body: {token: `tok-${++n}`, expires_in: 300}})
    const t = tokens()
    const creds = async () => ({username: 'u', password: 'p'})
    assert.equal(await t.token(ch(), ['repository:a:pull'], creds), 'tok-1')
    assert.equal(await t.token(ch(), ['repository:a:pull'], creds), 'tok-1', 'cached')
    assert.equal(await t.token(ch(), ['repository:b:pull', 'repository:a:pull'], creds), 'tok-2')
    assert.equal(await t.token(ch(), ['repository:a:pull', 'repository:b:pull'], creds), 'tok-2', 'scope order does not matter')
    assert.equal(srv.seen.length, 2)
    const first = new URL(srv.seen[0].url, 'http://x')
    assert.equal(srv.seen[0].method, 'GET')
    assert.equal(first.searchParams.get('service'), 'reg.example')
    assert.deepEqual(first.searchParams.getAll('scope'), ['repository:a:pull'])
    assert.equal(srv.seen[0].headers.authorization, `Basic ${Buffer.from('u:p').toString('base64')}`)
    assert.equal(srv.seen[0].headers['user-agent'], 'airlock-test')
    t.forget(ch(), ['repository:a:pull'])
    assert.equal(await t.token(ch(), ['repository:a:pull'], creds), 'tok-3', 'forgotten: fetched again')
  })

  it('an identity token is sent as an OAuth2 refresh-token grant (POST form)', async () => {
    srv.seen.length = 0
    answer = () => ({status: 200, body: {access_token: 'acc'}})
    assert.equal(await tokens().token(ch(), ['repository:a:pull'], async () => ({identityToken: 'refresh-me'})), 'acc')
    const r = srv.seen[0]
    assert.equal(r.method, 'POST')
    assert.equal(r.headers['content-type'], 'application/x-www-form-urlencoded')
    assert.equal(r.headers.authorization, undefined)
    const form = new URLSearchParams(r.body)
    assert.equal(form.get('grant_type'), 'refresh_token')
    assert.equal(form.get('refresh_token'), 'refresh-me')
    assert.equal(form.get('client_id'), 'airlock')
    assert.equal(form.get('service'), 'reg.example')
    assert.equal(form.get('scope'), 'repository:a:pull')
  })

  it('anonymous: no Authorization header', async () => {
    srv.seen.length = 0
    answer = () => ({status: 200, body: {token: 'anon'}})
    assert.equal(await tokens().token(ch(), [], async () => undefined), 'anon')
    assert.equal(srv.seen[0].headers.authorization, undefined)
  })

  it('the token is known to the scrubber', async () => {
    answer = () => ({status: 200, body: {token: 'secret-token-value'}})
    const scrubber = new SecretScrubber()
    await tokens(scrubber).token(ch(), ['x'], async () => undefined)
    assert.equal(scrubber.redact('got secret-token-value back'), 'got *** back')
  })

  it('401 with credentials: rejected, server text scrubbed; without: none configured', async () => {
    answer = () => ({status: 401, body: {errors: [{code: 'UNAUTHORIZED', message: 'bad password hunter22'}]}})
    const scrubber = new SecretScrubber()
    scrubber.addCredentials({username: 'u', password: 'hunter22'})
    await assert.rejects(tokens(scrubber).token(ch(), ['x'], async () => ({username: 'u', password: 'hunter22'})), (e: unknown) =>
      e instanceof AirlockError && e.code === 'registry.unauthorized'
      && e.message === 'token service for 127.0.0.1:5999 rejected the credentials (HTTP 401: bad password ***)')
    await assert.rejects(tokens().token(ch(), ['x'], async () => undefined), (e: unknown) =>
      e instanceof AirlockError && e.code === 'registry.unauthorized' && /requires authentication and no credentials are configured \(HTTP 401 from its token service\)/.test(e.message))
  })

  it('5xx and 429 are retryable, honouring Retry-After', async () => {
    answer = () => ({status: 503, body: {}, headers: {'Retry-After': '4'}})
    await assert.rejects(tokens().token(ch(), ['x'], async () => undefined), (e: unknown) =>
      e instanceof Retryable && e.reason === 'token HTTP 503' && e.retryAfterMs === 4000
      && e.final instanceof AirlockError && (e.final).code === 'registry.server_error')
  })

  it('other statuses, a bad body or no token: clear errors', async () => {
    answer = () => ({status: 404, body: {errors: [{message: 'no such realm'}]}})
    await assert.rejects(tokens().token(ch(), ['x'], async () => undefined), /token service for 127\.0\.0\.1:5999 answered HTTP 404 \(no such realm\)/)
    answer = () => ({status: 200, body: {nothing: true}})
    await assert.rejects(tokens().token(ch(), ['x'], async () => undefined), (e: unknown) => e instanceof AirlockError && e.code === 'registry.bad_response' && /returned no token/.test(e.message))
  })

  it('a plain-HTTP remote realm with credentials is refused before anything is sent', async () => {
    srv.seen.length = 0
    await assert.rejects(
      tokens().token({scheme: 'bearer', realm: 'http://auth.invalid/token'}, ['x'], async () => ({username: 'u', password: 'p'})),
      (e: unknown) => e instanceof AirlockError && e.code === 'registry.insecure_realm')
    assert.equal(srv.seen.length, 0)
  })

  it('an HTTPS registry naming a plain-HTTP realm on loopback: refused, the local listener gets nothing', async () => {
    srv.seen.length = 0
    const forHttps = new BearerTokens({host: 'registry.example.com', scheme: 'https', userAgent: 'airlock-test', timeoutMs: 5000, agents, scrubber: new SecretScrubber()})
    answer = () => ({status: 200, body: {token: 'stolen?'}})
    await assert.rejects(forHttps.token(ch(), ['x'], async () => ({username: 'u', password: 'p'})), (e: unknown) => e instanceof AirlockError && e.code === 'registry.insecure_realm')
    assert.equal(srv.seen.length, 0)
  })
})
