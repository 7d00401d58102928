/**
 * Server text in our messages, without secrets: every password, identity token, Basic header
 * value and bearer token a client has seen is replaced by `***` in any message built from what a
 * registry or token service sent back (an error body may echo the request).
 */
import type http from 'node:http'

import type {Credentials} from './credentials.js'
import {readBody} from './http.js'

const MAX_ERROR_BODY = 64 * 1024

/** The secrets one client knows, and the scrubbing of text that might contain them. */
export class SecretScrubber {
  private readonly secrets = new Set<string>()

  add(secret: string): void {
    this.secrets.add(secret)
  }

  /** The password, identity token and the Basic `user:password` encoding of `c`. */
  addCredentials(c: Credentials | undefined): void {
    if (c) for (const s of [c.password, c.identityToken]) if (s) this.secrets.add(s)
    if (c?.username && c.password) this.secrets.add(Buffer.from(`${c.username}:${c.password}`).toString('base64'))
  }

  /** Remove every known secret from a message built from server-provided text. */
  redact(s: string): string {
    let out = s
    for (const secret of this.secrets) if (secret.length >= 4) out = out.split(secret).join('***')
    return out
  }
}

/** The error code/message of a registry error body, capped and redacted ("manifest unknown"). */
export async function serverErrorText(res: http.IncomingMessage, scrubber: SecretScrubber): Promise<string> {
  let buf: Buffer
  try {
    buf = await readBody(res, MAX_ERROR_BODY, () => new Error('too large'))
  } catch {
    return ''
  }
  const s = buf.toString('utf8').trim()
  if (!s) return ''
  try {
    const j = JSON.parse(s) as {errors?: Array<{code?: string; message?: string}>}
    if (Array.isArray(j.errors) && j.errors.length > 0) {
      const e = j.errors[0]
      return scrubber.redact(String(e.message || e.code || '')).slice(0, 300)
    }
  } catch {
    /* not JSON */
  }
  return scrubber.redact(s.replace(/\s+/g, ' ')).slice(0, 200)
}
