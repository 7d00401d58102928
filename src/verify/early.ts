import {EarlyHashing, startEarlyHashing} from '../transports/archive/speculate.js'

/**
 * `airlock verify ARCHIVE`: the command line is looked at before the CLI framework loads, so
 * that the other cores start hashing the archive's blobs some 0.1–0.2 s earlier. This is pure
 * speculation (see startEarlyHashing): the value returned is passed to readArchive (option
 * `early`), which takes it over only for exactly the same list of parts and uses a digest only
 * where the verified metadata puts a blob at exactly that range.
 */

/** Flags of `verify` that take a value (everything else it accepts is boolean). */
const VALUE_FLAGS = new Set(['--key', '-k'])
const BOOLEAN_FLAGS = new Set(['--allow-unsigned', '--json'])

/**
 * The archive argument of `verify ARGV…`, when it can be told without the parser. --key takes
 * one value per flag (`--key A --key B ARCHIVE`), as the command declares it.
 */
export function archiveArgument(argv: string[]): string | undefined {
  let archive: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--') return archive === undefined && argv.length === i + 2 ? argv[i + 1] : undefined
    if (a.startsWith('-')) {
      if (VALUE_FLAGS.has(a)) i++
      else if (!(VALUE_FLAGS.has(a.split('=')[0]) || /^-k./.test(a) || BOOLEAN_FLAGS.has(a))) return undefined // --help, an unknown flag: leave it all to the CLI
    } else {
      if (archive !== undefined) return undefined
      archive = a
    }
  }
  return archive
}

/** Start hashing the archive that `verify ARGV…` names, if it can be told; the value goes to readArchive. */
export function startEarly(argv: string[]): EarlyHashing | undefined {
  const archive = archiveArgument(argv)
  return archive === undefined ? undefined : startEarlyHashing(archive)
}

export {startEarlyHashing as startEarlyAt} from '../transports/archive/speculate.js'
export type {EarlyHashing} from '../transports/archive/speculate.js'
