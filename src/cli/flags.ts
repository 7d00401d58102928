import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {ALLOW_UNSIGNED, FlagSpec, FlagTable, HASH_THREADS, THRESHOLD, TRUSTED_KEYS} from './flag-table.js'

export {thresholdOf} from './flag-table.js'

/**
 * oclif flags built from the declarative specs of src/cli/flag-table.ts, and the flags and
 * argument shared by the commands that read an archive (verify, install, serve, inspect), defined
 * once so their names, environment variable and help stay the same everywhere.
 */

export type MultipleValueFlag = ReturnType<typeof multipleFlag>
export type ValueFlag = ReturnType<typeof valueFlag>
export type SwitchFlag = ReturnType<typeof booleanFlag>

/** The oclif flag type of a spec. */
export type OclifFlagOf<S extends FlagSpec> = S extends {value: true; multiple: true} ? MultipleValueFlag : S extends {value: true} ? ValueFlag : SwitchFlag

/** The oclif flag of one spec. */
export function oclifFlag<S extends FlagSpec>(spec: S): OclifFlagOf<S> {
  if (!spec.value) return booleanFlag(spec) as OclifFlagOf<S>
  return (spec.multiple ? multipleFlag(spec) : valueFlag(spec)) as OclifFlagOf<S>
}

function common(spec: FlagSpec) {
  return {
    description: spec.description,
    ...(spec.char ? {char: spec.char as 'k'} : {}),
    ...(spec.env ? {env: spec.env} : {}),
    ...(spec.hidden ? {hidden: true} : {}),
  }
}

function booleanFlag(spec: FlagSpec) {
  return Flags.boolean({...common(spec), default: false})
}

function valueFlag(spec: FlagSpec) {
  return Flags.string(common(spec))
}

function multipleFlag(spec: FlagSpec) {
  return Flags.string({...common(spec), multiple: true, multipleNonGreedy: true})
}

/** The oclif flags of a table, by name. */
type OclifFlags<T extends FlagTable> = {[K in keyof T as T[K] extends {builtin: true} ? never : K]: OclifFlagOf<T[K]>}

/** The oclif flags of a table (the builtin ones are declared by oclif or AirlockCommand). */
export function oclifFlags<T extends FlagTable>(table: T): OclifFlags<T> {
  const out: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(table)) if (!spec.builtin) out[name] = oclifFlag(spec)
  return out as OclifFlags<T>
}

export const trustedKeysFlag = oclifFlag(TRUSTED_KEYS)

export const allowUnsignedFlag = oclifFlag(ALLOW_UNSIGNED)

export const hashThreadsFlag = oclifFlag(HASH_THREADS)

export const thresholdFlag = oclifFlag(THRESHOLD)

/** A repeatable key-file flag, one value per `--key` (see TRUSTED_KEYS). */
export function keysFlag(description: string) {
  return oclifFlag({...TRUSTED_KEYS, description})
}

/**
 * The archive argument. `stdin: false` for serve, which reads its file again for every pull. oclif
 * would otherwise read standard input as text when the argument is missing: never (ignoreStdin).
 */
export function archiveArg(verb: string, opts: {stdin?: boolean} = {}) {
  const stdin = opts.stdin === false ? '' : '; - for standard input'
  return Args.string({description: `archive to ${verb} (a split archive: its first part, or a glob of its parts${stdin})`, required: true, ignoreStdin: true})
}
