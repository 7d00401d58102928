/**
 * The Bearer token flow of the distribution spec: a token from the realm named by the 401
 * challenge, for the service and scopes wanted, cached per (realm, service, scopes) until shortly
 * before it expires. Credentials go to the token service as Basic auth or, for an identity token,
 * as an OAuth2 refresh-token grant; never to a plain-HTTP token service of an HTTPS registry.
 */
import type http from 'node:http'

import {AirlockError} from '../../../core/errors.js'
import type {Credentials} from './credentials.js'
import {basicAuthorization} from './basic.js'
import type {Challenge} from './challenge.js'
import {networkRetryable, toRetryable} from './errors.js'
import {type Agents, NetworkError, classifyError, drain, readBody, send} from './http.js'
import {Retryable, parseRetryAfter} from './retry.js'
import {type SecretScrubber, serverErrorText} from './scrub.js'

export type BearerChallenge = Extract<Challenge, {scheme: 'bearer'}>

/** What the token service of one registry needs from its client. */
export interface TokenServiceContext {
  /** The registry host, as the user wrote it (for messages). */
  host: string
  /** The registry's own scheme: an HTTPS registry never sends credentials to a plain-HTTP realm. */
  scheme: 'http' | 'https'
  userAgent: string
  timeoutMs: number
  agents: Agents
  /** Tokens are added to it; token-service error text is scrubbed with it. */
  scrubber: SecretScrubber
}

interface Token {
  value: string
  expiresAt: number
}

interface TokenResponse {
  token?: unknown
  access_token?: unknown
  expires_in?: unknown
  issued_at?: unknown
}

const MAX_TOKEN_RESPONSE = 1024 * 1024

/**
 * The realm rule: credentials go to a token service only over HTTPS, with one exception. For an
 * HTTPS registry a plain-HTTP realm is refused whatever its address (a loopback one too: any local
 * listener could answer there). For a plain-HTTP registry (insecure, or on loopback), whose
 * credentials already travel in clear to that host, a plain-HTTP realm on the same host is
 * accepted, and one on any other host refused. Throws registry.insecure_realm.
 */
export function checkRealm(realm: URL, ctx: {host: string; scheme: 'http' | 'https'}, haveCredentials: boolean): void {
  if (!haveCredentials || realm.protocol === 'https:') return
  const sameHost = hostnameOf(ctx.host) === realm.hostname.toLowerCase().replace(/^\[|\]$/g, '')
  if (ctx.scheme === 'https' || !sameHost) {
    throw new AirlockError('registry.insecure_realm', `refusing to send credentials for ${ctx.host} to a plain-HTTP token service (${realm.host})`)
  }
}

/** `host[:port]` or `[v6]:port` → the host name alone, lower case. */
function hostnameOf(host: string): string {
  return new URL(`http://${host}`).hostname.toLowerCase().replace(/^\[|\]$/g, '')
}

/** When a token stops being used: `expires_in` (default 60 s) from `issued_at` (or now), less a margin. */
export function tokenExpiry(j: {expires_in?: unknown; issued_at?: unknown}, now = Date.now()): number {
  const ttl = typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : 60
  const issued = typeof j.issued_at === 'string' ? Date.parse(j.issued_at) : Number.NaN
  const base = Number.isNaN(issued) || issued > now ? now : issued
  const margin = Math.min(30, ttl / 4)
  return base + (ttl - margin) * 1000
}

export class BearerTokens {
  private readonly tokens = new Map<string, Token>()

  constructor(private readonly ctx: TokenServiceContext) {}

  /** Drop the cached token for these scopes (the registry asked for a new one). */
  forget(ch: {realm: string; service?: string}, scopes: string[]): void {
    this.tokens.delete(tokenKey(ch, scopes))
  }

  /** A valid token for `scopes`: cached, or fetched from the challenge's realm. */
  async token(ch: BearerChallenge, scopes: string[], credentials: () => Promise<Credentials | undefined>): Promise<string> {
    const key = tokenKey(ch, scopes)
    const cached = this.tokens.get(key)
    if (cached && cached.expiresAt > Date.now()) return cached.value
    const realm = new URL(ch.realm)
    const c = await credentials()
    checkRealm(realm, this.ctx, Boolean(c))
    const res = await this.fetch(realm, ch, scopes, c)
    const j = await this.parse(res, realm)
    const value = typeof j.token === 'string' && j.token ? j.token : typeof j.access_token === 'string' ? j.access_token : ''
    if (!value) throw new AirlockError('registry.bad_response', `token service for ${this.ctx.host} returned no token`)
    this.ctx.scrubber.add(value)
    this.tokens.set(key, {value, expiresAt: tokenExpiry(j)})
    return value
  }

  /** Ask the token service; resolves with a 200 response, throws on any other status. */
  private async fetch(realm: URL, ch: BearerChallenge, scopes: string[], c: Credentials | undefined): Promise<http.IncomingMessage> {
    const headers: Record<string, string> = {'User-Agent': this.ctx.userAgent}
    let method = 'GET'
    let body: Buffer | undefined
    if (c?.identityToken) {
      method = 'POST'
      const form = new URLSearchParams({grant_type: 'refresh_token', refresh_token: c.identityToken, client_id: 'airlock'})
      if (ch.service) form.set('service', ch.service)
      if (scopes.length) form.set('scope', scopes.join(' '))
      body = Buffer.from(form.toString())
      headers['Content-Type'] = 'application/x-www-form-urlencoded'
    } else {
      if (ch.service) realm.searchParams.set('service', ch.service)
      for (const s of scopes) realm.searchParams.append('scope', s)
      const basic = basicAuthorization(c)
      if (basic) headers.Authorization = basic
    }
    let res: http.IncomingMessage
    try {
      res = await send({url: realm, method, headers, body, agent: this.ctx.agents.for(realm), timeoutMs: this.ctx.timeoutMs})
    } catch (e) {
      throw toRetryable(this.ctx.host, classifyError(e, realm.host))
    }
    await this.checkStatus(res, Boolean(c))
    return res
  }

  private async checkStatus(res: http.IncomingMessage, haveCredentials: boolean): Promise<void> {
    const {host, scrubber} = this.ctx
    const status = res.statusCode ?? 0
    if (status === 401 || status === 403) {
      const text = await serverErrorText(res, scrubber)
      throw new AirlockError(
        'registry.unauthorized',
        haveCredentials
          ? `token service for ${host} rejected the credentials (HTTP ${status}${text ? `: ${text}` : ''})`
          : `${host} requires authentication and no credentials are configured (HTTP ${status} from its token service)`,
      )
    }
    if (status >= 500 || status === 429) {
      drain(res)
      throw new Retryable(`token HTTP ${status}`, new AirlockError('registry.server_error', `token service for ${host} answered HTTP ${status}`), parseRetryAfter(res.headers['retry-after']))
    }
    if (status !== 200) {
      const text = await serverErrorText(res, scrubber)
      throw new AirlockError('registry.unauthorized', `token service for ${host} answered HTTP ${status}${text ? ` (${text})` : ''}`)
    }
  }

  private async parse(res: http.IncomingMessage, realm: URL): Promise<TokenResponse> {
    try {
      return JSON.parse((await readBody(res, MAX_TOKEN_RESPONSE, () => new Error('too large'))).toString('utf8')) as TokenResponse
    } catch (e) {
      const n = classifyError(e, realm.host)
      if (n instanceof NetworkError) throw networkRetryable(this.ctx.host, n)
      throw new AirlockError('registry.bad_response', `invalid token response from the token service of ${this.ctx.host}`)
    }
  }
}

function tokenKey(ch: {realm: string; service?: string}, scopes: string[]): string {
  return `${ch.realm}|${ch.service ?? ''}|${[...scopes].sort().join(' ')}`
}
