/**
 * The errors the registry transport reports: an unreachable registry (after retries), and an
 * unexpected HTTP status turned into a clear message (server text already scrubbed of secrets).
 */
import {AirlockError, VerifyError} from '../../../core/errors.js'
import {NetworkError} from './http.js'
import {Retryable} from './retry.js'

/** A network failure as a Retryable whose final error says the registry is unreachable. */
export function networkRetryable(host: string, e: NetworkError): Retryable {
  return new Retryable(e.code, new AirlockError('registry.unreachable', `registry ${host} unreachable: ${e.code}`, {cause: e}))
}

/** NetworkError → Retryable; anything else unchanged. */
export function toRetryable(host: string, e: unknown): unknown {
  return e instanceof NetworkError ? networkRetryable(host, e) : e
}

/**
 * The error for a status the request did not expect. `what` names the object ("manifest
 * host/repo:tag"); `text` is the registry's (scrubbed) error text, '' when none.
 */
export function statusError(req: {method: string; what: string}, status: number, text: string, host: string): AirlockError {
  const subject = req.what.replace(/^\w+ /, '')
  switch (status) {
    case 404:
      return new AirlockError('registry.not_found', `${text || `${req.what.split(' ')[0]} unknown`}: ${subject}`)
    case 403:
      return new AirlockError('registry.denied', `${req.what}: access denied by ${host}${text ? ` (${text})` : ''}`)
    case 400:
      if (/digest/i.test(text)) return new VerifyError('registry.digest_mismatch', `${req.what}: ${text}`, {entry: subject})
      return new AirlockError('registry.rejected', `${req.what}: ${host} rejected the request (${text || 'HTTP 400'})`)
    case 405:
      return new AirlockError('registry.unsupported', `${req.what}: ${host} does not allow ${req.method} (${text || 'HTTP 405'})`)
    default:
      return new AirlockError('registry.http_error', `${req.what}: unexpected HTTP ${status} from ${host}${text ? ` (${text})` : ''}`)
  }
}

/** A 401 that new credentials cannot fix: rejected credentials, or none configured. */
export function unauthorizedError(what: string, host: string, haveCredentials: boolean, text: string): AirlockError {
  return new AirlockError(
    'registry.unauthorized',
    haveCredentials
      ? `${what}: credentials for ${host} were rejected (401${text ? `: ${text}` : ''})`
      : `${what}: ${host} requires authentication and no credentials are configured (bundle.yaml registries.${host}.auth, --registry-config or docker login)`,
  )
}

/** HTTP 5xx or 429: worth retrying; the final error names the status and the server's text. */
export function serverStatusRetryable(what: string, host: string, status: number, text: string, retryAfterMs: number | undefined): Retryable {
  const code = status === 429 ? 'registry.rate_limited' : 'registry.server_error'
  return new Retryable(
    `HTTP ${status}`,
    new AirlockError(code, `${what}: ${host} answered HTTP ${status}${text ? ` (${text})` : ''}`),
    retryAfterMs,
  )
}
