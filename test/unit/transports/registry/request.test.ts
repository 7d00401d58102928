import assert from 'node:assert/strict'
import type http from 'node:http'
import {after, before, describe, it} from 'node:test'

import {AirlockError, InputError, VerifyError} from '../../../../src/core/errors.js'
import {drain, readBody} from '../../../../src/transports/registry/transport/http.js'
import {RegistryTransport, type TransportOptions, type TransportRequest} from '../../../../src/transports/registry/transport/request.js'
import {type RetryInfo, Retryable} from '../../../../src/transports/registry/transport/retry.js'
import {type Handler, type LocalServer, json, localServer} from './local-server.js'

const BASIC = `Basic ${Buffer.from('alice:hunter22').toString('base64')}`

/** A registry whose behaviour each test sets with `handle`. */
let handle: Handler
let reg: LocalServer
/** A second origin (blob storage). */
let storage: LocalServer
const open: RegistryTransport[] = []

before(async () => {
  reg = await localServer((req, res, body) => handle(req, res, body))
  storage = await localServer((_req, res) => res.end('blob bytes'))
})
after(async () => {
  for (const t of open) t.close()
  await reg.close()
  await storage.close()
})

function transport(o: Partial<TransportOptions> = {}): RegistryTransport {
  const t = new RegistryTransport({host: reg.host, retries: 2, retryBaseDelayMs: 1, ...o})
  open.push(t)
  return t
}

function get(url = '/v2/a/manifests/1', over: Partial<TransportRequest> = {}): TransportRequest {
  return {method: 'GET', url, scopes: ['repository:a:pull'], expect: [200], what: `manifest ${reg.host}/a:1`, ...over}
}

const text = async (res: http.IncomingMessage) => (await readBody(res, 1 << 20, () => new Error('too large'))).toString('utf8')

describe('RegistryTransport', () => {
  it('rejects a host that is not host[:port]', () => {
    for (const host of ['', 'a b', 'a/b', 'user@host']) assert.throws(() => new RegistryTransport({host}), (e: unknown) => e instanceof InputError && e.code === 'registry.invalid_host')
  })

  it('a CA file that cannot be read is an InputError', () => {
    assert.throws(() => new RegistryTransport({host: 'r.example', caFile: '/nonexistent/ca.pem'}), (e: unknown) =>
      e instanceof InputError && e.code === 'registry.ca_file' && /ENOENT/.test(e.message))
  })

  it('Basic: nothing sent until the 401 names the scheme, then the credentials', async () => {
    reg.seen.length = 0
    handle = (req, res) => {
      if (req.headers.authorization === BASIC) res.end('ok')
      else json(res, 401, {errors: [{code: 'UNAUTHORIZED'}]}, {'WWW-Authenticate': 'Basic realm="r"'})
    }
    const t = transport({credentials: {username: 'alice', password: 'hunter22'}})
    assert.equal(await t.request(get(), text), 'ok')
    assert.equal(await t.request(get(), text), 'ok')
    assert.deepEqual(reg.seen.map((s) => s.headers.authorization), [undefined, BASIC, BASIC], 'the scheme is remembered')
  })

  it('401 without credentials: says none are configured and where to put them', async () => {
    handle = (_req, res) => json(res, 401, {}, {'WWW-Authenticate': 'Basic realm="r"'})
    await assert.rejects(transport().request(get(), text), (e: unknown) =>
      e instanceof AirlockError && e.code === 'registry.unauthorized'
      && e.message === `manifest ${reg.host}/a:1: ${reg.host} requires authentication and no credentials are configured (bundle.yaml registries.${reg.host}.auth, --registry-config or docker login)`)
  })

  it('rejected credentials: one retry only, and the server text has the password scrubbed', async () => {
    reg.seen.length = 0
    handle = (_req, res) => json(res, 401, {errors: [{message: 'user alice with password hunter22 denied'}]}, {'WWW-Authenticate': 'Basic realm="r"'})
    await assert.rejects(transport({credentials: async () => ({username: 'alice', password: 'hunter22'})}).request(get(), text), (e: unknown) =>
      e instanceof AirlockError && e.code === 'registry.unauthorized'
      && e.message === `manifest ${reg.host}/a:1: credentials for ${reg.host} were rejected (401: user alice with password *** denied)`)
    assert.equal(reg.seen.length, 2)
  })

  it('Bearer: token from the realm for the request scopes plus the challenge scope; token scrubbed from messages', async () => {
    reg.seen.length = 0
    handle = (req, res) => {
      const u = new URL(req.url ?? '/', reg.origin)
      if (u.pathname === '/token') {
        json(res, 200, {token: `tok:${u.searchParams.getAll('scope').join('+')}`})
      } else if (req.headers.authorization?.startsWith('Bearer ')) {
        json(res, 403, {errors: [{message: `forbidden for ${req.headers.authorization.slice(7)}`}]})
      } else {
        json(res, 401, {}, {'WWW-Authenticate': `Bearer realm="${reg.origin}/token",service="svc",scope="repository:a:push"`})
      }
    }
    const t = transport()
    await assert.rejects(t.request(get(), text), (e: unknown) =>
      e instanceof AirlockError && e.code === 'registry.denied' && e.message === `manifest ${reg.host}/a:1: access denied by ${reg.host} (forbidden for ***)`)
    const tokenReq = reg.seen.find((s) => s.url.startsWith('/token'))!
    const q = new URL(tokenReq.url, reg.origin).searchParams
    assert.equal(q.get('service'), 'svc')
    assert.deepEqual(q.getAll('scope'), ['repository:a:pull', 'repository:a:push'])
  })

  it('a redirect to another origin is followed without Authorization; the same origin keeps it', async () => {
    reg.seen.length = 0
    storage.seen.length = 0
    handle = (req, res) => {
      if (req.headers.authorization !== BASIC) json(res, 401, {}, {'WWW-Authenticate': 'Basic realm="r"'})
      else if (req.url === '/v2/a/blobs/x') res.writeHead(307, {Location: '/v2/a/blobs/y'}).end()
      else res.writeHead(302, {Location: `http://localhost:${storage.port}/bucket/y?sig=1`}).end()
    }
    const t = transport({credentials: {username: 'alice', password: 'hunter22'}})
    assert.equal(await t.request(get('/v2/a/blobs/x'), text), 'blob bytes')
    assert.deepEqual(reg.seen.map((s) => [s.url, s.headers.authorization]), [['/v2/a/blobs/x', undefined], ['/v2/a/blobs/x', BASIC], ['/v2/a/blobs/y', BASIC]])
    assert.equal(storage.seen.length, 1)
    assert.equal(storage.seen[0].url, '/bucket/y?sig=1')
    assert.equal(storage.seen[0].headers.authorization, undefined)
  })

  it('303, or 301/302 after a POST, turns the request into a GET without body', async () => {
    reg.seen.length = 0
    handle = (req, res) => {
      if (req.url === '/upload') res.writeHead(303, {Location: '/done'}).end()
      else res.end(`${req.method} ${req.headers['content-length'] ?? '-'}`)
    }
    const t = transport()
    assert.equal(await t.request(get('/upload', {method: 'POST', body: Buffer.from('data')}), text), 'GET -')
    assert.equal(reg.seen[0].body, 'data')
  })

  it('too many redirects: a clear error', async () => {
    handle = (_req, res) => res.writeHead(302, {Location: '/again'}).end()
    await assert.rejects(transport().request(get(), text), (e: unknown) => e instanceof AirlockError && e.code === 'registry.bad_response' && /too many redirects/.test(e.message))
  })

  it('5xx is retried with backoff (reported through onRetry), then succeeds', async () => {
    let n = 0
    handle = (_req, res) => (++n <= 2 ? json(res, 503, {errors: [{message: 'busy'}]}) : res.end('ok'))
    const retries: RetryInfo[] = []
    assert.equal(await transport({onRetry: (i) => retries.push(i)}).request(get(), text), 'ok')
    assert.deepEqual(retries.map((r) => [r.attempt, r.retries, r.reason, r.method, r.url]), [
      [1, 2, 'HTTP 503', 'GET', `${reg.origin}/v2/a/manifests/1`],
      [2, 2, 'HTTP 503', 'GET', `${reg.origin}/v2/a/manifests/1`],
    ])
  })

  it('retries spent: the last failure as a clear message (server error, rate limit)', async () => {
    handle = (_req, res) => json(res, 502, {errors: [{message: 'upstream down'}]})
    await assert.rejects(transport().request(get(), text), (e: unknown) =>
      e instanceof AirlockError && e.code === 'registry.server_error' && e.message === `manifest ${reg.host}/a:1: ${reg.host} answered HTTP 502 (upstream down)`)
    handle = (_req, res) => res.writeHead(429).end()
    await assert.rejects(transport({retries: 0}).request(get(), text), (e: unknown) =>
      e instanceof AirlockError && e.code === 'registry.rate_limited' && e.message === `manifest ${reg.host}/a:1: ${reg.host} answered HTTP 429`)
  })

  it('connection refused: registry.unreachable after the retries', async () => {
    const gone = await localServer(() => {})
    const host = gone.host
    await gone.close()
    const retries: RetryInfo[] = []
    const t = new RegistryTransport({host, retries: 2, retryBaseDelayMs: 1, onRetry: (i) => retries.push(i)})
    open.push(t)
    await assert.rejects(t.request(get(), text), (e: unknown) =>
      e instanceof AirlockError && e.code === 'registry.unreachable' && e.message === `registry ${host} unreachable: ECONNREFUSED`)
    assert.deepEqual(retries.map((r) => r.reason), ['ECONNREFUSED', 'ECONNREFUSED'])
  })

  it('unexpected statuses: not found, denied, rejected, digest, unsupported, other', async () => {
    const cases: Array<[number, unknown, string, string]> = [
      [404, {errors: [{code: 'MANIFEST_UNKNOWN', message: 'manifest unknown'}]}, 'registry.not_found', `manifest unknown: ${reg.host}/a:1`],
      [404, '', 'registry.not_found', `manifest unknown: ${reg.host}/a:1`],
      [400, {errors: [{message: 'bad name'}]}, 'registry.rejected', `manifest ${reg.host}/a:1: ${reg.host} rejected the request (bad name)`],
      [400, {errors: [{message: 'digest invalid'}]}, 'registry.digest_mismatch', `manifest ${reg.host}/a:1: digest invalid`],
      [405, '', 'registry.unsupported', `manifest ${reg.host}/a:1: ${reg.host} does not allow GET (HTTP 405)`],
      [418, {errors: [{message: 'teapot'}]}, 'registry.http_error', `manifest ${reg.host}/a:1: unexpected HTTP 418 from ${reg.host} (teapot)`],
    ]
    for (const [status, body, code, message] of cases) {
      handle = (_req, res) => (body === '' ? res.writeHead(status).end() : json(res, status, body))
      await assert.rejects(transport().request(get(), text), (e: unknown) => {
        assert.ok(e instanceof AirlockError, String(e))
        assert.equal(e.code, code)
        assert.equal(e.message, message)
        if (code === 'registry.digest_mismatch') assert.ok(e instanceof VerifyError)
        return true
      })
    }
  })

  it('HEAD: expected statuses go to the consumer; a body is never read', async () => {
    handle = (req, res) => res.writeHead(req.url?.endsWith('/here') ? 200 : 404).end()
    const t = transport()
    const head = (url: string) => t.request(get(url, {method: 'HEAD', expect: [200, 404]}), async (res) => {
      drain(res)
      return res.statusCode
    })
    assert.equal(await head('/v2/a/blobs/here'), 200)
    assert.equal(await head('/v2/a/blobs/gone'), 404)
  })

  it('attempt(): one exchange, a retryable failure is thrown as is', async () => {
    handle = (_req, res) => json(res, 500, {})
    await assert.rejects(transport().attempt(get(), text), (e: unknown) => e instanceof Retryable && e.reason === 'HTTP 500')
  })
})
