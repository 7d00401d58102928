/**
 * `airlock serve`: a signed archive of app-a, app-b and multi (all platforms) served as a read-only
 * registry by the CLI (child process, free port), pulled by the real clients of the testbed —
 * docker, skopeo, ctr, podman — which must end up with the signed digests. Also the protocol
 * details (Range, 416, 404 codes, 405 on writes), an archive changed IN PLACE after verification
 * (the changed blob is cut off, never served complete), a tampered archive refused at start
 * (exit 3), and SIGTERM → exit 0. Pulled images are removed afterwards.
 */
import assert from 'node:assert/strict'
import {ChildProcess, execFile, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {copyFile, mkdtemp, open, readFile, rename, rm, writeFile} from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {after, before, describe, it} from 'node:test'

import {createBundle} from '../../src/create/create.js'
import {generateKeyPair} from '../../src/sign/keys.js'
import {readArchive} from '../../src/transports/archive/reader.js'
import type {AirlockMetadata} from '../../src/transports/archive/metadata.js'
import {loadTrustedKeys} from '../../src/sign/keys.js'
import {Testbed, testbed} from '../helpers/testbed.js'
import {BIN as bin} from '../helpers/cli.js'

const execFileP = promisify(execFile)

let tb: Testbed
let dir: string
let archive: string
let pub: string
let meta: AirlockMetadata
let locations: Map<string, {offset: number; size: number}>
const cleanup: (() => Promise<unknown>)[] = []

interface Served {
  child: ChildProcess
  ready: {address: string; url: string; images: {name: string; repository: string; tag?: string; digest: string}[]}
  lines: string[]
  stderr: () => string
  exit: Promise<number | null>
}

/** `airlock serve --json` on a free port; resolves on the ready line, or rejects with the exit code and stderr. */
async function serve(file: string, extra: string[] = []): Promise<Served> {
  const child = spawn(process.execPath, [bin, 'serve', file, '--key', pub, '--listen', '127.0.0.1:0', '--json', ...extra], {stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  let err = ''
  const lines: string[] = []
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const ready = await new Promise<Served['ready']>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      let i
      while ((i = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, i)
        out = out.slice(i + 1)
        lines.push(line)
        const doc = JSON.parse(line) as {event?: string}
        if (doc.event === 'ready') resolve(doc as unknown as Served['ready'])
      }
    })
    void exit.then((code) => reject(Object.assign(new Error(`serve exited ${code}: ${err}${lines.join('\n')}`), {code, stderr: err})))
  })
  return {child, ready, lines, stderr: () => err, exit}
}

async function stop(s: Served): Promise<{code: number | null; stopped: {stats: {integrityFailures: number; requests: number}}}> {
  s.child.kill('SIGTERM')
  const code = await s.exit
  const last = JSON.parse(s.lines[s.lines.length - 1]) as {event: string; stats: {integrityFailures: number; requests: number}}
  assert.equal(last.event, 'stopped')
  return {code, stopped: last}
}

function get(url: string, opts: {method?: string; headers?: Record<string, string>} = {}): Promise<{status: number; headers: http.IncomingHttpHeaders; body: Buffer; complete: boolean}> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {method: opts.method ?? 'GET', headers: opts.headers, agent: false}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      const finish = () => resolve({status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete})
      res.on('end', finish)
      res.on('aborted', finish)
      res.on('error', finish)
      res.on('close', finish)
    })
    // A connection cut before the response head arrived (the server refused to complete it).
    req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? resolve({status: 0, headers: {}, body: Buffer.alloc(0), complete: false}) : reject(e)))
    req.end()
  })
}

async function sh(bin: string, args: string[]): Promise<string> {
  const {stdout} = await execFileP(bin, args, {env: tb.processEnv, maxBuffer: 16 * 1024 * 1024, timeout: 120_000})
  return stdout
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`
const image = (suffix: string) => meta.images.find((i) => i.name.endsWith(suffix))!
const loc = (digest: string) => locations.get(`blobs/sha256/${digest.slice(7)}`)!

before(async () => {
  tb = await testbed()
  dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-serve-'))
  const kp = await generateKeyPair({name: 'Serve Test', email: 'serve@airlock.invalid'})
  await writeFile(path.join(dir, 'k.asc'), kp.privateKeyArmored)
  pub = path.join(dir, 'k.pub.asc')
  await writeFile(pub, kp.publicKeyArmored)
  const reg = tb.registries.open
  await writeFile(path.join(dir, 'bundle.yaml'), [
    'apiVersion: airlock/v1', 'kind: Bundle', 'metadata: {name: serve, version: 1.0.0}',
    `platforms: [${tb.images.multi.platforms.join(', ')}]`, 'images:',
    `  - ${tb.images['app-a'].ref}`, `  - ${tb.images['app-b'].ref}`, `  - ${tb.images.multi.ref}`,
    'registries:', `  ${reg}: {insecure: true}`, '',
  ].join('\n'))
  archive = path.join(dir, 'serve.tar')
  await createBundle({specFile: path.join(dir, 'bundle.yaml'), output: archive, signKey: path.join(dir, 'k.asc'), cacheDir: path.join(dir, 'cache'), epoch: 0})
  const r = await readArchive([archive], {trustedKeys: await loadTrustedKeys([pub])})
  meta = r.head.metadata
  locations = r.head.locations
  assert.deepEqual(meta.images.map((i) => i.name), [tb.images['app-a'].ref, tb.images['app-b'].ref, tb.images.multi.ref])
})

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {})
  if (dir) await rm(dir, {recursive: true, force: true})
})

describe('airlock serve', () => {
  let s: Served
  let base: string

  before(async () => {
    s = await serve(archive)
    base = s.ready.url
  })
  after(() => {
    if (s && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL')
  })

  it('is a read-only OCI distribution registry of the signed images', async () => {
    assert.match(s.ready.address, /^127\.0\.0\.1:\d+$/)
    assert.deepEqual(s.ready.images.map((i) => `${i.repository}:${i.tag}`), ['testbed/app-a:1', 'testbed/app-b:1', 'testbed/multi:1'])
    for (const method of ['GET', 'HEAD']) {
      const v2 = await get(`${base}/v2/`, {method})
      assert.equal(v2.status, 200)
      assert.equal(v2.headers['docker-distribution-api-version'], 'registry/2.0')
    }
    assert.deepEqual(JSON.parse((await get(`${base}/v2/_catalog`)).body.toString()), {repositories: ['testbed/app-a', 'testbed/app-b', 'testbed/multi']})
    const page = await get(`${base}/v2/_catalog?n=1`)
    assert.deepEqual(JSON.parse(page.body.toString()), {repositories: ['testbed/app-a']})
    assert.match(String(page.headers.link), /last=testbed%2Fapp-a&n=1>; rel="next"/)
    assert.deepEqual(JSON.parse((await get(`${base}/v2/testbed/multi/tags/list`)).body.toString()), {name: 'testbed/multi', tags: ['1']})
    assert.equal((JSON.parse((await get(`${base}/v2/nope/tags/list`)).body.toString()) as {errors: {code: string}[]}).errors[0].code, 'NAME_UNKNOWN')

    const multi = image('multi:1')
    for (const ref of ['1', multi.digest]) {
      const m = await get(`${base}/v2/testbed/multi/manifests/${ref}`)
      assert.equal(m.status, 200)
      assert.equal(m.headers['content-type'], multi.mediaType)
      assert.equal(m.headers['docker-content-digest'], multi.digest)
      assert.equal(Number(m.headers['content-length']), multi.size)
      assert.equal(sha(m.body), multi.digest)
      const h = await get(`${base}/v2/testbed/multi/manifests/${ref}`, {method: 'HEAD'})
      assert.equal(h.status, 200)
      assert.equal(h.headers['docker-content-digest'], multi.digest)
      assert.equal(h.body.length, 0)
    }
    const platform = multi.manifests[1]
    const pm = await get(`${base}/v2/testbed/multi/manifests/${platform.digest}`)
    assert.equal(pm.headers['content-type'], platform.mediaType)
    assert.equal(sha(pm.body), platform.digest)

    // Scoped to the repository whose image references it.
    const appA = image('app-a:1')
    const aLayer = appA.manifests[0].layers.at(-1)!
    assert.ok(!multi.blobs.some((b) => b.digest === aLayer))
    for (const [url, code] of [
      [`${base}/v2/testbed/multi/blobs/${aLayer}`, 'BLOB_UNKNOWN'],
      [`${base}/v2/nope/blobs/${aLayer}`, 'BLOB_UNKNOWN'],
      [`${base}/v2/testbed/multi/manifests/${appA.digest}`, 'MANIFEST_UNKNOWN'],
      [`${base}/v2/testbed/multi/manifests/2`, 'MANIFEST_UNKNOWN'],
    ] as const) {
      const r = await get(url)
      assert.equal(r.status, 404, url)
      assert.equal((JSON.parse(r.body.toString()) as {errors: {code: string}[]}).errors[0].code, code, url)
    }

    // Blobs, whole and by Range.
    const largest = appA.blobs.reduce((a, b) => (b.size > a.size ? b : a))
    const whole = await get(`${base}/v2/testbed/app-a/blobs/${largest.digest}`)
    assert.equal(whole.status, 200)
    assert.equal(whole.headers['docker-content-digest'], largest.digest)
    assert.equal(whole.headers['accept-ranges'], 'bytes')
    assert.equal(sha(whole.body), largest.digest)
    const from = Math.floor(largest.size / 3)
    const to = from + 999
    const part = await get(`${base}/v2/testbed/app-a/blobs/${largest.digest}`, {headers: {Range: `bytes=${from}-${to}`}})
    assert.equal(part.status, 206)
    assert.equal(part.headers['content-range'], `bytes ${from}-${to}/${largest.size}`)
    assert.deepEqual(part.body, whole.body.subarray(from, to + 1))
    const tail = await get(`${base}/v2/testbed/app-a/blobs/${largest.digest}`, {headers: {Range: 'bytes=-10'}})
    assert.equal(tail.status, 206)
    assert.deepEqual(tail.body, whole.body.subarray(largest.size - 10))
    const bad = await get(`${base}/v2/testbed/app-a/blobs/${largest.digest}`, {headers: {Range: `bytes=${largest.size}-`}})
    assert.equal(bad.status, 416)
    assert.equal(bad.headers['content-range'], `bytes */${largest.size}`)

    // Writes are refused.
    for (const [method, p] of [['PUT', '/v2/testbed/app-a/manifests/2'], ['POST', '/v2/testbed/app-a/blobs/uploads/'], ['DELETE', `/v2/testbed/app-a/blobs/${largest.digest}`], ['PATCH', '/v2/testbed/app-a/blobs/uploads/x']]) {
      const r = await get(`${base}${p}`, {method})
      assert.equal(r.status, 405, `${method} ${p}`)
      assert.equal((JSON.parse(r.body.toString()) as {errors: {code: string}[]}).errors[0].code, 'UNSUPPORTED')
    }
  })

  it('docker pull gives the signed digest', async () => {
    const ref = `${s.ready.address}/testbed/app-a:1`
    cleanup.push(() => sh('docker', ['rmi', '-f', ref]))
    await sh('docker', ['pull', '-q', ref])
    const digests = JSON.parse(await sh('docker', ['image', 'inspect', '--format', '{{json .RepoDigests}}', ref])) as string[]
    assert.ok(digests.includes(`${s.ready.address}/testbed/app-a@${image('app-a:1').digest}`), digests.join(', '))
  })

  it('skopeo copy gives the signed digest', async () => {
    const out = path.join(dir, 'skopeo-oci')
    await sh('skopeo', ['copy', '--src-tls-verify=false', `docker://${s.ready.address}/testbed/app-b:1`, `oci:${out}`])
    const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as {manifests: {digest: string}[]}
    assert.equal(index.manifests[0].digest, image('app-b:1').digest)
  })

  it('ctr images pull (every platform of an index) gives the signed digest', async () => {
    const ref = `${s.ready.address}/testbed/multi:1`
    const ctr = ['-a', tb.containerdAddress, '-n', tb.containerdNamespace]
    cleanup.push(() => sh('ctr', [...ctr, 'images', 'rm', ref]))
    await sh('ctr', [...ctr, 'images', 'pull', '--plain-http', '--all-platforms', ref])
    const list = await sh('ctr', [...ctr, 'images', 'ls'])
    const line = list.split('\n').find((l) => l.startsWith(`${ref} `))
    assert.ok(line, list)
    assert.ok(line.includes(image('multi:1').digest), line)
  })

  it('podman pull gives the signed digest', async () => {
    const ref = `${s.ready.address}/testbed/multi:1`
    cleanup.push(() => sh('podman', ['rmi', '-f', ref]))
    await sh('podman', ['pull', '-q', '--tls-verify=false', ref])
    const digest = (await sh('podman', ['image', 'inspect', '--format', '{{.Digest}}', ref])).trim()
    assert.equal(digest, image('multi:1').digest)
  })

  it('SIGTERM stops accepting, lets an in-flight pull finish, and exits 0', async () => {
    const largest = image('app-a:1').blobs.reduce((a, b) => (b.size > a.size ? b : a))
    const inflight = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${base}/v2/testbed/app-a/blobs/${largest.digest}`, {agent: false}, (res) => {
        res.pause()
        resolve(res)
      }).on('error', reject)
    })
    s.child.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 300))
    await assert.rejects(get(`${base}/v2/`), /ECONNREFUSED/)
    const chunks: Buffer[] = []
    inflight.on('data', (c: Buffer) => chunks.push(c))
    const ended = new Promise((r) => inflight.on('end', r))
    inflight.resume()
    await ended
    assert.equal(sha(Buffer.concat(chunks)), largest.digest)
    const {code, stopped} = await stop(s)
    assert.equal(code, 0, s.stderr())
    assert.ok(stopped.stats.requests > 20)
    assert.equal(stopped.stats.integrityFailures, 0)
  })
})

describe('airlock serve: integrity', () => {
  it('a tampered archive is refused at start (exit 3)', async () => {
    const bad = path.join(dir, 'tampered.tar')
    await copyFile(archive, bad)
    const layer = image('app-b:1').manifests[0].layers.at(-1)!
    const fh = await open(bad, 'r+')
    const at = loc(layer).offset + Math.floor(loc(layer).size / 2)
    const b = Buffer.alloc(1)
    await fh.read(b, 0, 1, at)
    b[0] ^= 0xff
    await fh.write(b, 0, 1, at)
    await fh.close()
    await assert.rejects(serve(bad), (e: {code: number; stderr: string; message: string}) => {
      assert.equal(e.code, 3, e.message)
      assert.match(e.message, new RegExp(`blobs/sha256/${layer.slice(7)}`))
      return true
    })
  })

  it('serves the verified file even when another file is renamed over its path', async () => {
    const file = path.join(dir, 'renamed.tar')
    await copyFile(archive, file)
    const s = await serve(file)
    try {
      const layer = image('app-a:1').blobs.reduce((a, b) => (b.size > a.size ? b : a))
      const other = Buffer.from(await readFile(archive))
      other[loc(layer.digest).offset + 10] ^= 0xff
      await writeFile(`${file}.new`, other)
      await rename(`${file}.new`, file)
      const r = await get(`${s.ready.url}/v2/testbed/app-a/blobs/${layer.digest}`)
      assert.equal(r.complete, true)
      assert.equal(sha(r.body), layer.digest)
    } finally {
      const {code, stopped} = await stop(s)
      assert.equal(code, 0)
      assert.equal(stopped.stats.integrityFailures, 0)
    }
  })

  it('bytes changed in place after verification are never served complete', async () => {
    const file = path.join(dir, 'changing.tar')
    await copyFile(archive, file)
    const s = await serve(file)
    let stopped: Awaited<ReturnType<typeof stop>> | undefined
    try {
      const appA = image('app-a:1')
      const layer = appA.blobs.reduce((a, b) => (b.size > a.size ? b : a))
      const url = `${s.ready.url}/v2/testbed/app-a/blobs/${layer.digest}`
      assert.equal(sha((await get(url)).body), layer.digest)
      const fh = await open(file, 'r+')
      const at = loc(layer.digest).offset + layer.size - 1 // the very last byte: only the final hash can tell
      const b = Buffer.alloc(1)
      await fh.read(b, 0, 1, at)
      b[0] ^= 0xff
      await fh.write(b, 0, 1, at)
      // and a manifest
      const m = loc(appA.digest)
      const mb = Buffer.alloc(1)
      await fh.read(mb, 0, 1, m.offset + 5)
      mb[0] ^= 0x01
      await fh.write(mb, 0, 1, m.offset + 5)
      await fh.close()

      const r = await get(url)
      assert.equal(r.status, 200)
      assert.equal(r.complete, false, 'the response must be cut off')
      assert.ok(r.body.length < layer.size, `${r.body.length} of ${layer.size} bytes were sent`)
      const ranged = await get(url, {headers: {Range: 'bytes=0-99'}})
      assert.equal(ranged.complete, false, 'a Range response must be cut off too')
      assert.equal(ranged.body.length, 0)
      const man = await get(`${s.ready.url}/v2/testbed/app-a/manifests/1`)
      assert.equal(man.status, 500, man.body.toString())
      assert.match(s.stderr(), /INTEGRITY: blob/)
      stopped = await stop(s)
    } finally {
      if (!stopped) s.child.kill('SIGKILL')
    }
    assert.equal(stopped.code, 0)
    assert.equal(stopped.stopped.stats.integrityFailures, 3, s.stderr())
  })
})
