/** What a registry client authenticates with, and where it gets it (resolved lazily, once). */

export interface Credentials {
  username?: string
  password?: string
  /** An OAuth2 refresh token (docker's `identitytoken`, or a helper answering Username `<token>`). */
  identityToken?: string
}

export type CredentialSource = Credentials | (() => Promise<Credentials | undefined>)
