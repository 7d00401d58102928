/**
 * Every environment variable airlock reads, in one table. Each is tied to a declared flag (hidden
 * when it is internal), so that `--help` shows `[env: NAME]`; the commands read them (through the
 * flag's `env`, or here) and pass the values down as options: library code never reads
 * process.env. README's "Environment" table lists the same rows (test/unit/cli/env.test.ts).
 */
import {hashThreads} from '../blob/hash-pool.js'

/** How the variable's value reaches airlock. */
export type EnvReadBy =
  /** oclif, as the `env` of the flag: the flag wins, then the variable, then the flag's default. */
  | 'flag'
  /** the command, when the flag is not given (a list, or the default of a path flag). */
  | 'command'
  /** oclif itself (not through a flag's `env`). */
  | 'oclif'
  /** bin/run.js, before any command line is parsed. */
  | 'launcher'
  /** still read where it is used, in a file being reworked (see its note): to move to an option. */
  | 'library'

export interface EnvVar {
  name: string
  /** The flag it gives a value or a default to (`json`: every command's --json; '': none, see CI). */
  flag: string
  /** Commands that declare the flag (`*`: every command). */
  commands: readonly string[]
  readBy: EnvReadBy
  /** The flag is hidden from --help: a testing or tuning knob, or a secret. */
  hidden?: boolean
  description: string
}

const ARCHIVE_READERS = ['verify', 'install', 'serve'] as const

export const ENVIRONMENT = [
  {name: 'AIRLOCK_TRUSTED_KEYS', flag: 'key', commands: [...ARCHIVE_READERS, 'mirror-config', 'diff'], readBy: 'command', description: 'trusted public key files or directories, comma-separated, when no --key is given'},
  {name: 'AIRLOCK_KEY_PASSPHRASE', flag: 'key-passphrase', commands: ['create', 'key generate', 'sign'], readBy: 'flag', hidden: true, description: 'passphrase of the signing key (hidden flag: a command line is visible to other users, set the variable)'},
  {name: 'AIRLOCK_KEYS_DIR', flag: 'keys-dir', commands: ['create'], readBy: 'flag', description: 'private keys looked up by signing.fingerprint (default $XDG_CONFIG_HOME/airlock/keys)'},
  {name: 'XDG_CONFIG_HOME', flag: 'keys-dir', commands: ['create'], readBy: 'command', description: 'default keys directory: $XDG_CONFIG_HOME/airlock/keys (else ~/.config/airlock/keys)'},
  {name: 'AIRLOCK_CACHE_DIR', flag: 'cache-dir', commands: ['create'], readBy: 'flag', description: 'blob cache directory (default: no cache)'},
  {name: 'SOURCE_DATE_EPOCH', flag: 'source-date-epoch', commands: ['create'], readBy: 'flag', description: 'seconds since 1970 for every timestamp in the archive (reproducible builds)'},
  {name: 'AIRLOCK_STATE_FILE', flag: 'state-file', commands: ['install'], readBy: 'flag', description: 'record of installed bundle versions (rollback protection)'},
  {name: 'XDG_STATE_HOME', flag: 'state-file', commands: ['install'], readBy: 'command', description: 'default state file: $XDG_STATE_HOME/airlock/installed.json (else ~/.local/state/airlock/installed.json)'},
  {name: 'DOCKER_HOST', flag: 'docker-host', commands: ['install'], readBy: 'flag', description: 'Docker Engine socket for --to docker, unix:///PATH (default unix:///var/run/docker.sock)'},
  {name: 'CONTAINERD_ADDRESS', flag: 'containerd-address', commands: ['install'], readBy: 'flag', description: 'containerd socket for --to containerd (default: ctr\'s)'},
  {name: 'CONTAINERD_NAMESPACE', flag: 'namespace', commands: ['install'], readBy: 'flag', description: 'containerd namespace for --to containerd (default "default")'},
  {name: 'DOCKER_CONFIG', flag: 'registry-config', commands: ['create', 'install'], readBy: 'library', description: 'directory of the docker config.json with registry credentials (default ~/.docker), when no --registry-config is given'},
  {name: 'AIRLOCK_RETRIES', flag: 'retries', commands: ['create', 'install'], readBy: 'flag', hidden: true, description: 'retries per registry request'},
  {name: 'AIRLOCK_RETRY_BASE_DELAY_MS', flag: 'retry-base-delay-ms', commands: ['create', 'install'], readBy: 'flag', hidden: true, description: 'first retry delay in ms (doubles per attempt, with jitter)'},
  {name: 'AIRLOCK_HASH_THREADS', flag: 'hash-threads', commands: ARCHIVE_READERS, readBy: 'flag', hidden: true, description: 'threads hashing an archive, the main one included (default: the cores, at most 8)'},
  {name: 'AIRLOCK_DOCKER_LAYERS', flag: 'docker-layers', commands: ['install'], readBy: 'flag', hidden: true, description: '`gzip`: send gzip layers to docker as they are, not inflated'},
  {name: 'AIRLOCK_PODMAN', flag: 'podman', commands: ['install'], readBy: 'flag', hidden: true, description: 'podman executable for --to podman (default podman on PATH)'},
  {name: 'AIRLOCK_CTR', flag: 'ctr', commands: ['install'], readBy: 'flag', hidden: true, description: 'ctr executable for --to containerd (default ctr on PATH)'},
  {name: 'AIRLOCK_CONTENT_TYPE', flag: 'json', commands: ['*'], readBy: 'oclif', description: '`json`: the same as --json'},
  {name: 'AIRLOCK_DEBUG', flag: 'debug', commands: ['*'], readBy: 'command', hidden: true, description: 'any value: print the stack trace of an error too'},
  {name: 'AIRLOCK_NO_FAST', flag: 'no-fast', commands: ['verify'], readBy: 'launcher', hidden: true, description: 'any value: run verify through the full CLI, never its fast path'},
  {name: 'CI', flag: '', commands: ['create', 'key generate', 'sign'], readBy: 'command', description: 'any value: never ask for a passphrase on the terminal'},
  {name: 'NO_COLOR', flag: '', commands: ['*'], readBy: 'oclif', description: 'any value: no color (help, --json on a terminal); there is none either when the output is not a terminal'},
] as const satisfies readonly EnvVar[]

export type EnvName = (typeof ENVIRONMENT)[number]['name']

/** The variables of the table, read once from `env` (the commands pass process.env). */
export type Environment = Readonly<Partial<Record<EnvName, string>>>

export function environment(env: NodeJS.ProcessEnv = process.env): Environment {
  const out: Partial<Record<EnvName, string>> = {}
  for (const v of ENVIRONMENT) if (env[v.name] !== undefined) out[v.name] = env[v.name]
  return out
}

/** `--hash-threads` / AIRLOCK_HASH_THREADS as a number, or undefined (not given, or not a number: the default). */
export function hashThreadsOf(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) ? hashThreads(Number(value)) : undefined
}

/** The row of `name` (for a flag's help text). */
export function envVar(name: EnvName): EnvVar {
  return ENVIRONMENT.find((v) => v.name === name)!
}
