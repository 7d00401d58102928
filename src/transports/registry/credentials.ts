/**
 * Resolve registry credentials for one host, in this order:
 *   1. bundle.yaml `registries[host].auth: {usernameEnv, passwordEnv}` (env var NAMES; unset → InputError)
 *   2. a docker config.json (explicit path, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json):
 *      `credHelpers[host]`, then `auths[host]` (`auth` base64 user:pass, `username`/`password`,
 *      `identitytoken`), then `credsStore`. Helpers run as `docker-credential-<x> get` with the
 *      server URL on stdin (secrets never in argv). docker.io matches `https://index.docker.io/v1/`.
 * Secrets are never logged nor put into error messages.
 */
import {existsSync, readFileSync, statSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {InputError} from '../../core/errors.js'
import {runCredentialHelper} from './credential-helper.js'
import type {Credentials} from './transport/credentials.js'

export {runCredentialHelper}
export type {Credentials}

export interface EnvAuthConfig {
  usernameEnv: string
  passwordEnv: string
}

export interface ResolveCredentialsOptions {
  /** `registries[host].auth` from bundle.yaml. */
  auth?: EnvAuthConfig
  /** Explicit docker config path (`--registry-config`): a config.json file or a directory holding one. */
  registryConfig?: string
  /** Environment to read (default process.env). */
  env?: NodeJS.ProcessEnv
  /** Home directory (default os.homedir()). */
  homeDir?: string
  /** Timeout for a credential helper, ms (default 30 s). */
  helperTimeoutMs?: number
}

const DOCKER_HUB_KEY = 'https://index.docker.io/v1/'
const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'])

export function isDockerHub(host: string): boolean {
  return DOCKER_HUB_HOSTS.has(host.toLowerCase())
}

/** Normalise a config key or host: strip scheme and path, lowercase; docker hub aliases → docker.io. */
export function normaliseRegistryKey(key: string): string {
  let k = key.trim().toLowerCase()
  k = k.replace(/^[a-z][a-z0-9+.-]*:\/\//, '')
  k = k.split('/')[0]
  return isDockerHub(k) ? 'docker.io' : k
}

interface DockerConfig {
  auths?: Record<string, {auth?: string; username?: string; password?: string; identitytoken?: string}>
  credHelpers?: Record<string, string>
  credsStore?: string
}

/** Which docker config file to read, or undefined when none applies. */
export function dockerConfigPath(o: ResolveCredentialsOptions = {}): string | undefined {
  const env = o.env ?? process.env
  if (o.registryConfig) {
    const p = o.registryConfig
    if (!existsSync(p)) throw new InputError('credentials.config_missing', `registry config not found: ${p}`)
    return statSync(p).isDirectory() ? join(p, 'config.json') : p
  }
  if (env.DOCKER_CONFIG) return join(env.DOCKER_CONFIG, 'config.json')
  return join(o.homeDir ?? homedir(), '.docker', 'config.json')
}

function loadDockerConfig(path: string, explicit: boolean): DockerConfig | undefined {
  if (!existsSync(path)) {
    if (explicit) throw new InputError('credentials.config_missing', `registry config not found: ${path}`)
    return undefined
  }
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object')
    return v
  } catch (e) {
    // Never echo the file's content: it holds secrets.
    throw new InputError('credentials.config_invalid', `cannot parse docker config ${path}: ${(e as Error).name}`)
  }
}

function lookup<T>(map: Record<string, T> | undefined, host: string): T | undefined {
  if (!map) return undefined
  if (Object.hasOwn(map, host)) return map[host]
  const want = normaliseRegistryKey(host)
  if (want === 'docker.io' && Object.hasOwn(map, DOCKER_HUB_KEY)) return map[DOCKER_HUB_KEY]
  for (const [k, v] of Object.entries(map)) if (normaliseRegistryKey(k) === want) return v
  return undefined
}

/** The server URL docker hands to credential helpers for this host. */
export function helperServerURL(host: string): string {
  return isDockerHub(host) ? DOCKER_HUB_KEY : host
}

function fromAuthEntry(e: {auth?: string; username?: string; password?: string; identitytoken?: string}, path: string): Credentials | undefined {
  if (e.identitytoken) return {identityToken: e.identitytoken, ...(e.username ? {username: e.username} : {})}
  if (e.auth) {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8')
    const i = decoded.indexOf(':')
    if (i <= 0) throw new InputError('credentials.config_invalid', `malformed "auth" entry in ${path} (expected base64 of user:password)`)
    return {username: decoded.slice(0, i), password: decoded.slice(i + 1)}
  }
  if (e.username && e.password) return {username: e.username, password: e.password}
  return undefined
}

/** Resolve credentials for `host` ("127.0.0.1:5302", "docker.io", "ghcr.io"), or undefined (anonymous). */
export async function resolveCredentials(host: string, o: ResolveCredentialsOptions = {}): Promise<Credentials | undefined> {
  const env = o.env ?? process.env
  if (o.auth) {
    const {usernameEnv, passwordEnv} = o.auth
    const missing = [usernameEnv, passwordEnv].filter((n) => env[n] === undefined || env[n] === '')
    if (missing.length > 0) {
      throw new InputError(
        'credentials.env_unset',
        `registry ${host}: environment variable${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not set (named in bundle.yaml registries.${host}.auth)`,
      )
    }
    return {username: env[usernameEnv] as string, password: env[passwordEnv] as string}
  }
  const path = dockerConfigPath(o)
  if (!path) return undefined
  const cfg = loadDockerConfig(path, Boolean(o.registryConfig))
  if (!cfg) return undefined
  const helperOpts = {env, timeoutMs: o.helperTimeoutMs}
  const helper = lookup(cfg.credHelpers, host)
  if (helper) {
    const c = await runCredentialHelper(helper, helperServerURL(host), helperOpts)
    if (c) return c
  }
  const entry = lookup(cfg.auths, host)
  if (entry) {
    const c = fromAuthEntry(entry, path)
    if (c) return c
  }
  if (cfg.credsStore && !helper) {
    return runCredentialHelper(cfg.credsStore, helperServerURL(host), helperOpts)
  }
  return undefined
}
