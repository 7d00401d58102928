import {InputError} from '../core/errors.js'

import type {EnvName} from './env.js'

/**
 * A flag declared once as data: the oclif command builds its flag from it (src/cli/flags.ts), and
 * the `verify` fast path (src/cli/fast.ts) parses a command line with it (parseArgv), so the two
 * cannot disagree on names, short names, which flags take a value, or which may repeat. This
 * module does not load oclif (the fast path exists to avoid that).
 */
export interface FlagSpec {
  description: string
  /** One-letter short name (`-k FILE`). */
  char?: string
  /** Takes a value (`--key FILE`, `--key=FILE`); else boolean. */
  value: boolean
  /** May be given more than once, one value each (`--key A --key B ARCHIVE`). */
  multiple?: boolean
  /** Environment variable oclif reads when the flag is not given (see src/cli/env.ts). */
  env?: EnvName
  hidden?: boolean
  /** Declared by oclif itself or by every command (--json, --debug): not built here. */
  builtin?: boolean
}

export type FlagTable = Readonly<Record<string, FlagSpec>>

/**
 * Trusted keys: `--key` (repeatable, one value each so that the archive after it stays the
 * argument), else AIRLOCK_TRUSTED_KEYS, read by trustedKeyPaths() and not by the parser (which
 * would hand a multiple flag its environment value as one string).
 */
export const TRUSTED_KEYS = {
  char: 'k', value: true, multiple: true,
  description: 'trusted public key file or directory of keys (repeatable); a key inside the archive is never trusted [env: AIRLOCK_TRUSTED_KEYS, comma-separated]',
} as const satisfies FlagSpec

export const ALLOW_UNSIGNED = {
  value: false,
  description: 'accept an archive without a signature (integrity is still checked)',
} as const satisfies FlagSpec

/** Passed down to readArchive as `hashThreads`. */
export const HASH_THREADS = {
  value: true, env: 'AIRLOCK_HASH_THREADS', hidden: true,
  description: 'threads hashing the archive, the main one included (default: the cores, at most 8)',
} as const satisfies FlagSpec

/** verify, install, serve: how many distinct trusted keys must have signed (co-signed bundles). */
export const THRESHOLD = {
  value: true,
  description: 'at least N distinct trusted keys must have signed the bundle (default 1; add signatures with `airlock sign`)',
} as const satisfies FlagSpec

/** `--threshold N` as a number (undefined: not given, 1); InputError for anything but a whole number from 1. */
export function thresholdOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^[1-9]\d{0,2}$/.test(value)) throw new InputError('cli.bad_threshold', `--threshold ${JSON.stringify(value)}: expected a whole number of keys, 1 or more`)
  return Number(value)
}

/** verify: upstream cosign keys; every image of the bundle must carry a signature by one of them. */
export const COSIGN_KEY = {
  value: true, multiple: true,
  description: 'cosign public key (PEM) that must have signed every image of the bundle: its carried upstream signatures are checked again, from the archive alone (repeatable; any one key suffices)',
} as const satisfies FlagSpec

/** Every command's --debug (AirlockCommand.baseFlags); AIRLOCK_DEBUG is read by the error printer. */
export const DEBUG = {
  value: false, hidden: true, builtin: true,
  description: 'print the stack trace of an error too [env: AIRLOCK_DEBUG]',
} as const satisfies FlagSpec

/**
 * Every command's --quiet (AirlockCommand.baseFlags): no progress and no human output on success;
 * errors and warnings still go to stderr, and --json output is printed as always.
 */
export const QUIET = {
  char: 'q', value: false, builtin: true,
  description: 'print nothing but errors and warnings (--json output is still printed)',
} as const satisfies FlagSpec

/** `verify`: every flag it accepts. Its oclif flags are built from this table. */
export const VERIFY_FLAGS = {
  key: TRUSTED_KEYS,
  'allow-unsigned': ALLOW_UNSIGNED,
  threshold: THRESHOLD,
  'cosign-key': COSIGN_KEY,
  'hash-threads': HASH_THREADS,
  'no-fast': {value: false, hidden: true, description: 'run through the full CLI, never the fast path [env: AIRLOCK_NO_FAST, read by bin/run.js]'},
  json: {value: false, builtin: true, description: 'Format output as json.'},
  debug: DEBUG,
  quiet: QUIET,
} as const satisfies FlagTable

export interface ParsedArgv {
  /** Positional arguments, in order. */
  args: string[]
  /** Values of the flags given (booleans: `['']` per use). */
  flags: Map<string, string[]>
  /**
   * Whether the command line is in the plain form: no `--`, values apart from their flag and
   * not looking like flags, no flag repeated unless it may be.
   */
  plain: boolean
}

const isPlainValue = (v: string): boolean => v !== '' && !v.startsWith('-')

/**
 * A command line read with `table`, or undefined when it holds an unknown flag or a flag without
 * its value (the CLI framework then parses and reports it). Follows oclif: `--` ends the flags,
 * `-kFILE` is `-k FILE`; such forms are accepted but make the line not `plain`.
 */
export function parseArgv(table: FlagTable, argv: string[]): ParsedArgv | undefined {
  const byChar = new Map(Object.entries(table).filter(([, s]) => s.char).map(([name, s]) => [`-${s.char}`, name]))
  const out: ParsedArgv = {args: [], flags: new Map(), plain: true}
  const add = (name: string, value: string) => {
    const spec = table[name]
    const seen = out.flags.get(name) ?? []
    if (seen.length > 0 && !spec.multiple) out.plain = false
    if (spec.value && !isPlainValue(value)) out.plain = false
    out.flags.set(name, [...seen, value])
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--') {
      out.args.push(...argv.slice(i + 1))
      out.plain = false
      break
    }
    if (!a.startsWith('-') || a === '-') {
      // `-` (standard input) is a plain argument; an empty one is not.
      if (!isPlainValue(a) && a !== '-') out.plain = false
      out.args.push(a)
      continue
    }
    const eq = a.indexOf('=')
    const long = a.startsWith('--') ? (eq === -1 ? a.slice(2) : a.slice(2, eq)) : undefined
    const name = long ?? byChar.get(a.slice(0, 2))
    const spec = name === undefined ? undefined : table[name]
    if (name === undefined || spec === undefined) return undefined
    if (!spec.value) {
      if (long === undefined ? a.length > 2 : eq !== -1) return undefined // -jx, --json=x
      add(name, '')
    } else if (long !== undefined && eq !== -1) {
      add(name, a.slice(eq + 1))
    } else if (long === undefined && a.length > 2) {
      add(name, a.slice(2))
      out.plain = false
    } else {
      if (i + 1 >= argv.length) return undefined
      add(name, argv[++i])
    }
  }
  return out
}
