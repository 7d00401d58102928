/** HTTP Basic auth (RFC 7617): the `Authorization` value for a username and password. */
import type {Credentials} from './credentials.js'

/** `Basic base64(user:password)`, or undefined when `c` has no username and password. */
export function basicAuthorization(c: Credentials | undefined): string | undefined {
  if (!c?.username || c.password === undefined) return undefined
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`
}
