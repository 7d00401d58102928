/**
 * Turn the file-system errors a person can act on (disk full, quota, read-only mount, no
 * permission) into one clear AirlockError with a stable code, instead of a raw Node error.
 * Anything else is returned unchanged.
 */
import {AirlockError, type ErrorCode} from './errors.js'

const FS_CODES: Record<string, {code: ErrorCode; text: string}> = {
  ENOSPC: {code: 'fs.no_space', text: 'no space left on the device'},
  EDQUOT: {code: 'fs.quota_exceeded', text: 'disk quota exceeded'},
  EROFS: {code: 'fs.read_only', text: 'read-only file system'},
  EACCES: {code: 'fs.permission_denied', text: 'permission denied'},
  EPERM: {code: 'fs.permission_denied', text: 'operation not permitted'},
}

/** True for the errno codes `fsError` maps. */
export function isMappedFsError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' && code in FS_CODES
}

/**
 * `what` says what was being written, e.g. "archive /out/x.tar" or "blob cache /root/.cache/airlock".
 * Returns an AirlockError (exit 1) for ENOSPC/EDQUOT/EROFS/EACCES/EPERM, else `e` itself.
 */
export function fsError(e: unknown, what: string): unknown {
  if (e instanceof AirlockError) return e
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  const m = typeof code === 'string' ? FS_CODES[code] : undefined
  if (!m) return e
  return new AirlockError(m.code, `cannot write ${what}: ${m.text} (${code})`, {cause: e})
}
