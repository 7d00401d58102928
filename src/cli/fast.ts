import {fileURLToPath} from 'node:url'

import {AirlockError} from '../core/errors.js'
import {trustedKeyPaths} from '../sign/keys.js'
import {usePgpCodeCache} from '../sign/pgp.js'
import {startEarlyAt} from '../verify/early.js'
import {verifyArchive, verifyLines} from '../verify/verify.js'
import {errorJson, writeErrorText} from './report.js'

/**
 * `airlock verify` without the CLI framework. Loading oclif (its config, plugins and command
 * modules) costs some 0.1–0.15 s of CPU, as much as hashing 150 MB; bin/run.js comes here first
 * for `verify`, and only a command line in the plain form below is run here, through the same
 * verifyArchive() and the same output as `src/commands/verify.ts`:
 *
 *   verify ARCHIVE [--key FILE | --key=FILE | -k FILE]... [--allow-unsigned] [--json]
 *
 * Anything else (help, an unknown or repeated flag, `--`, a value that looks like a flag,
 * AIRLOCK_CONTENT_TYPE) is left to oclif, which parses, documents and reports it. A test runs
 * every case both ways (AIRLOCK_NO_FAST=1 turns this path off) and compares the outputs.
 */

export interface FastVerify {
  archive: string
  keys: string[]
  allowUnsigned: boolean
  json: boolean
}

/** The plain `verify` command line (the words after `verify`), or undefined to leave it to oclif. */
export function parseFastVerify(argv: string[], env: NodeJS.ProcessEnv = process.env): FastVerify | undefined {
  if (env.AIRLOCK_CONTENT_TYPE !== undefined) return undefined
  let archive: string | undefined
  const keys: string[] = []
  let allowUnsigned = false
  let json = false
  const plainValue = (v: string | undefined): v is string => v !== undefined && v !== '' && !v.startsWith('-')
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--json') {
      if (json) return undefined
      json = true
    } else if (a === '--allow-unsigned') {
      if (allowUnsigned) return undefined
      allowUnsigned = true
    } else if (a === '--key' || a === '-k') {
      const v = argv[++i]
      if (!plainValue(v)) return undefined
      keys.push(v)
    } else if (a.startsWith('--key=')) {
      const v = a.slice('--key='.length)
      if (!plainValue(v)) return undefined
      keys.push(v)
    } else if (plainValue(a) && archive === undefined) {
      archive = a
    } else {
      return undefined
    }
  }
  if (archive === undefined) return undefined
  return {archive, keys: trustedKeyPaths(keys, env), allowUnsigned, json}
}

/**
 * Run `verify ARGV…` here if it is in the plain form; false (having done nothing) otherwise.
 * Sets process.exitCode as the command would: 0, or the AirlockError's exit code.
 */
export async function runFastVerify(argv: string[]): Promise<boolean> {
  const cmd = parseFastVerify(argv)
  if (!cmd) return false
  const early = startEarlyAt(cmd.archive)
  usePgpCodeCache(fileURLToPath(new URL('../openpgp.v8cache', import.meta.url)))
  try {
    const result = await verifyArchive({archive: cmd.archive, keys: cmd.keys, allowUnsigned: cmd.allowUnsigned, early})
    if (cmd.json) console.log(JSON.stringify(result, null, 2))
    else for (const line of verifyLines(result)) console.log(line)
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
    else writeErrorText(error)
    process.exitCode = error.exitCode
  }
  return true
}
