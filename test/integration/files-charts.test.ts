/**
 * Acceptance of `files:` and `charts:` (helm charts and plain files in the same signed bundle).
 * A loopback HTTPS server with a private CA (made here with openssl) serves a file and a classic
 * Helm repository (index.yaml + chart .tgz built here); a chart in Helm's OCI format is pushed to
 * the open registry. create → verify → install --to dir: gives byte-identical files with their
 * modes and a chart repository whose index.yaml digests match; install --to registry:// gives
 * charts with Helm's media types, byte-identical. A URL that changed since it was pinned is
 * refused under --locked (exit 2); a tampered file blob is refused and nothing appears under dir:.
 */
import assert from 'node:assert/strict'
import {execFile, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import https from 'node:https'
import type {AddressInfo} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {gzipSync} from 'node:zlib'
import {after, before, describe, it} from 'node:test'

import tarStream from 'tar-stream'
import YAML from 'yaml'

import {BIN, runCli, type CliResult} from '../helpers/cli.js'
import {dataOffset} from '../helpers/archive.js'
import {pushContent} from '../helpers/registry-push.js'
import {helmChart} from '../helpers/shapes.js'
import {Testbed, testbed} from '../helpers/testbed.js'

const execFileP = promisify(execFile)
const RUN = `files-${process.pid}${Date.now().toString(36)}`
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

let tb: Testbed
let dir: string
let server: https.Server
let port: number
let archive: string
let create: CliResult
const served = new Map<string, Buffer>()
const requests: string[] = []
const cut = new Set<string>()
const TOOL = Buffer.from('#!/bin/sh\necho installed by airlock\n')
const CONFIG = Buffer.from('key = value\n')
const TREE_A = Buffer.from('a\n')
const TREE_B = Buffer.from([0, 1, 2, 255, 254])
let chartTgz: Record<string, Buffer>
let ociChart: Awaited<ReturnType<typeof helmChart>>

/** The CLI, asynchronously: the HTTPS server it downloads from runs in this process. */
async function airlock(args: string[]): Promise<CliResult> {
  try {
    const {stdout, stderr} = await execFileP(process.execPath, [BIN, ...args], {cwd: dir, env: {...tb.processEnv, AIRLOCK_STATE_FILE: path.join(dir, 'installed.json')}, timeout: 300_000, maxBuffer: 64 * 1024 * 1024})
    return {code: 0, stdout, stderr}
  } catch (error) {
    const e = error as {code?: number; stdout?: string; stderr?: string}
    return {code: typeof e.code === 'number' ? e.code : null, stdout: e.stdout ?? '', stderr: e.stderr ?? ''}
  }
}

async function tgz(files: Record<string, string>): Promise<Buffer> {
  const p = tarStream.pack()
  const chunks: Buffer[] = []
  p.on('data', (c: unknown) => void chunks.push(c as Buffer))
  const done = new Promise<void>((resolve) => p.on('end', () => resolve()))
  for (const [name, text] of Object.entries(files)) p.entry({name, mode: 0o644, mtime: new Date(0)}, text)
  p.finalize()
  await done
  return gzipSync(Buffer.concat(chunks))
}

async function makeCerts(): Promise<{key: Buffer; cert: Buffer}> {
  const f = (n: string) => path.join(dir, n)
  await execFileP('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=airlock-files-test-ca', '-days', '2',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-keyout', f('ca.key'), '-out', f('ca.pem')])
  await execFileP('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('srv.key'), '-out', f('srv.csr')])
  await writeFile(f('srv.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n')
  await execFileP('openssl', ['x509', '-req', '-in', f('srv.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('srv.ext'), '-out', f('srv.pem')])
  return {key: await readFile(f('srv.key')), cert: await readFile(f('srv.pem'))}
}

function chartYaml(version: string): string {
  return `apiVersion: v2\nname: mychart\nversion: ${version}\ndescription: test chart\n`
}

function bundleYaml(): string {
  const host = `127.0.0.1:${port}`
  return `apiVersion: airlock/v1
kind: Bundle
metadata: {name: files-charts, version: 1.0.0}
images:
  - ${tb.images['app-a'].ref}
charts:
  - chart: oci://${tb.registries.open}/${RUN}/shapes-chart
    version: 0.1.0
  - repo: https://${host}/charts
    name: mychart
    version: ^1.2
files:
  - source: https://${host}/files/tool.sh
    dest: bin/tool.sh
    mode: "0755"
  - source: local/config.txt
    dest: etc/config.txt
  - source: local/tree
    dest: share/tree
    mode: "0600"
registries:
  ${host}: {ca: ca.pem}
`
}

before(async () => {
  tb = await testbed()
  dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-files-'))
  const {key, cert} = await makeCerts()
  server = https.createServer({key, cert}, (req, res) => {
    const p = new URL(req.url ?? '/', 'https://x').pathname
    const body = served.get(p)
    if (!body) return void res.writeHead(404).end()
    requests.push(`${p} ${req.headers.range ?? ''}`)
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
    if (range) {
      const from = Number(range[1])
      return void res.writeHead(206, {'Content-Length': body.length - from, 'Content-Range': `bytes ${from}-${body.length - 1}/${body.length}`}).end(body.subarray(from))
    }
    if (p.startsWith('/flaky/') && !cut.has(p)) {
      // The first GET breaks after half of the body: the client must resume with Range.
      cut.add(p)
      res.writeHead(200, {'Content-Length': body.length})
      return void res.write(body.subarray(0, body.length >> 1), () => res.destroy())
    }
    res.writeHead(200, {'Content-Length': body.length}).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as AddressInfo).port
  chartTgz = {}
  for (const v of ['1.2.0', '1.3.0', '2.0.0']) {
    chartTgz[v] = await tgz({'mychart/Chart.yaml': chartYaml(v), 'mychart/values.yaml': 'image:\n  repository: registry.local/mychart/server\n  tag: "9"\n', 'mychart/templates/x.yaml': 'kind: ConfigMap\n'})
    served.set(`/charts/mychart-${v}.tgz`, chartTgz[v])
  }
  served.set('/charts/index.yaml', Buffer.from(YAML.stringify({apiVersion: 'v1', entries: {mychart: ['1.2.0', '1.3.0', '2.0.0'].map((v) => ({name: 'mychart', version: v, digest: sha(chartTgz[v]), urls: [`mychart-${v}.tgz`]}))}})))
  served.set('/files/tool.sh', TOOL)
  await mkdir(path.join(dir, 'local', 'tree', 'sub'), {recursive: true})
  await writeFile(path.join(dir, 'local', 'config.txt'), CONFIG)
  await writeFile(path.join(dir, 'local', 'tree', 'a.txt'), TREE_A)
  await writeFile(path.join(dir, 'local', 'tree', 'sub', 'b.bin'), TREE_B)
  ociChart = await helmChart()
  await pushContent(tb.registries.open, `${RUN}/shapes-chart`, ociChart.content, {'0.1.0': ociChart.manifest.digest})
  const k = runCli(['key', 'generate', '--name', 'Files Test', '--out', path.join(dir, 'release')], {cwd: dir, env: tb.processEnv})
  assert.equal(k.code, 0, k.stderr)
  await writeFile(path.join(dir, 'bundle.yaml'), bundleYaml())
  archive = path.join(dir, 'release.tar')
  create = await airlock(['create', 'bundle.yaml', '--sign-key', 'release.key.asc', '-o', archive])
})

after(async () => {
  server?.close()
  if (dir) await rm(dir, {recursive: true, force: true})
})

function created(): string {
  assert.equal(create.code, 0, `create failed:\n${create.stdout}${create.stderr}`)
  return archive
}

describe('files and charts: create → verify → install', {timeout: 600_000}, () => {
  it('create pins the URL and the chart range in the lock file and warns about uncarried images in values.yaml', async () => {
    created()
    const out = create.stdout + create.stderr
    assert.match(out, /values\.yaml names image registry\.local\/mychart\/server:9, which this bundle does not carry/)
    assert.match(out, /values\.yaml names image registry\.local\/shapes\/app:1/)
    const lock = YAML.parse(await readFile(path.join(dir, 'bundle.lock.yaml'), 'utf8')) as {files: {source: string; digest: string}[]; charts: {version: string; digest: string}[]}
    assert.deepEqual(lock.files.map((f) => f.digest), [`sha256:${sha(TOOL)}`])
    assert.deepEqual(lock.charts.map((c) => [c.version, c.digest]), [['1.3.0', `sha256:${sha(chartTgz['1.3.0'])}`]])
  })

  it('create is deterministic: the same input gives the same archive', async () => {
    const again = await airlock(['create', 'bundle.yaml', '--sign-key', 'release.key.asc', '-o', path.join(dir, 'again.tar')])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(sha(await readFile(path.join(dir, 'again.tar'))), sha(await readFile(created())))
  })

  it('verify accepts it; inspect lists the files (dest, mode) and the charts (name, version)', async () => {
    const v = await airlock(['verify', created(), '--key', 'release.pub.asc'])
    assert.equal(v.code, 0, v.stderr)
    const j = JSON.parse((await airlock(['inspect', created(), '--key', 'release.pub.asc', '--json'])).stdout) as {images: {kind: string; files?: {path: string; mode: string}[]; chart?: {name: string; version: string}}[]}
    const files = j.images.flatMap((i) => i.files ?? []).map((f) => `${f.path} ${f.mode}`).sort()
    assert.deepEqual(files, ['bin/tool.sh 0755', 'etc/config.txt 0644', 'share/tree/a.txt 0600', 'share/tree/sub/b.bin 0600'])
    assert.deepEqual(j.images.flatMap((i) => (i.chart ? [`${i.chart.name} ${i.chart.version}`] : [])).sort(), ['mychart 1.3.0', 'shapes-chart 0.1.0'])
    assert.ok(j.images.filter((i) => i.files || i.chart).every((i) => i.kind === 'artifact'))
  })

  it('install --to dir: writes byte-identical files with their modes and a chart repository whose index.yaml digests match', async () => {
    const out = path.join(dir, 'site')
    const r = await airlock(['install', created(), '--key', 'release.pub.asc', '--to', `dir:${out}`])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    const expect: [string, Buffer, number][] = [['bin/tool.sh', TOOL, 0o755], ['etc/config.txt', CONFIG, 0o644], ['share/tree/a.txt', TREE_A, 0o600], ['share/tree/sub/b.bin', TREE_B, 0o600],
      ['mychart-1.3.0.tgz', chartTgz['1.3.0'], 0o644], ['shapes-chart-0.1.0.tgz', ociChart.tgz, 0o644]]
    for (const [rel, bytes, mode] of expect) {
      assert.ok((await readFile(path.join(out, rel))).equals(bytes), rel)
      assert.equal((await stat(path.join(out, rel))).mode & 0o777, mode, `${rel} mode`)
    }
    const index = YAML.parse(await readFile(path.join(out, 'index.yaml'), 'utf8')) as {apiVersion: string; entries: Record<string, {version: string; digest: string; urls: string[]}[]>}
    assert.equal(index.apiVersion, 'v1')
    for (const [name, entries] of Object.entries(index.entries)) {
      for (const e of entries) assert.equal(e.digest, sha(await readFile(path.join(out, e.urls[0]))), `${name} ${e.version}`)
    }
    assert.deepEqual(Object.keys(index.entries).sort(), ['mychart', 'shapes-chart'])
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('.airlock-')), [], 'no temp dir left beside the target')
  })

  it('install --only takes files and charts by dest and chart name', async () => {
    const out = path.join(dir, 'only')
    const r = await airlock(['install', created(), '--key', 'release.pub.asc', '--to', `dir:${out}`, '--only', 'bin/tool.sh', '--only', 'mychart'])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.deepEqual((await readdir(out)).sort(), ['bin', 'index.yaml', 'mychart-1.3.0.tgz'])
  })

  it('install --to registry:// gives charts Helm pulls (Helm media types, byte-identical) and files as ORAS artifacts', async () => {
    const prefix = `${RUN}-mirror`
    const r = await airlock(['install', created(), '--key', 'release.pub.asc', '--to', `registry://${tb.registries.target}/${prefix}`])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    const base = `http://${tb.registries.target}/v2/${prefix}`
    const manifest = async (repo: string, tag: string) => {
      const res = await fetch(`${base}/${repo}/manifests/${tag}`, {headers: {Accept: 'application/vnd.oci.image.manifest.v1+json'}})
      assert.equal(res.status, 200, `${repo}:${tag}`)
      return JSON.parse(await res.text()) as {config: {mediaType: string; digest: string}; layers: {mediaType: string; digest: string; annotations?: Record<string, string>}[]; artifactType?: string}
    }
    const blob = async (repo: string, digest: string) => Buffer.from(await (await fetch(`${base}/${repo}/blobs/${digest}`)).arrayBuffer())
    for (const [repo, tag, bytes] of [['mychart', '1.3.0', chartTgz['1.3.0']], [`${RUN}/shapes-chart`, '0.1.0', ociChart.tgz]] as const) {
      const m = await manifest(repo, tag)
      assert.equal(m.config.mediaType, 'application/vnd.cncf.helm.config.v1+json')
      assert.equal(m.layers[0].mediaType, 'application/vnd.cncf.helm.chart.content.v1.tar+gzip')
      assert.ok((await blob(repo, m.layers[0].digest)).equals(bytes), `${repo} chart bytes`)
      const cfg = JSON.parse((await blob(repo, m.config.digest)).toString()) as {name: string}
      assert.ok(['mychart', 'shapes-chart'].includes(cfg.name))
    }
    const tool = await manifest('files/bin/tool.sh', '1.0.0')
    assert.equal(tool.artifactType, 'application/vnd.airlock.file.v1')
    assert.equal(tool.layers[0].annotations?.['org.opencontainers.image.title'], 'bin/tool.sh')
    assert.ok((await blob('files/bin/tool.sh', tool.layers[0].digest)).equals(TOOL))
  })

  it('serve: files over plain HTTP GET at /files/<dest> (Range too), charts over the registry API', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', created(), '--key', path.join(dir, 'release.pub.asc'), '--listen', '127.0.0.1:0', '--json'], {stdio: ['ignore', 'pipe', 'pipe']})
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = ''
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString()
          const ready = out.split('\n').find((l) => l.includes('"ready"'))
          if (ready) resolve((JSON.parse(ready) as {url: string}).url)
        })
        child.on('exit', (code) => reject(new Error(`serve exited ${code}`)))
      })
      const whole = await fetch(`${url}/files/bin/tool.sh`)
      assert.equal(whole.status, 200)
      assert.ok(Buffer.from(await whole.arrayBuffer()).equals(TOOL))
      const part = await fetch(`${url}/files/share/tree/sub/b.bin`, {headers: {Range: 'bytes=1-2'}})
      assert.equal(part.status, 206)
      assert.deepEqual([...Buffer.from(await part.arrayBuffer())], [1, 2])
      assert.equal((await fetch(`${url}/files/nope.txt`)).status, 404)
      assert.equal((await fetch(`${url}/files/../etc/passwd`)).status, 404)
      const m = await fetch(`${url}/v2/mychart/manifests/1.3.0`, {headers: {Accept: 'application/vnd.oci.image.manifest.v1+json'}})
      assert.equal(m.status, 200)
      assert.equal((JSON.parse(await m.text()) as {config: {mediaType: string}}).config.mediaType, 'application/vnd.cncf.helm.config.v1+json')
    } finally {
      child.kill('SIGTERM')
    }
  })

  it('a tampered file blob is refused like any blob, and nothing is written under dir:', async () => {
    const buf = await readFile(created())
    const at = dataOffset(buf, `blobs/sha256/${sha(TOOL)}`)
    buf[at + 3] ^= 0x01
    const bad = path.join(dir, 'tampered.tar')
    await writeFile(bad, buf)
    const out = path.join(dir, 'tampered-site')
    const r = await airlock(['install', bad, '--key', 'release.pub.asc', '--to', `dir:${out}`])
    assert.equal(r.code, 3, r.stdout + r.stderr)
    await assert.rejects(stat(out), 'nothing under dir:')
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('.airlock-')), [], 'no temp dir left beside the target')
  })

  it('a download cut halfway is resumed with Range and checked against its sha256', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 7)
    served.set('/flaky/big.bin', big)
    const sub = path.join(dir, 'resume')
    await mkdir(sub)
    await writeFile(path.join(sub, 'ca.pem'), await readFile(path.join(dir, 'ca.pem')))
    await writeFile(path.join(sub, 'bundle.yaml'), `apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: resume, version: "1"}\nimages: [${tb.images['app-a'].ref}]\n` +
      `files:\n  - {source: "https://127.0.0.1:${port}/flaky/big.bin", dest: big.bin, sha256: ${sha(big)}}\nregistries:\n  127.0.0.1:${port}: {ca: ca.pem}\n`)
    const r = await airlock(['create', path.join(sub, 'bundle.yaml'), '--unsigned', '-o', path.join(sub, 'r.tar')])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    const gets = requests.filter((q) => q.startsWith('/flaky/big.bin'))
    assert.equal(gets.length, 2, gets.join('\n'))
    assert.match(gets[1], /bytes=\d+-$/)
    const out = path.join(sub, 'site')
    const i = await airlock(['install', path.join(sub, 'r.tar'), '--allow-unsigned', '--to', `dir:${out}`])
    assert.equal(i.code, 0, i.stdout + i.stderr)
    assert.ok((await readFile(path.join(out, 'big.bin'))).equals(big))
  })

  it('a URL whose content changed since it was pinned: create --locked exits 2 with a clear message', async () => {
    created()
    served.set('/files/tool.sh', Buffer.from('#!/bin/sh\necho changed\n'))
    try {
      const r = await airlock(['create', 'bundle.yaml', '--sign-key', 'release.key.asc', '-o', path.join(dir, 'locked.tar'), '--locked'])
      assert.equal(r.code, 2, r.stdout + r.stderr)
      assert.match(r.stderr, /tool\.sh: the content changed since it was pinned/)
    } finally {
      served.set('/files/tool.sh', TOOL)
    }
  })
})
