/**
 * `npm run bench`: airlock against skopeo, docker save/load and openssl on the same workload,
 * side by side in the same run; median of BENCH_RUNS (default 5) runs each. Writes
 * docs/benchmarks.md and prints it. Expects the testbed to be up (scripts/bench.sh does that)
 * and dist/ to be built.
 *
 * Env: BENCH_RUNS (5), BENCH_VERIFY_RUNS (7), BENCH_DOCKER_RUNS (5), BENCH_MB (main workload,
 * unique MB; default 1200), BENCH_SCALE_MB (scaling base; default 300), BENCH_SKIP_SCALING=1,
 * BENCH_SKIP_DOCKER=1, BENCH_TEXT_MB (the compressible workload for install → docker, MB of
 * layer content before gzip; default 400; 0 skips it), BENCH_BASELINE (a built checkout of another
 * airlock, e.g. the previous commit: each airlock measurement of the main workload then also runs
 * that build, in turn with this one, and a section compares the two).
 *
 * airlock and its reference run alternately (a, b, a, b, …), so that a drift of the machine
 * (page cache, dockerd's storage, another tenant) weighs on both sides alike. The short
 * verify/openssl runs and the noisy docker loads get more runs than the rest.
 */
import {spawn, execFileSync} from 'node:child_process'
import {mkdtemp, readFile, rm, stat, writeFile, mkdir} from 'node:fs/promises'
import {createReadStream} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {generateWorkload, Workload} from './workload.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const RUN_JS = path.join(ROOT, 'bin', 'run.js')
const SRC = process.env.TESTBED_REGISTRY_OPEN ?? '127.0.0.1:5301'
const DST = process.env.TESTBED_REGISTRY_TARGET ?? '127.0.0.1:5303'
const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const VERIFY_RUNS = Number(process.env.BENCH_VERIFY_RUNS ?? Math.max(RUNS, 7))
const DOCKER_RUNS = Number(process.env.BENCH_DOCKER_RUNS ?? Math.max(RUNS, 5))
const MAIN_MB = Number(process.env.BENCH_MB ?? 1200)
const SCALE_MB = Number(process.env.BENCH_SCALE_MB ?? 300)
const TEXT_MB = Number(process.env.BENCH_TEXT_MB ?? 400)
const STAMP = Date.now().toString(36)
const BASELINE_JS = process.env.BENCH_BASELINE ? path.join(path.resolve(process.env.BENCH_BASELINE), 'bin', 'run.js') : undefined

const log = (s: string) => process.stderr.write(`${s}\n`)

interface Sample {wall: number; rssMB?: number}

/** Run one command under /usr/bin/time; wall clock measured here, peak RSS from time(1). */
async function timed(cmd: string, args: string[], opts: {cpu?: string; env?: Record<string, string>} = {}): Promise<Sample> {
  const rssFile = path.join(os.tmpdir(), `airlock-bench-rss-${process.pid}`)
  const argv = ['-f', '%M', '-o', rssFile, ...(opts.cpu ? ['taskset', '-c', opts.cpu] : []), cmd, ...args]
  const t0 = process.hrtime.bigint()
  const {code, stderr} = await new Promise<{code: number | null; stderr: string}>((resolve, reject) => {
    const p = spawn('/usr/bin/time', argv, {stdio: ['ignore', 'ignore', 'pipe'], env: {...process.env, ...opts.env}})
    let err = ''
    p.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000) })
    p.on('error', reject)
    p.on('close', (c) => resolve({code: c, stderr: err}))
  })
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${code}):\n${stderr}`)
  const rss = Number((await readFile(rssFile, 'utf8')).trim().split('\n').pop())
  await rm(rssFile, {force: true})
  return {wall, rssMB: rss / 1024}
}

async function sh(cmd: string, args: string[], quiet = true): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const p = spawn(cmd, args, {stdio: ['ignore', quiet ? 'ignore' : 'inherit', 'pipe']})
    let err = ''
    p.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000) })
    p.on('error', reject)
    p.on('close', (c) => (c === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} failed (${c}): ${err}`))))
  })
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

type Measured = {wall: number; rssMB: number; walls: number[]}

interface Side {
  label: string
  fn: (i: number) => Promise<Sample>
  /** Not timed, before each run. */
  before?: (i: number) => Promise<void>
}

/** Every measurement, for the "All runs" section of docs/benchmarks.md. */
const allRuns: {label: string; walls: number[]}[] = []
/** The workload being measured, named in "All runs". */
let workloadName = ''

function summarize(label: string, walls: number[], rss: number): Measured {
  const r = {wall: median(walls), rssMB: rss, walls}
  allRuns.push({label: workloadName ? `${workloadName}: ${label}` : label, walls})
  log(`    ${label}: ${r.wall.toFixed(2)} s (runs ${walls.map((w) => w.toFixed(2)).join(', ')}), peak RSS ${rss.toFixed(0)} MB`)
  return r
}

/** Run `fn` RUNS times (after `before` each time, not timed); median wall and max peak RSS. */
async function measure(label: string, fn: (i: number) => Promise<Sample>, before?: (i: number) => Promise<void>): Promise<Measured> {
  const walls: number[] = []
  let rss = 0
  for (let i = 0; i < RUNS; i++) {
    if (before) await before(i)
    const s = await fn(i)
    walls.push(s.wall)
    rss = Math.max(rss, s.rssMB ?? 0)
  }
  return summarize(label, walls, rss)
}

/** Run the sides in turn, `runs` times each: a, b, (c,) a, b, (c,) … */
async function measureAlternating(runs: number, sides: Side[]): Promise<Measured[]> {
  const walls: number[][] = sides.map(() => [])
  const rss = sides.map(() => 0)
  for (let i = 0; i < runs; i++) {
    for (const [k, side] of sides.entries()) {
      if (side.before) await side.before(i)
      const s = await side.fn(i)
      walls[k].push(s.wall)
      rss[k] = Math.max(rss[k], s.rssMB ?? 0)
    }
  }
  return sides.map((side, k) => summarize(side.label, walls[k], rss[k]))
}

const airlock = (args: string[], cpu?: string, env?: Record<string, string>, runJs = RUN_JS) => timed('node', [runJs, ...args], {cpu, env})

/** The baseline build's side of a measurement (BENCH_BASELINE), run in turn with the others. */
function baselineSide(side: Side, args: (i: number) => string[], cpu?: string): Side[] {
  if (!BASELINE_JS) return []
  return [{label: `${side.label} [baseline]`, fn: (i) => airlock(args(i), cpu, undefined, BASELINE_JS), before: side.before}]
}

/** Sides measured in turn: airlock, its reference, and the baseline build when there is one. */
async function measureWithBaseline(runs: number, a: Side, b: Side, args: (i: number) => string[], cpu?: string): Promise<[Measured, Measured, Measured | undefined]> {
  const [x, y, z] = await measureAlternating(runs, [a, b, ...baselineSide(a, args, cpu)])
  return [x, y, z]
}

async function warm(file: string): Promise<void> {
  for await (const _ of createReadStream(file, {highWaterMark: 4 * 1024 * 1024})) { /* read into page cache */ }
}

/** skopeo remembers where it saw blobs (and then mounts instead of uploading): start each timed run without that memory. */
async function forgetSkopeoBlobCache(): Promise<void> {
  for (const p of ['/var/lib/containers/cache/blob-info-cache-v1.boltdb', path.join(os.homedir(), '.local/share/containers/cache/blob-info-cache-v1.boltdb')]) await rm(p, {force: true})
}

const docker = (args: string[]) => sh('docker', args)
const dockerRmi = async (refs: string[]) => { await sh('docker', ['rmi', '-f', ...refs]).catch(() => {}) }

interface Result {
  w: Workload
  archiveBytes: number
  create: Measured
  skopeoOci: Measured
  dockerSave?: Measured
  verify: Measured
  verify1: Measured
  openssl: Measured
  openssl1: Measured
  installReg: Measured
  skopeoReg: Measured
  installDocker?: Measured
  dockerLoad?: Measured
  /** The same airlock measurements with the BENCH_BASELINE build. */
  baseline: Partial<Record<'create' | 'verify' | 'verify1' | 'installReg' | 'installDocker', Measured>>
}

/** The work dir of a workload and its bundle.yaml (all its images); names it in "All runs". */
async function workloadDir(work: string, w: Workload): Promise<{dir: string; spec: string; archive: string}> {
  workloadName = w.name
  const dir = path.join(work, w.name)
  await mkdir(dir, {recursive: true})
  const spec = path.join(dir, 'bundle.yaml')
  await writeFile(spec, [
    'apiVersion: airlock/v1', 'kind: Bundle', 'metadata:', `  name: bench-${w.name}`, '  version: 1.0.0',
    'platforms: [linux/amd64]', 'images:', ...w.refs.map((r) => `  - ${r}`), 'registries:', `  ${SRC}:`, '    insecure: true', '',
  ].join('\n'))
  return {dir, spec, archive: path.join(dir, 'bundle.tar')}
}

async function benchWorkload(work: string, w: Workload, key: {priv: string; pub: string}, withDocker: boolean): Promise<Result> {
  log(`  measuring ${w.name} (${(w.uniqueBytes / 1e6).toFixed(0)} MB unique)`)
  const {dir, spec, archive} = await workloadDir(work, w)
  const ociDir = path.join(dir, 'skopeo-oci')

  // 1. create vs skopeo → one OCI dir vs docker save
  // The default create: no blob cache, each pulled blob written once into the archive.
  const baseline: Result['baseline'] = {}
  const createArgs = () => ['create', spec, '-o', archive, '--sign-key', key.priv]
  const [create, skopeoOci, baseCreate] = await measureWithBaseline(RUNS, {
    label: 'airlock create',
    fn: () => airlock(['create', spec, '-o', archive, '--sign-key', key.priv]),
    before: async () => { await rm(archive, {force: true}) },
  }, {
    label: 'skopeo copy → OCI dir',
    fn: async () => {
      const t0 = process.hrtime.bigint()
      for (const [i, ref] of w.refs.entries()) await sh('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${ociDir}:app-${i}`])
      return {wall: Number(process.hrtime.bigint() - t0) / 1e9}
    },
    before: async () => { await rm(ociDir, {recursive: true, force: true}); await forgetSkopeoBlobCache() },
  }, createArgs)
  baseline.create = baseCreate
  let dockerSave: Result['dockerSave']
  const saveTar = path.join(dir, 'docker-save.tar')
  if (withDocker) {
    log('    pulling the images into dockerd (not timed)')
    for (const ref of w.refs) await docker(['pull', '-q', ref])
    dockerSave = await measure('docker save', () => timed('docker', ['save', '-o', saveTar, ...w.refs]), () => rm(saveTar, {force: true}))
    saveTarSizes.set(w.name, (await stat(saveTar)).size)
  }

  // 2. verify vs openssl (page cache warmed first for both)
  const archiveBytes = (await stat(archive)).size
  await warm(archive)
  const verifyArgs = () => ['verify', archive, '--key', key.pub]
  const [verify, openssl, baseVerify] = await measureWithBaseline(VERIFY_RUNS,
    {label: 'airlock verify', fn: () => airlock(verifyArgs()), before: () => warm(archive)},
    {label: 'openssl dgst -sha256', fn: () => timed('openssl', ['dgst', '-sha256', archive]), before: () => warm(archive)}, verifyArgs)
  const [verify1, openssl1, baseVerify1] = await measureWithBaseline(VERIFY_RUNS,
    {label: 'airlock verify (1 core)', fn: () => airlock(verifyArgs(), '0'), before: () => warm(archive)},
    {label: 'openssl dgst -sha256 (1 core)', fn: () => timed('openssl', ['dgst', '-sha256', archive], {cpu: '0'}), before: () => warm(archive)}, verifyArgs, '0')
  baseline.verify = baseVerify
  baseline.verify1 = baseVerify1

  // 3. install → registry vs skopeo → registry (fresh prefixes)
  // The baseline's runs go to prefixes of their own (a fresh prefix per run on each side).
  const installRegArgs = (tag: string) => (i: number) => ['install', archive, '--key', key.pub, '--to', `registry://${DST}/${tag}-${w.name}-${STAMP}-${i}`]
  const [installReg, skopeoReg, baseInstallReg] = await measureWithBaseline(RUNS, {
    label: 'airlock install → registry',
    fn: (i) => airlock(installRegArgs('al')(i)),
    before: () => warm(archive),
  }, {
    label: 'skopeo copy → registry',
    fn: async (i) => {
      const t0 = process.hrtime.bigint()
      for (const [j, ref] of w.refs.entries()) {
        const repo = ref.slice(ref.indexOf('/') + 1)
        await sh('skopeo', ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${ociDir}:app-${j}`, `docker://${DST}/sk-${w.name}-${STAMP}-${i}/${repo}`])
      }
      return {wall: Number(process.hrtime.bigint() - t0) / 1e9}
    },
    before: forgetSkopeoBlobCache,
  }, installRegArgs('base'))
  baseline.installReg = baseInstallReg

  // 4. install → docker vs docker load (images removed before each run)
  let installDocker: Result['installDocker']
  let dockerLoad: Result['dockerLoad']
  if (withDocker) {
    const dockerArgs = () => ['install', archive, '--key', key.pub, '--to', 'docker']
    ;[installDocker, dockerLoad, baseline.installDocker] = await measureWithBaseline(DOCKER_RUNS,
      {label: 'airlock install → docker', fn: () => airlock(dockerArgs()), before: async () => { await dockerRmi(w.refs); await warm(archive) }},
      {label: 'docker load', fn: () => timed('docker', ['load', '-q', '-i', saveTar]), before: async () => { await dockerRmi(w.refs); await warm(saveTar) }}, dockerArgs)
    await dockerRmi(w.refs)
  }
  await rm(dir, {recursive: true, force: true})
  return {w, archiveBytes, create, skopeoOci, dockerSave, verify, verify1, openssl, openssl1, installReg, skopeoReg, installDocker, dockerLoad, baseline}
}

interface TextDockerResult {
  w: Workload
  archiveBytes: number
  saveTarBytes: number
  inflated: Measured
  asIs: Measured
  load: Measured
}

/**
 * install → docker on layers that gzip compresses (text, ~2.5:1): airlock as it is (it sends such
 * layers inflated), airlock with AIRLOCK_DOCKER_LAYERS=gzip, and docker load of a docker save tar.
 */
async function benchTextDocker(work: string, key: {priv: string; pub: string}): Promise<TextDockerResult> {
  const w = await generateWorkload(path.join(work, 'layouts-text'), `t${TEXT_MB}`, TEXT_MB, SRC, log, {text: true})
  await rm(path.join(work, 'layouts-text'), {recursive: true, force: true})
  log(`  measuring ${w.name} (text layers, install → docker only)`)
  const {dir, spec, archive} = await workloadDir(work, w)
  await sh('node', [RUN_JS, 'create', spec, '-o', archive, '--sign-key', key.priv])
  const saveTar = path.join(dir, 'docker-save.tar')
  log('    pulling the images into dockerd and saving them (not timed)')
  for (const ref of w.refs) await docker(['pull', '-q', ref])
  await docker(['save', '-o', saveTar, ...w.refs])
  const install = (env?: Record<string, string>) => () => airlock(['install', archive, '--key', key.pub, '--to', 'docker'], undefined, env)
  const clean = (file: string) => async () => { await dockerRmi(w.refs); await warm(file) }
  const [inflated, asIs, load] = await measureAlternating(DOCKER_RUNS, [
    {label: 'airlock install → docker', fn: install(), before: clean(archive)},
    {label: 'airlock install → docker (AIRLOCK_DOCKER_LAYERS=gzip)', fn: install({AIRLOCK_DOCKER_LAYERS: 'gzip'}), before: clean(archive)},
    {label: 'docker load', fn: () => timed('docker', ['load', '-q', '-i', saveTar]), before: clean(saveTar)},
  ])
  await dockerRmi(w.refs)
  const result = {w, archiveBytes: (await stat(archive)).size, saveTarBytes: (await stat(saveTar)).size, inflated, asIs, load}
  await rm(dir, {recursive: true, force: true})
  return result
}

function versions() {
  const v = (cmd: string, args: string[]) => { try { return execFileSync(cmd, args, {encoding: 'utf8'}).trim().split('\n')[0] } catch { return 'n/a' } }
  const cpu = (/model name\s*:\s*(.+)/.exec(execFileSync('cat', ['/proc/cpuinfo'], {encoding: 'utf8'}))?.[1] ?? 'unknown').trim()
  return {
    cores: os.availableParallelism(), cpu, ramGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version, skopeo: v('skopeo', ['--version']), openssl: v('openssl', ['version']),
    docker: v('docker', ['version', '--format', 'client {{.Client.Version}}, engine {{.Server.Version}} ({{.Server.Os}})']),
    dockerDriver: v('docker', ['info', '--format', '{{.Driver}}']),
  }
}

const f2 = (x: number) => x.toFixed(2)
const MBs = (bytes: number, s: number) => (bytes / 1e6 / s).toFixed(0)
const verdict = (ok: boolean) => (ok ? 'met' : '**missed**')

async function main() {
  const work = await mkdtemp(path.join(os.tmpdir(), 'airlock-bench-'))
  const withDocker = process.env.BENCH_SKIP_DOCKER !== '1'
  const out: string[] = []
  try {
    log(`bench: work dir ${work}, ${RUNS} runs per measurement`)
    const key = {priv: path.join(work, 'bench.key.asc'), pub: path.join(work, 'bench.pub.asc')}
    await sh('node', [RUN_JS, 'key', 'generate', '--name', 'airlock bench', '--out', path.join(work, 'bench')])

    const help = await measure('airlock --help', () => airlock(['--help']))

    log('generating workloads')
    const layouts = path.join(work, 'layouts')
    const main = await generateWorkload(path.join(layouts, 'main'), `w${MAIN_MB}`, MAIN_MB, SRC, log)
    const scaling = process.env.BENCH_SKIP_SCALING === '1' ? [] : [SCALE_MB, SCALE_MB * 2, SCALE_MB * 4]
    const scaleWl: Workload[] = []
    for (const mb of scaling) {
      if (mb === MAIN_MB) { scaleWl.push(main); continue }
      scaleWl.push(await generateWorkload(path.join(layouts, `s${mb}`), `w${mb}`, mb, SRC, log))
    }
    await rm(layouts, {recursive: true, force: true})

    const r = await benchWorkload(work, main, key, withDocker)
    const scaled: Result[] = []
    for (const w of scaleWl) scaled.push(w === main ? r : await benchWorkload(work, w, key, false))
    const textRun = withDocker && TEXT_MB > 0 ? await benchTextDocker(work, key) : undefined

    const m = versions()
    const u = r.w.uniqueBytes
    out.push('# Benchmarks', '',
      `Generated by \`npm run bench\` (scripts/bench.sh, scripts/bench/*.ts) on ${new Date().toISOString().slice(0, 10)}. Re-run it to refresh this page.`, '',
      `- Machine: ${m.cores} cores, ${m.cpu}, ${m.ramGiB} GiB RAM`,
      `- Versions: node ${m.node}; ${m.skopeo}; docker ${m.docker}, storage driver ${m.dockerDriver}; ${m.openssl}`,
      `- Workload \`${r.w.name}\`: ${r.w.refs.length} images (common 2-layer base, 2 shared runtime layers, 1 unique app layer each; random data, gzip -1), ${r.w.blobs} unique blobs, ${(u / 1e6).toFixed(0)} MB unique compressed, ${(r.w.referencedBytes / 1e6).toFixed(0)} MB referenced. Source: the testbed registry ${SRC} (loopback, plain HTTP); registry target ${DST}.`,
      `- Each time is the median of ${RUNS} runs (verify and openssl: ${VERIFY_RUNS}; install → docker and docker load: ${DOCKER_RUNS}), wall clock including process start-up; airlock and its reference run alternately. Every run is listed at the end. Page cache: files are read once before each verify/install run (\`drop_caches\` is not available in a container), so both sides read from memory. \`airlock create\` runs with its defaults (no blob cache, so nothing is reused between runs). Peak RSS from \`/usr/bin/time\` ("Maximum resident set size").`,
      '', '## Side by side', '',
      '| operation | airlock | reference | ratio (airlock / reference) | target | |',
      '| --- | ---: | ---: | ---: | --- | --- |')
    const row = (op: string, a: number, refName: string, b: number, target: string, ok: boolean) =>
      out.push(`| ${op} | ${f2(a)} s | ${refName}: ${f2(b)} s | ${f2(a / b)}× | ${target} | ${verdict(ok)} |`)
    row('create (registry → signed archive)', r.create.wall, '`skopeo copy` each image → one OCI dir', r.skopeoOci.wall, '≤ 0.8×', r.create.wall / r.skopeoOci.wall <= 0.8)
    if (r.dockerSave) out.push(`| | | \`docker save\` of the same images (already in dockerd): ${f2(r.dockerSave.wall)} s | ${f2(r.create.wall / r.dockerSave.wall)}× | (information) | |`)
    const tput = (s: number) => `${MBs(r.archiveBytes, s)} MB/s`
    out.push(`| verify, 2 cores | ${f2(r.verify.wall)} s (${tput(r.verify.wall)}) | \`openssl dgst -sha256\` of the archive: ${f2(r.openssl.wall)} s (${tput(r.openssl.wall)}) | throughput ${f2(r.openssl.wall / r.verify.wall)}× openssl's | ≥ 1.5× | ${verdict(r.openssl.wall / r.verify.wall >= 1.5)} |`)
    out.push(`| verify, 1 core (\`taskset -c 0\`) | ${f2(r.verify1.wall)} s (${tput(r.verify1.wall)}) | openssl, 1 core: ${f2(r.openssl1.wall)} s (${tput(r.openssl1.wall)}) | throughput ${f2(r.openssl1.wall / r.verify1.wall)}× openssl's | ≥ 0.9× | ${verdict(r.openssl1.wall / r.verify1.wall >= 0.9)} |`)
    row('install → registry', r.installReg.wall, '`skopeo copy` OCI dir → registry, each image', r.skopeoReg.wall, '≤ 1.0×', r.installReg.wall / r.skopeoReg.wall <= 1.0)
    if (r.installDocker && r.dockerLoad) row('install → docker', r.installDocker.wall, '`docker load -i` of the `docker save` tar', r.dockerLoad.wall, '≤ 1.1×', r.installDocker.wall / r.dockerLoad.wall <= 1.1)
    out.push(`| \`airlock --help\` | ${f2(help.wall)} s | | | ≤ 0.4 s | ${verdict(help.wall <= 0.4)} |`)
    out.push('', '## Memory and size', '', '| airlock command | peak RSS | target | |', '| --- | ---: | --- | --- |')
    const rssRow = (n: string, x: {rssMB: number}) => out.push(`| ${n} | ${x.rssMB.toFixed(0)} MB | ≤ 200 MB | ${verdict(x.rssMB <= 200)} |`)
    rssRow('create', r.create)
    rssRow('verify', r.verify)
    rssRow('install → registry', r.installReg)
    if (r.installDocker) rssRow('install → docker', r.installDocker)
    const over = (r.archiveBytes - u) / u * 100
    out.push('', `Archive: ${r.archiveBytes} bytes for ${u} bytes of unique blobs: +${over.toFixed(3)}% (target ≤ +0.5%: ${verdict(over <= 0.5)}). ` +
      `A non-deduplicating copy would move ${r.w.referencedBytes} bytes (${f2(r.w.referencedBytes / u)}× the archive).`)
    if (saveTarSizes.has(r.w.name)) out.push('', `For comparison, the \`docker save\` tar of the same images is ${saveTarSizes.get(r.w.name)} bytes.`)
    if (textRun) {
      const t = textRun
      out.push('', '## install → docker with compressible layers', '',
        `The main workload's layers are random (gzip stores them), so gzip costs dockerd little there. Workload \`${t.w.name}\` has the same shape with text-like layers (words, gzip -6): ` +
        `the archive is ${(t.archiveBytes / 1e6).toFixed(0)} MB, the \`docker save\` tar ${(t.saveTarBytes / 1e6).toFixed(0)} MB (${f2(t.saveTarBytes / t.archiveBytes)}:1). ` +
        `airlock sends such layers to dockerd's classic store inflated, so that dockerd has no gzip to undo after the upload. Median of ${DOCKER_RUNS} runs, the three in turn.`, '',
        '| | time | vs `docker load` |', '| --- | ---: | ---: |',
        `| \`airlock install --to docker\` | ${f2(t.inflated.wall)} s | ${f2(t.inflated.wall / t.load.wall)}× |`,
        `| the same with \`AIRLOCK_DOCKER_LAYERS=gzip\` (layers as they are) | ${f2(t.asIs.wall)} s | ${f2(t.asIs.wall / t.load.wall)}× |`,
        `| \`docker load -i\` of the \`docker save\` tar | ${f2(t.load.wall)} s | 1.00× |`)
    }
    if (scaled.length > 0) {
      out.push('', '## Scaling', '', `The same workload shape at 1×, 2× and 4× the size (${SCALE_MB} MB unique at 1×). Time should grow linearly, memory stay flat.`, '',
        '| size (unique) | create | skopeo → OCI | verify | openssl | install → registry | skopeo → registry | RSS create / verify / install |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
      for (const s of scaled) {
        out.push(`| ${(s.w.uniqueBytes / 1e6).toFixed(0)} MB | ${f2(s.create.wall)} s | ${f2(s.skopeoOci.wall)} s | ${f2(s.verify.wall)} s | ${f2(s.openssl.wall)} s | ${f2(s.installReg.wall)} s | ${f2(s.skopeoReg.wall)} s | ${s.create.rssMB.toFixed(0)} / ${s.verify.rssMB.toFixed(0)} / ${s.installReg.rssMB.toFixed(0)} MB |`)
      }
      const a = scaled[0]
      const b = scaled.at(-1)!
      const k = b.w.uniqueBytes / a.w.uniqueBytes
      out.push('', `From 1× to ${k.toFixed(1)}× the bytes: create took ${f2(b.create.wall / a.create.wall)}× as long, verify ${f2(b.verify.wall / a.verify.wall)}×, install → registry ${f2(b.installReg.wall / a.installReg.wall)}× (fixed start-up costs make small runs relatively slower); peak RSS changed from ${a.create.rssMB.toFixed(0)}/${a.verify.rssMB.toFixed(0)}/${a.installReg.rssMB.toFixed(0)} MB to ${b.create.rssMB.toFixed(0)}/${b.verify.rssMB.toFixed(0)}/${b.installReg.rssMB.toFixed(0)} MB.`)
    }
    baselineSection(out, r)
    out.push('', '## All runs', '', 'Wall clock of every run, in the order they ran (seconds).', '')
    for (const {label, walls} of allRuns) out.push(`- ${label}: ${walls.map(f2).join(', ')}`)
    const text = `${out.join('\n')}\n`
    await writeFile(path.join(ROOT, 'docs', 'benchmarks.md'), text)
    process.stdout.write(text)
  } finally {
    await rm(work, {recursive: true, force: true})
  }
}

const saveTarSizes = new Map<string, number>()

/** The baseline checkout named by its commit (no machine path in the page), else its folder name. */
function baselineLabel(dir: string): string {
  try {
    return `commit ${execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], {encoding: 'utf8'}).trim()}`
  } catch {
    return path.basename(dir)
  }
}

/** BENCH_BASELINE: this build against the baseline build, each ratio with the reference's ratio for both. */
function baselineSection(out: string[], r: Result): void {
  if (!BASELINE_JS) return
  out.push('', '## Against the baseline build', '',
    `\`BENCH_BASELINE\` (${baselineLabel(path.dirname(path.dirname(BASELINE_JS)))}): the same airlock measurements with that build, run in turn with this one and the reference in the same rounds. ` +
    'A ratio within ±5% of 1.00 is within noise.', '',
    '| operation | this build | baseline | this / baseline | ratio to reference, this build | baseline |', '| --- | ---: | ---: | ---: | ---: | ---: |')
  const rows: [string, Measured, Measured | undefined, Measured | undefined][] = [
    ['create', r.create, r.baseline.create, r.skopeoOci],
    ['verify, 2 cores', r.verify, r.baseline.verify, r.openssl],
    ['verify, 1 core', r.verify1, r.baseline.verify1, r.openssl1],
    ['install → registry', r.installReg, r.baseline.installReg, r.skopeoReg],
    ...(r.installDocker ? [['install → docker', r.installDocker, r.baseline.installDocker, r.dockerLoad] as [string, Measured, Measured | undefined, Measured | undefined]] : []),
  ]
  for (const [op, now, base, ref] of rows) {
    if (!base || !ref) continue
    out.push(`| ${op} | ${f2(now.wall)} s | ${f2(base.wall)} s | ${f2(now.wall / base.wall)}× | ${f2(now.wall / ref.wall)}× | ${f2(base.wall / ref.wall)}× |`)
  }
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`)
  process.exit(1)
})
