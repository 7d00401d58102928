import type {ErrorCode} from './error-codes.js'

export type {ErrorCode} from './error-codes.js'
/**
 * One error base class for everything airlock reports to a person.
 * `code` is a stable machine-readable identifier (printed in --json output), one of ERROR_CODES;
 * `exitCode` follows the documented convention: 2 = invalid input, 1 = runtime failure,
 * 3 = verification failure (signature, digest, tamper).
 */
export const EXIT = {
  OK: 0,
  RUNTIME: 1,
  INVALID_INPUT: 2,
  VERIFY_FAILED: 3,
} as const

export class AirlockError extends Error {
  readonly code: ErrorCode
  readonly exitCode: number
  /** Extra lines shown under the message (e.g. one per validation problem). */
  readonly details: string[]

  constructor(code: ErrorCode, message: string, opts: {exitCode?: number; details?: string[]; cause?: unknown} = {}) {
    super(message, opts.cause === undefined ? undefined : {cause: opts.cause})
    this.name = 'AirlockError'
    this.code = code
    this.exitCode = opts.exitCode ?? EXIT.RUNTIME
    this.details = opts.details ?? []
  }
}

/** Invalid user input: a bad bundle.yaml, a bad flag value, a missing file. Exit 2. */
export class InputError extends AirlockError {
  constructor(code: ErrorCode, message: string, opts: {details?: string[]; cause?: unknown} = {}) {
    super(code, message, {...opts, exitCode: EXIT.INVALID_INPUT})
    this.name = 'InputError'
  }
}

/** Integrity or authenticity failure: bad signature, wrong digest, hostile archive entry. Exit 3. */
export class VerifyError extends AirlockError {
  /** The archive entry (or image/blob) the failure is about, when known. */
  readonly entry?: string
  constructor(code: ErrorCode, message: string, opts: {entry?: string; details?: string[]; cause?: unknown} = {}) {
    super(code, message, {...opts, exitCode: EXIT.VERIFY_FAILED})
    this.name = 'VerifyError'
    this.entry = opts.entry
  }
}

export function isAirlockError(e: unknown): e is AirlockError {
  return e instanceof AirlockError
}
