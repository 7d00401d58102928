import {AirlockError} from '../core/errors.js'

/**
 * How an AirlockError reaches a person: under --json the object below on stdout; otherwise
 * `error: MESSAGE` and one indented line per detail on stderr, with no stack trace unless
 * `debug` (--debug / AIRLOCK_DEBUG). Used by every command (src/cli/base.ts) and by the fast path.
 */
export function errorJson(err: AirlockError): {error: {code: string; message: string; details: string[]}} {
  return {error: {code: err.code, message: err.message, details: err.details}}
}

export function writeErrorText(err: AirlockError, opts: {debug: boolean}): void {
  const lines = [`error: ${err.message}`, ...err.details.map((d) => `  ${d}`)]
  process.stderr.write(lines.join('\n') + '\n')
  if (opts.debug && err.stack) process.stderr.write(err.stack + '\n')
}
