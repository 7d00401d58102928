/**
 * How `airlock install` turns its command line and environment into installArchive options:
 * flag > environment variable > default, as src/cli/env.ts declares (no services needed).
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import {afterEach, describe, it} from 'node:test'

import {Parser} from '@oclif/core'

import {environment} from '../../../src/cli/env.js'
import Install, {installOptions} from '../../../src/commands/install.js'
import {silentProgress} from '../../../src/core/progress.js'

const VARS = ['CONTAINERD_NAMESPACE', 'CONTAINERD_ADDRESS', 'DOCKER_HOST', 'AIRLOCK_STATE_FILE', 'XDG_STATE_HOME', 'AIRLOCK_DOCKER_LAYERS', 'AIRLOCK_TRUSTED_KEYS']
const saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]))

/** installOptions() for `install ARGV…` with `env` as the whole environment of those variables (oclif reads process.env). */
async function optionsFor(argv: string[], env: Record<string, string> = {}) {
  for (const v of VARS) delete process.env[v]
  Object.assign(process.env, env)
  const {args, flags} = await Parser.parse(argv, {flags: {...Install.baseFlags, ...Install.flags}, args: Install.args, strict: true})
  return installOptions(args.archive, flags, environment(), silentProgress)
}

describe('install: options from flags and the environment', () => {
  afterEach(() => {
    for (const v of VARS) {
      if (saved[v] === undefined) delete process.env[v]
      else process.env[v] = saved[v]
    }
  })

  it('--namespace: the flag, else CONTAINERD_NAMESPACE, else "default"', async () => {
    assert.equal((await optionsFor(['a.tar', '--to', 'containerd'])).namespace, 'default')
    assert.equal((await optionsFor(['a.tar', '--to', 'containerd'], {CONTAINERD_NAMESPACE: 'k8s.io'})).namespace, 'k8s.io')
    assert.equal((await optionsFor(['a.tar', '--to', 'containerd', '--namespace', 'mine'], {CONTAINERD_NAMESPACE: 'k8s.io'})).namespace, 'mine')
    assert.equal((await optionsFor(['a.tar', '--to', 'containerd'], {CONTAINERD_NAMESPACE: ''})).namespace, 'default', 'an empty variable is not set')
  })

  it('engine sockets and layer mode come from their variables', async () => {
    const o = await optionsFor(['a.tar', '--to', 'docker'], {DOCKER_HOST: 'unix:///tmp/d.sock', CONTAINERD_ADDRESS: '/tmp/c.sock', AIRLOCK_DOCKER_LAYERS: 'gzip'})
    assert.equal(o.dockerHost, 'unix:///tmp/d.sock')
    assert.equal(o.containerdAddress, '/tmp/c.sock')
    assert.equal(o.dockerInflate, false)
    assert.equal((await optionsFor(['a.tar', '--to', 'docker'])).dockerInflate, undefined)
  })

  it('--state-file, else AIRLOCK_STATE_FILE, else $XDG_STATE_HOME/airlock/installed.json', async () => {
    assert.equal((await optionsFor(['a.tar', '--to', 'docker', '--state-file', 's.json'], {AIRLOCK_STATE_FILE: '/x/e.json'})).stateFile, 's.json')
    assert.equal((await optionsFor(['a.tar', '--to', 'docker'], {AIRLOCK_STATE_FILE: '/x/e.json'})).stateFile, '/x/e.json')
    assert.equal((await optionsFor(['a.tar', '--to', 'docker'], {XDG_STATE_HOME: '/x/state'})).stateFile, path.join('/x/state', 'airlock', 'installed.json'))
  })

  it('--key, else AIRLOCK_TRUSTED_KEYS (comma-separated)', async () => {
    assert.deepEqual((await optionsFor(['a.tar', '--to', 'docker'], {AIRLOCK_TRUSTED_KEYS: 'a.asc, b.asc'})).keys, ['a.asc', 'b.asc'])
    assert.deepEqual((await optionsFor(['a.tar', '--to', 'docker', '-k', 'c.asc'], {AIRLOCK_TRUSTED_KEYS: 'a.asc'})).keys, ['c.asc'])
  })
})
