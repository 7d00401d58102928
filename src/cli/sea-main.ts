/**
 * The entry of the single executable (Node's single-executable application, built by
 * scripts/build-sea.mjs): the whole CLI bundled into one CommonJS script that runs inside a copy of
 * the node binary, with no node_modules and no dist/ beside it. What the normal entry (bin/run.js)
 * finds on disk comes from elsewhere here:
 *
 * - the command classes: oclif's explicit command strategy, with the classes the build imported
 *   (every file of src/commands/) instead of a module oclif would import from disk;
 * - package.json (name, version, the `oclif` section): embedded by the build;
 * - the hash worker scripts: SEA assets, written once per process to a private temporary
 *   directory (a worker thread starts from a file) and removed at exit.
 */
import {mkdirSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import type {Command} from '@oclif/core/command'
import {Config, Plugin} from '@oclif/core/config'
import {execute} from '@oclif/core/execute'
import type {PJSON} from '@oclif/core/interfaces'

import {ThreadModule, useThreadScripts} from '../blob/workers.js'
import {AirlockError} from '../core/errors.js'
import {airlockRunning, processUniqueName} from '../core/process.js'
import {environment} from './env.js'
import {runFastVerify} from './fast.js'

/** What the build embeds: package.json's fields oclif reads, and the command classes by id (`key:generate`). */
export interface SeaPackage {
  pjson: PJSON
  commands: Record<string, Command.Class>
}

/** The asset name of a worker script inside the executable (scripts/build-sea.mjs embeds them so). */
function threadAssetName(name: ThreadModule): string {
  return `${name}.cjs`
}

const SCRIPT_DIR = /^airlock-sea\.(\d+)\.[0-9a-f]+$/

/**
 * The script folders (`airlock-sea.PID.RANDOM`) of earlier runs whose process is gone: a process
 * killed by a signal does not run its exit handler. Another user's folder is left alone (it
 * cannot be removed anyway).
 */
export function removeAbandonedScripts(tmp: string): void {
  for (const name of readdirSync(tmp)) {
    const pid = Number(SCRIPT_DIR.exec(name)?.[1])
    if (!pid || pid === process.pid || airlockRunning(pid)) continue
    try {
      rmSync(path.join(tmp, name), {recursive: true, force: true})
    } catch {
      // not ours
    }
  }
}

/**
 * Worker scripts from the executable's assets: written on first use into a new directory only
 * this user can read (mode 0700), so nobody else can swap a script before a thread loads it;
 * removed at exit.
 */
function threadScriptsFromAssets(getAsset: (name: string) => ArrayBuffer): (name: ThreadModule) => string {
  let dir: string | undefined
  const written = new Set<ThreadModule>()
  return (name) => {
    try {
      if (!dir) {
        removeAbandonedScripts(os.tmpdir())
        const made = path.join(os.tmpdir(), processUniqueName('airlock-sea'))
        mkdirSync(made, {mode: 0o700})
        process.once('exit', () => rmSync(made, {recursive: true, force: true}))
        dir = made
      }
      const file = path.join(dir, threadAssetName(name))
      if (!written.has(name)) {
        writeFileSync(file, Buffer.from(getAsset(threadAssetName(name))), {mode: 0o400, flag: 'wx'})
        written.add(name)
      }
      return file
    } catch (error) {
      throw new AirlockError('package.thread_script', `cannot write the script of a hashing thread into ${os.tmpdir()}: ${(error as Error).message}`, {
        cause: error, details: ['the single executable starts its hashing threads from there: set TMPDIR to a writable directory'],
      })
    }
  }
}

/** oclif's configuration for the embedded package: one root plugin whose commands are `pkg.commands`. */
async function embeddedConfig(pkg: SeaPackage): Promise<Config> {
  const root = path.dirname(process.execPath)
  const pjson: PJSON = {...pkg.pjson, oclif: {...pkg.pjson.oclif, commands: {strategy: 'explicit', target: 'embedded', identifier: 'COMMANDS'}}}
  const plugin = new Plugin({root, pjson, isRoot: true, ignoreManifest: true})
  // With the explicit strategy oclif keeps the target module's export in this cache and imports
  // the target only while it is empty: filled here, nothing is imported from disk.
  Object.assign(plugin, {commandCache: pkg.commands})
  await plugin.load()
  return Config.load({root, pjson, plugins: new Map([[plugin.name, plugin]]), userPlugins: false, devPlugins: false})
}

/** Run the command line of this process, as bin/run.js does (the plain `verify` without oclif). */
export async function runSea(pkg: SeaPackage, getAsset: (name: string) => ArrayBuffer): Promise<void> {
  useThreadScripts(threadScriptsFromAssets(getAsset))
  const argv = process.argv.slice(2)
  if (argv[0] === 'verify' && !environment().AIRLOCK_NO_FAST && await runFastVerify(argv.slice(1), {pgpCodeCache: false})) return
  await execute({args: argv, loadOptions: await embeddedConfig(pkg)})
}
