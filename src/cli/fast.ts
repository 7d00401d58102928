import {fileURLToPath} from 'node:url'

import {AirlockError} from '../core/errors.js'
import {trustedKeyPaths} from '../sign/keys.js'
import {usePgpCodeCache} from '../sign/pgp.js'
import {startEarlyHashing, verifyArchive, verifyLines} from '../verify/verify.js'
import {environment, hashThreadsOf} from './env.js'
import {parseArgv, thresholdOf, VERIFY_FLAGS} from './flag-table.js'
import {errorJson, writeErrorText} from './report.js'

/**
 * `airlock verify` without the CLI framework. Loading oclif (its config, plugins and command
 * modules) costs some 0.1–0.15 s of CPU, as much as hashing 150 MB; bin/run.js comes here first
 * for `verify`, and only a command line in the plain form below is run here, through the same
 * verifyArchive() and the same output as `src/commands/verify.ts`:
 *
 *   verify ARCHIVE|- [--key FILE | --key=FILE | -k FILE]... [--allow-unsigned] [--json] [--quiet]
 *
 * The command line is read with the table the oclif command is built from (VERIFY_FLAGS).
 * Anything else (help, an unknown or repeated flag, `--`, `-kFILE`, a value that looks like a
 * flag, AIRLOCK_CONTENT_TYPE, --no-fast) is left to oclif, which parses, documents and reports
 * it. A test runs every case both ways (AIRLOCK_NO_FAST=1 turns this path off) and compares the
 * outputs.
 */

export interface FastVerify {
  archive: string
  keys: string[]
  allowUnsigned: boolean
  json: boolean
  /** --quiet: no report on success (errors still on stderr, --json output as always). */
  quiet: boolean
  debug: boolean
  hashThreads?: number
  threshold?: number
}

/** The plain `verify` command line (the words after `verify`), or undefined to leave it to oclif. */
export function parseFastVerify(argv: string[], env: NodeJS.ProcessEnv = process.env): FastVerify | undefined {
  const vars = environment(env)
  if (vars.AIRLOCK_CONTENT_TYPE !== undefined) return undefined
  const parsed = parseArgv(VERIFY_FLAGS, argv)
  if (!parsed?.plain || parsed.args.length !== 1 || parsed.flags.has('no-fast')) return undefined
  // Upstream signatures are checked by a sink of the streaming pass: the full command runs it.
  if (parsed.flags.has('cosign-key')) return undefined
  // A bad --threshold is reported by the CLI framework's parse, as for any other flag value.
  if (!/^[1-9]\d{0,2}$/.test(parsed.flags.get('threshold')?.[0] ?? '1')) return undefined
  const given = (name: keyof typeof VERIFY_FLAGS) => parsed.flags.has(name)
  // As oclif reads a flag's env: only when the flag is not given, and not empty.
  const hashThreads = parsed.flags.get('hash-threads')?.[0] ?? (vars.AIRLOCK_HASH_THREADS || undefined)
  return {
    archive: parsed.args[0],
    keys: trustedKeyPaths(parsed.flags.get('key'), vars),
    allowUnsigned: given('allow-unsigned'),
    json: given('json'),
    quiet: given('quiet'),
    debug: given('debug') || Boolean(vars.AIRLOCK_DEBUG),
    hashThreads: hashThreadsOf(hashThreads),
    threshold: thresholdOf(parsed.flags.get('threshold')?.[0]),
  }
}

/** The single archive argument of a `verify` command line, as the flag table reads it. */
export function archiveArgument(argv: string[]): string | undefined {
  const parsed = parseArgv(VERIFY_FLAGS, argv)
  return parsed?.args.length === 1 ? parsed.args[0] : undefined
}

/**
 * Run `verify ARGV…` here if it is in the plain form; false (having done nothing) otherwise.
 * Sets process.exitCode as the command would: 0, or the AirlockError's exit code.
 * `pgpCodeCache: false` (the single executable, whose openpgp.js is bundled): no code cache file.
 */
export async function runFastVerify(argv: string[], opts: {pgpCodeCache?: boolean} = {}): Promise<boolean> {
  const cmd = parseFastVerify(argv)
  if (!cmd) return false
  const early = startEarlyHashing(cmd.archive, cmd.hashThreads)
  if (opts.pgpCodeCache !== false) usePgpCodeCache(fileURLToPath(new URL('../openpgp.v8cache', import.meta.url)))
  try {
    const result = await verifyArchive({archive: cmd.archive, keys: cmd.keys, allowUnsigned: cmd.allowUnsigned, hashThreads: cmd.hashThreads, threshold: cmd.threshold, early})
    if (cmd.json) console.log(JSON.stringify(result, null, 2))
    else if (!cmd.quiet) for (const line of verifyLines(result)) console.log(line)
    process.exitCode = 0
  } catch (error) {
    if (!(error instanceof AirlockError)) {
      // A bug, not a user error: keep its stack, exit 1 (as oclif reports it).
      if (cmd.json) console.log(JSON.stringify({error: {message: (error as Error)?.message, name: (error as Error)?.name}}, null, 2))
      else process.stderr.write(`${(error as Error)?.stack ?? String(error)}\n`)
      process.exitCode = 1
      return true
    }
    if (cmd.json) console.log(JSON.stringify(errorJson(error), null, 2))
    else writeErrorText(error, {debug: cmd.debug})
    process.exitCode = error.exitCode
  }
  return true
}
