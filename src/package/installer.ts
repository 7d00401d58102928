/**
 * The self-contained installer: a .tar.gz holding THIS machine's Node runtime (process.execPath),
 * the built CLI (dist/, bin/run.js, package.json, oclif.manifest.json, schemas/) and its production
 * node_modules, plus an `airlock` launcher shell script — so a target without Node can run
 * verify / inspect / install / serve. Nothing is downloaded: everything is copied from here.
 *
 *   tar -xzf airlock-0.1.0-linux-x64.tar.gz && ./airlock-0.1.0-linux-x64/airlock verify …
 */
import {spawn} from 'node:child_process'
import {createWriteStream, existsSync} from 'node:fs'
import {chmod, copyFile, cp, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'
import {fileURLToPath} from 'node:url'
import {createGzip} from 'node:zlib'

import {AirlockError} from '../core/errors.js'

export interface InstallerResult {
  /** the .tar.gz written */
  file: string
  /** top-level directory inside it, e.g. airlock-0.1.0-linux-x64 */
  dirName: string
  /** the launcher inside, relative to where the tarball is unpacked */
  launcher: string
  bytes: number
  nodeVersion: string
  platform: string
}

/** The package root of the running airlock (holds package.json, dist/, bin/). */
export function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
}

export const LAUNCHER = `#!/bin/sh
# airlock launcher: runs airlock on the Node runtime shipped beside it (no Node needed on this machine).
case "$0" in */*) here=\${0%/*} ;; *) here=. ;; esac
exec "$here/bin/node" "$here/bin/run.js" "$@"
`

/** node_modules entries a production install needs: from package-lock.json (not `dev`), else all of node_modules. */
async function productionModules(root: string): Promise<string[] | undefined> {
  const lockFile = path.join(root, 'package-lock.json')
  if (!existsSync(lockFile)) return undefined
  const lock = JSON.parse(await readFile(lockFile, 'utf8')) as {packages?: Record<string, {dev?: boolean; link?: boolean}>}
  if (!lock.packages) return undefined
  return Object.entries(lock.packages)
    .filter(([k, v]) => k.startsWith('node_modules/') && !v.dev && !v.link)
    // nested copies (node_modules/a/node_modules/b) come along with their parent
    .filter(([k]) => !k.slice('node_modules/'.length).includes('/node_modules/'))
    .map(([k]) => k)
}

function run(cmd: string, args: string[], opts: {cwd?: string} = {}): NodeJS.ReadableStream & {done: Promise<void>} {
  const child = spawn(cmd, args, {cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe']})
  let err = ''
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e) => reject(new AirlockError('package.tool', `${cmd}: ${e.message}`)))
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new AirlockError('package.tool', `${cmd} ${args.join(' ')} failed (exit ${code}): ${err.trim()}`))))
  })
  return Object.assign(child.stdout, {done})
}

/**
 * Build the installer tarball into `outDir`. Uses the system `tar` to pack (keeps modes and
 * symlinks) and gzip level 1 (the Node binary dominates; fast matters more than 10 %).
 */
export async function buildInstaller(opts: {outDir: string; root?: string}): Promise<InstallerResult> {
  const root = opts.root ?? packageRoot()
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {version: string}
  for (const need of ['dist', 'bin/run.js', 'oclif.manifest.json', 'node_modules']) {
    if (!existsSync(path.join(root, need))) throw new AirlockError('package.incomplete', `${path.join(root, need)} is missing: run \`npm run build\` (and npm ci) first`)
  }
  const platform = `${process.platform}-${process.arch}`
  const dirName = `airlock-${pkg.version}-${platform}`
  await mkdir(opts.outDir, {recursive: true})
  const stage = await mkdtemp(path.join(os.tmpdir(), 'airlock-package-'))
  try {
    const top = path.join(stage, dirName)
    await mkdir(path.join(top, 'bin'), {recursive: true})
    await copyFile(process.execPath, path.join(top, 'bin', 'node'))
    await chmod(path.join(top, 'bin', 'node'), 0o755)
    await copyFile(path.join(root, 'bin', 'run.js'), path.join(top, 'bin', 'run.js'))
    await chmod(path.join(top, 'bin', 'run.js'), 0o755)
    for (const f of ['package.json', 'oclif.manifest.json', 'LICENSE', 'README.md']) {
      if (existsSync(path.join(root, f))) await copyFile(path.join(root, f), path.join(top, f))
    }
    for (const d of ['dist', 'schemas']) {
      if (existsSync(path.join(root, d))) await cp(path.join(root, d), path.join(top, d), {recursive: true})
    }
    const mods = await productionModules(root)
    if (mods) {
      for (const m of mods) {
        if (existsSync(path.join(root, m))) await cp(path.join(root, m), path.join(top, m), {recursive: true, verbatimSymlinks: true})
      }
    } else {
      await cp(path.join(root, 'node_modules'), path.join(top, 'node_modules'), {recursive: true, verbatimSymlinks: true})
    }
    await writeFile(path.join(top, 'airlock'), LAUNCHER, {mode: 0o755})

    const file = path.join(opts.outDir, `${dirName}.tar.gz`)
    const partial = `${file}.partial`
    const tar = run('tar', ['--owner=0', '--group=0', '--numeric-owner', '-cf', '-', dirName], {cwd: stage})
    await Promise.all([pipeline(tar, createGzip({level: 1}), createWriteStream(partial)), tar.done])
    await rename(partial, file)
    return {file, dirName, launcher: `${dirName}/airlock`, bytes: (await stat(file)).size, nodeVersion: process.version, platform}
  } finally {
    await rm(stage, {recursive: true, force: true})
  }
}

/** `scripts/package.sh`: node dist/package/installer.js [OUT_DIR] */
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = path.resolve(process.argv[2] ?? path.join(packageRoot(), 'dist-package'))
  const started = Date.now()
  buildInstaller({outDir}).then((r) => {
    process.stdout.write(`wrote ${r.file} (${(r.bytes / 1024 / 1024).toFixed(1)} MiB, Node ${r.nodeVersion} ${r.platform}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
    process.stdout.write(`  on the target: tar -xzf ${path.basename(r.file)} && ./${r.launcher} --help\n`)
  }, (error: unknown) => {
    process.stderr.write(`error: ${(error as Error).message}\n`)
    process.exitCode = 1
  })
}
