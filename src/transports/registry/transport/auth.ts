/**
 * Which `Authorization` a request to the registry carries. Nothing is sent until a 401 names a
 * scheme; then Basic (the user's credentials) or Bearer (a token for the request's scopes).
 * Credentials are resolved once, lazily, and every secret among them is handed to the scrubber.
 */
import type {CredentialSource, Credentials} from './credentials.js'
import {basicAuthorization} from './basic.js'
import {BearerTokens, type TokenServiceContext} from './bearer.js'
import type {Challenge} from './challenge.js'
import type {SecretScrubber} from './scrub.js'

/** What a request was sent with: a rejected Basic header is not worth a second try. */
export type SentAuth = 'none' | 'basic' | 'bearer'

export class Authenticator {
  private creds?: Promise<Credentials | undefined>
  private challenge?: Challenge
  private readonly bearer: BearerTokens
  private readonly scrubber: SecretScrubber

  constructor(
    private readonly source: CredentialSource | undefined,
    tokenService: TokenServiceContext,
  ) {
    this.scrubber = tokenService.scrubber
    this.bearer = new BearerTokens(tokenService)
  }

  credentials(): Promise<Credentials | undefined> {
    if (!this.creds) {
      const src = this.source
      this.creds = (typeof src === 'function' ? src() : Promise.resolve(src)).then((c) => {
        this.scrubber.addCredentials(c)
        return c
      })
    }
    return this.creds
  }

  /** The header for a request needing `scopes`, once a challenge is known. */
  async authorization(scopes: string[]): Promise<{header: string; kind: 'basic' | 'bearer'} | undefined> {
    const ch = this.challenge
    if (!ch) return undefined
    if (ch.scheme === 'basic') {
      const header = basicAuthorization(await this.credentials())
      return header ? {header, kind: 'basic'} : undefined
    }
    const t = await this.bearer.token(ch, scopes, () => this.credentials())
    return {header: `Bearer ${t}`, kind: 'bearer'}
  }

  /**
   * Adopt a 401 challenge. Returns true when retrying the request with new auth makes sense.
   * A Bearer challenge's own `scope` is added to `scopes` (in place: the retry asks for it too).
   */
  async acceptChallenge(ch: Challenge, scopes: string[], sent: SentAuth): Promise<boolean> {
    if (ch.scheme === 'basic') {
      if (sent === 'basic') return false // our credentials were rejected
      if (!basicAuthorization(await this.credentials())) return false
      this.challenge = ch
      return true
    }
    const want = [...scopes]
    if (ch.scope) for (const s of ch.scope.split(' ')) if (s && !want.includes(s)) want.push(s)
    this.challenge = {scheme: 'bearer', realm: ch.realm, service: ch.service}
    this.bearer.forget(this.challenge, want)
    if (want.length !== scopes.length) scopes.splice(0, scopes.length, ...want)
    return true
  }
}
