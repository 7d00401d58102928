/** Running the built CLI (`node bin/run.js`, which uses dist/: `npm run build` first) from tests. */
import {spawnSync} from 'node:child_process'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const BIN = path.join(ROOT, 'bin', 'run.js')

export interface CliResult {
  /** Exit code (null when killed, e.g. by the timeout). */
  code: number | null
  stdout: string
  stderr: string
}

/** Run `airlock ARGS` to completion. `env` is the child's whole environment (default: ours). */
export function runCli(args: string[], opts: {cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number} = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, encoding: 'utf8', timeout: opts.timeout ?? 300_000})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}
