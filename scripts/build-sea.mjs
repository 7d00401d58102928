#!/usr/bin/env node
// The single executable (Node's single-executable application): this machine's node binary with
// the whole CLI injected, so `./airlock verify …` runs where there is no Node. Steps:
//   1. esbuild bundles the CLI (ESM TypeScript, oclif, openpgp, …) into ONE CommonJS script, the
//      only thing a single executable runs (no node_modules, no import of files): entry
//      src/cli/sea-main.ts, with every command of src/commands/ imported for oclif's explicit
//      command strategy; and each hash worker (src/blob/*-thread.ts) into a script of its own,
//      embedded as an asset (a worker thread starts from a file: sea-main.ts writes it out).
//   2. `node --experimental-sea-config` turns script and assets into a blob,
//   3. postject injects the blob into a copy of the node binary.
// Modules that read the package's own files at run time (relative to import.meta.url) are
// replaced by the bundle with their content: src/version.ts, src/spec/schema-file.ts.
// Needs the devDependencies (esbuild, postject); reads only local files (downloads nothing).
// Usage: node scripts/build-sea.mjs [OUT_DIR]   (writes OUT_DIR/airlock-VERSION-PLATFORM; default
// dist-package; `npm run package` runs it after the tarball form, scripts/package.sh)
import {spawnSync} from 'node:child_process'
import {chmod, copyFile, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** The fuse postject flips so that node runs the injected blob (Node's documented value). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
const THREADS = ['hash-thread', 'range-hash-thread']

/** `src/commands/key/generate.ts` -> `key:generate`, as oclif names a command by its file. */
async function commandFiles(root) {
  const dir = path.join(root, 'src', 'commands')
  const files = (await readdir(dir, {recursive: true})).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).sort()
  return files.map((f) => ({id: f.slice(0, -'.ts'.length).split(path.sep).join(':'), file: path.join(dir, f)}))
}

/** The generated entry: the command classes by id, package.json's fields, the assets' reader. */
function entrySource(root, pkg, commands) {
  const imports = commands.map((c, i) => `import C${i} from ${JSON.stringify(c.file)}`)
  const table = commands.map((c, i) => `  ${JSON.stringify(c.id)}: C${i},`)
  const pjson = {name: pkg.name, version: pkg.version, description: pkg.description, oclif: pkg.oclif}
  return [
    `import {getAsset} from 'node:sea'`,
    `import {runSea} from ${JSON.stringify(path.join(root, 'src', 'cli', 'sea-main.ts'))}`,
    ...imports,
    `const commands = {`, ...table, `}`,
    `runSea({pjson: ${JSON.stringify(pjson)}, commands}, getAsset).catch((error) => {`,
    `  process.stderr.write(String(error?.stack ?? error) + '\\n')`,
    `  process.exitCode = 1`,
    `})`,
  ].join('\n')
}

/** esbuild plugin: whole modules replaced by build-time content (see the header); each must be used. */
function substitutes(root, pkg, schemaText) {
  const byFile = new Map([
    [path.join(root, 'src', 'version.ts'), `export const TOOL_VERSION: string = ${JSON.stringify(pkg.version)}\n`],
    [path.join(root, 'src', 'spec', 'schema-file.ts'), [
      `import path from 'node:path'`,
      `/** No package root in a single executable: where a schemas/ folder beside it would be (for init's reference). */`,
      `export const SCHEMA_PATH: string = path.join(path.dirname(process.execPath), 'schemas', 'bundle.schema.json')`,
      `export function readSchemaText(): string { return ${JSON.stringify(schemaText)} }`,
      '',
    ].join('\n')],
  ])
  const used = new Set()
  return {
    name: 'airlock-substitutes',
    setup(build) {
      build.onLoad({filter: /\.ts$/}, (args) => {
        if (!byFile.has(args.path)) return undefined
        used.add(args.path)
        return {contents: byFile.get(args.path), loader: 'ts'}
      })
      build.onEnd((result) => {
        const unused = [...byFile.keys()].filter((f) => !used.has(f))
        if (result.errors.length === 0 && build.initialOptions.stdin && unused.length > 0) {
          return {errors: [{text: `not bundled, so not replaced (renamed? moved?): ${unused.join(', ')}`}]}
        }
      })
    },
  }
}

/** Options common to the main script and the worker scripts. */
function bundleOptions(plugins) {
  return {
    bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'warning', legalComments: 'none',
    // Class and function names stay (error names, oclif's command classes); whitespace and syntax shrink.
    minifyWhitespace: true, minifySyntax: true, keepNames: true,
    // import.meta does not exist in CommonJS. A path INSIDE the executable stands for it, as if
    // the file were a folder: a path built from it never exists on disk (nothing is read from
    // beside the executable) and is never the program run (a module's "am I the main script"
    // test stays false). The modules that read files relative to it are substituted.
    define: {'import.meta.url': '__airlockMetaUrl'},
    banner: {js: [
      'const __airlockMetaUrl = require("node:url").pathToFileURL(require("node:path").join(__filename, "embedded", "module.js")).href;',
      // A single executable's require() loads built-in modules only, and warns on stderr the first
      // time it is asked for another. Optional modules (oclif's own package.json, ts-node, pnpapi)
      // are asked for in a try: they get the "not found" the code expects, and no warning.
      'var require = ((builtin) => Object.assign((id) => { if (builtin("node:module").isBuiltin(id)) return builtin(id);',
      '  throw Object.assign(new Error(`Cannot find module \'${id}\' (a single executable has no module files)`), {code: "MODULE_NOT_FOUND"}) }, builtin))(require);',
    ].join('\n')},
    // A single executable's main script has no import(): an import() of a built-in module
    // (node:sea) becomes a require(); those of bundled modules are resolved by esbuild anyway.
    supported: {'dynamic-import': false},
    // oclif reads tsconfig.json with TypeScript only for a plugin run from its .ts sources: never here.
    external: ['typescript'],
    plugins,
  }
}

/**
 * Run postject without its ELF parser's notes about the node binary's note sections ("Can't find
 * string offset for section name '.note…'", dozens of lines, harmless): anything else it warns is shown.
 */
async function quietly(fn) {
  const warn = console.warn
  console.warn = (...args) => {
    if (!/^warning: Can't find string offset for section name '\.note/.test(String(args[0]))) warn(...args)
  }
  try {
    return await fn()
  } finally {
    console.warn = warn
  }
}

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, {encoding: 'utf8', ...opts})
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}`)
}

/**
 * Build the single executable into `outDir` as airlock-VERSION-PLATFORM (written as .partial,
 * then renamed). `node` is the binary to inject into and to make the blob with (one Node version).
 */
export async function buildSea({outDir, root: given = repo, node = process.execPath} = {}) {
  const started = Date.now()
  const root = await realpath(given) // esbuild names modules by their real path
  const {build} = await import('esbuild')
  const {inject} = (await import('postject')).default
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'))
  const target = path.join(outDir ?? path.join(root, 'dist-package'), `airlock-${pkg.version}-${process.platform}-${process.arch}`)
  if (!(await readFile(node)).includes(SEA_FUSE)) throw new Error(`${node} has no single-executable support (its build lacks ${SEA_FUSE})`)
  // oclif loads plugins and hooks from files, which the executable does not have: say so.
  for (const key of ['plugins', 'hooks']) {
    if (pkg.oclif?.[key] && Object.keys(pkg.oclif[key]).length > 0) process.stderr.write(`warning: package.json oclif.${key} (${Object.keys(pkg.oclif[key]).join(', ')}) are not in the single executable: it holds the commands of src/commands/ only\n`)
  }
  const schemaText = await readFile(path.join(root, 'schemas', 'bundle.schema.json'), 'utf8')
  const stage = await mkdtemp(path.join(os.tmpdir(), 'airlock-sea-build-'))
  try {
    const plugins = [substitutes(root, pkg, schemaText)]
    await build({
      ...bundleOptions(plugins), outfile: path.join(stage, 'airlock.cjs'),
      stdin: {contents: entrySource(root, pkg, await commandFiles(root)), resolveDir: root, sourcefile: 'sea-entry.ts', loader: 'ts'},
    })
    await build({
      ...bundleOptions(plugins), outdir: path.join(stage, 'threads'), outExtension: {'.js': '.cjs'},
      entryPoints: THREADS.map((t) => path.join(root, 'src', 'blob', `${t}.ts`)),
    })
    const config = {
      main: path.join(stage, 'airlock.cjs'), output: path.join(stage, 'sea-prep.blob'),
      disableExperimentalSEAWarning: true, useCodeCache: true,
      assets: Object.fromEntries(THREADS.map((t) => [`${t}.cjs`, path.join(stage, 'threads', `${t}.cjs`)])),
    }
    await writeFile(path.join(stage, 'sea-config.json'), JSON.stringify(config, null, 2))
    run(node, ['--experimental-sea-config', path.join(stage, 'sea-config.json')], {cwd: stage})

    await mkdir(path.dirname(target), {recursive: true})
    const partial = `${target}.partial`
    try {
      await copyFile(node, partial)
      await chmod(partial, 0o755)
      const blob = await readFile(config.output)
      await quietly(() => inject(partial, 'NODE_SEA_BLOB', blob, {sentinelFuse: SEA_FUSE}))
      await rename(partial, target)
    } catch (error) {
      await rm(partial, {force: true})
      throw error
    }
    return {file: target, bytes: (await stat(target)).size, ms: Date.now() - started}
  } finally {
    await rm(stage, {recursive: true, force: true})
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await buildSea({outDir: process.argv[2] && path.resolve(process.argv[2])})
  // (from the build: `npm run package` builds first)
  const {describeLibc, libcRequirement} = await import('../dist/package/executable.js')
  process.stdout.write(`wrote ${r.file} (${(r.bytes / 1024 / 1024).toFixed(1)} MiB, Node ${process.version} ${process.platform}-${process.arch}) in ${(r.ms / 1000).toFixed(1)} s\n`)
  process.stdout.write(`  on the target (no Node needed; ${describeLibc(await libcRequirement(r.file))}): ./${path.basename(r.file)} --help\n`)
}
