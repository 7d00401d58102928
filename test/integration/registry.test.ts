/**
 * RegistryClient against REAL docker-registry instances (open + htpasswd), seeded with skopeo.
 * The only in-process piece is a small fault-injecting HTTP proxy in front of the real registry
 * (connection cut mid-blob, 503 + Retry-After) to exercise Range resume and backoff.
 */
import assert from 'node:assert/strict'
import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {createHash, sign as cryptoSign} from 'node:crypto'
import {chmod, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {after, before, describe, test} from 'node:test'
import {promisify} from 'node:util'
import {gzipSync} from 'node:zlib'

import {AirlockError, InputError, VerifyError} from '../../src/core/errors.js'
import {MAX_MANIFEST_BYTES, MediaType, type ImageIndex, type ImageManifest} from '../../src/core/model.js'
import {RegistryClient, resolveCredentials, type RetryInfo} from '../../src/transports/registry/index.js'

const run = promisify(execFile)
const USER = 'airlock'
const PASS = 'tb-s3cret-pass'

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`

// ------------------------------------------------------------------ registries

interface Reg {
  host: string
  root: string
  proc: ChildProcess
}

async function freePort(): Promise<number> {
  for (let p = 5390; p <= 5399; p++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer()
      s.once('error', () => resolve(false))
      s.listen(p, '127.0.0.1', () => s.close(() => resolve(true)))
    })
    if (ok && !usedPorts.has(p)) {
      usedPorts.add(p)
      return p
    }
  }
  throw new Error('no free port in 5390-5399')
}
const usedPorts = new Set<number>()

async function startRegistry(dir: string, name: string, htpasswd?: string, authYaml?: string): Promise<Reg> {
  const port = await freePort()
  const root = join(dir, name)
  await mkdir(root, {recursive: true})
  const auth = htpasswd ? `auth: {htpasswd: {realm: airlock-test, path: ${htpasswd}}}\n` : authYaml ?? ''
  const cfg = join(dir, `${name}.yml`)
  await writeFile(
    cfg,
    `version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: ${root}}, delete: {enabled: true}}\nhttp: {addr: 127.0.0.1:${port}}\n${auth}`,
  )
  const proc = spawn('docker-registry', ['serve', cfg], {stdio: 'ignore'})
  const host = `127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      http.get(`http://${host}/v2/`, (r) => {
        r.resume()
        resolve(true)
      }).on('error', () => resolve(false))
    })
    if (up) return {host, root, proc}
    await new Promise((r) => setTimeout(r, 100))
  }
  proc.kill()
  throw new Error(`docker-registry on ${host} did not start`)
}

// ------------------------------------------------------------------ seeding (OCI layout → skopeo)

function tarOf(files: Record<string, string>): Buffer {
  const blocks: Buffer[] = []
  for (const [name, content] of Object.entries(files)) {
    const data = Buffer.from(content)
    const h = Buffer.alloc(512)
    h.write(name, 0)
    h.write('0000644\0', 100)
    h.write('0000000\0', 108)
    h.write('0000000\0', 116)
    h.write(data.length.toString(8).padStart(11, '0') + '\0', 124)
    h.write('00000000000\0', 136)
    h.write('        ', 148)
    h.write('0', 156)
    h.write('ustar\0', 257)
    h.write('00', 263)
    let sum = 0
    for (const b of h) sum += b
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512))
  }
  blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}

class Layout {
  blobs = new Map<string, Buffer>()
  constructor(readonly dir: string) {}
  add(b: Buffer | string): {digest: string; size: number} {
    const buf = Buffer.isBuffer(b) ? b : Buffer.from(b)
    const d = sha(buf)
    this.blobs.set(d, buf)
    return {digest: d, size: buf.length}
  }
  image(layerFiles: Array<Record<string, string>>, arch = 'amd64', variant?: string): {digest: string; size: number} {
    const layers = layerFiles.map((f) => {
      const tar = tarOf(f)
      return {tar, gz: gzipSync(tar)}
    })
    const config = {
      architecture: arch,
      ...(variant ? {variant} : {}),
      os: 'linux',
      config: {Cmd: ['/bin/sh']},
      rootfs: {type: 'layers', diff_ids: layers.map((l) => sha(l.tar))},
    }
    const c = this.add(JSON.stringify(config))
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OCI_MANIFEST,
      config: {mediaType: MediaType.OCI_CONFIG, ...c},
      layers: layers.map((l) => ({mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...this.add(l.gz)})),
    }
    return this.add(JSON.stringify(manifest))
  }
  async write(top: {digest: string; size: number}, mediaType: string, tag: string): Promise<void> {
    await mkdir(join(this.dir, 'blobs', 'sha256'), {recursive: true})
    for (const [d, b] of this.blobs) await writeFile(join(this.dir, 'blobs', 'sha256', d.slice(7)), b)
    await writeFile(join(this.dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
    const index = {
      schemaVersion: 2,
      manifests: [{mediaType, ...top, annotations: {'org.opencontainers.image.ref.name': tag}}],
    }
    await writeFile(join(this.dir, 'index.json'), JSON.stringify(index))
  }
}

async function skopeoPush(layoutDir: string, dest: string, extra: string[] = []): Promise<void> {
  await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', ...extra, `oci:${layoutDir}:1`, `docker://${dest}`])
}

async function seed(dir: string, open: string, priv: string, authFile: string): Promise<void> {
  const shared = {'etc/shared.txt': 'shared layer\n'.repeat(1000)}
  const mk = async (name: string, layers: Array<Record<string, string>>, dest: string, extra: string[] = []) => {
    const l = new Layout(join(dir, 'layouts', name))
    const top = l.image(layers)
    await l.write(top, MediaType.OCI_MANIFEST, '1')
    await skopeoPush(l.dir, dest, extra)
  }
  await mk('base', [{'etc/base.txt': 'base\n'}], `${open}/testbed/base:1`)
  await mk('app-a', [{'etc/a.txt': 'a\n'}], `${open}/testbed/app-a:1`, ['--format', 'v2s2'])
  await mk('app-b', [shared, {'etc/b.txt': 'b\n'}], `${open}/testbed/app-b:1`)
  await mk('app-c', [shared, {'etc/c.txt': 'c\n'}], `${open}/testbed/app-c:1`)
  // a 1 MiB-ish layer of incompressible bytes, for the resume test
  {
    const l = new Layout(join(dir, 'layouts', 'big'))
    const rnd = Buffer.alloc(3 * 1024 * 1024)
    for (let i = 0; i < rnd.length; i += 4) rnd.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i)
    const top = l.image([{'big.bin': rnd.toString('base64')}])
    await l.write(top, MediaType.OCI_MANIFEST, '1')
    await skopeoPush(l.dir, `${open}/testbed/big:1`)
  }
  {
    const l = new Layout(join(dir, 'layouts', 'multi'))
    const amd = l.image([{'etc/arch': 'amd64\n'}], 'amd64')
    const arm = l.image([{'etc/arch': 'arm64\n'}], 'arm64', 'v8')
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.OCI_INDEX,
      manifests: [
        {mediaType: MediaType.OCI_MANIFEST, ...amd, platform: {os: 'linux', architecture: 'amd64'}},
        {mediaType: MediaType.OCI_MANIFEST, ...arm, platform: {os: 'linux', architecture: 'arm64', variant: 'v8'}},
      ],
    }
    const top = l.add(JSON.stringify(index))
    await l.write(top, MediaType.OCI_INDEX, '1')
    await skopeoPush(l.dir, `${open}/testbed/multi:1`, ['--all'])
  }
  await mk('secret', [{'etc/secret.txt': 'secret\n'}], `${priv}/private/secret:1`, ['--dest-authfile', authFile])
}

function blobDataPath(root: string, digest: string): string {
  const hex = digest.slice(7)
  return join(root, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data')
}

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of r) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

async function rejectsWith(p: Promise<unknown>, code: string, cls: abstract new (...args: never[]) => Error = AirlockError): Promise<AirlockError> {
  try {
    await p
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`)
    assert.equal((e as AirlockError).code, code, e.message)
    return e as AirlockError
  }
  assert.fail(`expected rejection with ${code}`)
}

// ------------------------------------------------------------------ fault proxy

interface Fault {
  /** Cut the connection after this many body bytes of the first matching blob GET. */
  cutBlobAfter?: number
  /** Answer this many 503s (with Retry-After: 0) before proxying. */
  fail503?: number
  /** Drop the Accept-Ranges header and ignore Range (forces restart-from-zero). */
  noRanges?: boolean
}

function startFaultProxy(target: string, fault: Fault): Promise<{host: string; log: string[]; close: () => Promise<void>}> {
  const log: string[] = []
  let cut = fault.cutBlobAfter !== undefined
  let fails = fault.fail503 ?? 0
  const server = http.createServer((req, res) => {
    log.push(`${req.method} ${req.url} range=${req.headers.range ?? '-'}`)
    if (fails > 0) {
      fails--
      res.writeHead(503, {'Retry-After': '0', 'Content-Type': 'application/json'})
      res.end('{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}')
      return
    }
    const headers = {...req.headers}
    if (fault.noRanges) delete headers.range
    const up = http.request({host: '127.0.0.1', port: Number(target.split(':')[1]), method: req.method, path: req.url, headers}, (ur) => {
      const h = {...ur.headers}
      if (fault.noRanges) delete h['accept-ranges']
      res.writeHead(ur.statusCode ?? 502, h)
      const isBlob = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '')
      if (cut && isBlob && ur.statusCode === 200) {
        cut = false
        let sent = 0
        ur.on('data', (c: Buffer) => {
          if (sent + c.length >= fault.cutBlobAfter!) {
            res.write(c.subarray(0, fault.cutBlobAfter! - sent))
            sent = fault.cutBlobAfter!
            ur.destroy()
            setTimeout(() => res.socket?.destroy(), 20)
            return
          }
          sent += c.length
          res.write(c)
        })
        return
      }
      ur.pipe(res)
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port
      resolve({
        host: `127.0.0.1:${port}`,
        log,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections()
            server.close(() => r())
          }),
      })
    })
  })
}

// ------------------------------------------------------------------ token service

/**
 * A minimal Docker token service (ES256 JWT with an x5c self-signed certificate) for a REAL
 * docker-registry configured with `auth: token`. It checks Basic credentials and grants the scopes
 * asked for.
 */
async function startTokenService(dir: string): Promise<{realm: string; certFile: string; requests: string[]; close: () => Promise<void>}> {
  const key = join(dir, 'token-key.pem')
  const certFile = join(dir, 'token-cert.pem')
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=airlock-test-token', '-days', '2', '-keyout', key, '-out', certFile])
  const keyPem = await readFile(key, 'utf8')
  const der = (await readFile(certFile, 'utf8')).replace(/-----[^-]+-----|\s/g, '')
  const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url')
  const requests: string[] = []
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    requests.push(url.searchParams.getAll('scope').join(' '))
    const auth = req.headers.authorization ?? ''
    if (auth !== `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`) {
      res.writeHead(401, {'Content-Type': 'application/json'})
      res.end('{"details":"incorrect username or password"}')
      return
    }
    const access = url.searchParams.getAll('scope').flatMap((sc) => {
      const [type, ...rest] = sc.split(':')
      const actions = rest.pop() ?? ''
      return [{type, name: rest.join(':'), actions: actions.split(',')}]
    })
    const now = Math.floor(Date.now() / 1000)
    const header = b64url(JSON.stringify({alg: 'ES256', typ: 'JWT', x5c: [der]}))
    const claims = b64url(JSON.stringify({iss: 'airlock-test-issuer', sub: USER, aud: url.searchParams.get('service'), exp: now + 300, nbf: now - 10, iat: now, jti: String(Math.random()), access}))
    const sig = cryptoSign('sha256', Buffer.from(`${header}.${claims}`), {key: keyPem, dsaEncoding: 'ieee-p1363'})
    res.writeHead(200, {'Content-Type': 'application/json'})
    // answer with access_token only, to exercise that spelling
    res.end(JSON.stringify({access_token: `${header}.${claims}.${b64url(sig)}`, expires_in: 300}))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as net.AddressInfo).port
  return {
    realm: `http://127.0.0.1:${port}/token`,
    certFile,
    requests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

// ------------------------------------------------------------------ tests

describe('registry transport (real docker-registry)', () => {
  let dir: string
  let open: Reg
  let priv: Reg
  const clients: RegistryClient[] = []
  const client = (o: Partial<ConstructorParameters<typeof RegistryClient>[0]> & {host: string}) => {
    const c = new RegistryClient({retries: 2, retryBaseDelayMs: 5, ...o})
    clients.push(c)
    return c
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-registry-test-'))
    const { stdout: htpasswd } = await run('htpasswd', ['-Bbn', USER, PASS])
    await writeFile(join(dir, 'htpasswd'), htpasswd)
    open = await startRegistry(dir, 'open')
    priv = await startRegistry(dir, 'priv', join(dir, 'htpasswd'))
    const authFile = join(dir, 'skopeo-auth.json')
    await writeFile(authFile, JSON.stringify({auths: {[priv.host]: {auth: Buffer.from(`${USER}:${PASS}`).toString('base64')}}}))
    await seed(dir, open.host, priv.host, authFile)
  })

  after(async () => {
    for (const c of clients) c.close()
    for (const r of [open, priv]) r?.proc.kill()
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  test('ping', async () => {
    await client({host: open.host}).ping()
  })

  test('manifests of each kind: media type, digest = sha256(bytes) = HEAD digest', async () => {
    const c = client({host: open.host})
    const cases: Array<[string, string]> = [
      ['testbed/base', MediaType.OCI_MANIFEST],
      ['testbed/app-a', MediaType.DOCKER_MANIFEST],
      ['testbed/app-b', MediaType.OCI_MANIFEST],
      ['testbed/app-c', MediaType.OCI_MANIFEST],
      ['testbed/multi', MediaType.OCI_INDEX],
    ]
    for (const [repo, mt] of cases) {
      const m = await c.getManifest(repo, '1')
      assert.equal(m.mediaType, mt, repo)
      assert.equal(m.digest, sha(m.bytes), repo)
      const body = JSON.parse(m.bytes.toString()) as {mediaType?: string}
      assert.equal(body.mediaType, mt)
      const h = await c.headManifest(repo, '1')
      assert.deepEqual(h, {digest: m.digest, mediaType: mt, size: m.bytes.length}, repo)
      const byDigest = await c.getManifest(repo, m.digest)
      assert.ok(byDigest.bytes.equals(m.bytes))
    }
    const idx = JSON.parse((await c.getManifest('testbed/multi', '1')).bytes.toString()) as ImageIndex
    assert.deepEqual(
      idx.manifests.map((d) => [d.platform?.architecture, d.platform?.variant]),
      [['amd64', undefined], ['arm64', 'v8']],
    )
    for (const d of idx.manifests) {
      const pm = await c.getManifest('testbed/multi', d.digest)
      assert.equal(pm.mediaType, MediaType.OCI_MANIFEST)
      assert.equal(pm.bytes.length, d.size)
    }
    // app-b and app-c share their first layer
    const b = JSON.parse((await c.getManifest('testbed/app-b', '1')).bytes.toString()) as ImageManifest
    const cc = JSON.parse((await c.getManifest('testbed/app-c', '1')).bytes.toString()) as ImageManifest
    assert.equal(b.layers[0].digest, cc.layers[0].digest)
    assert.equal(await c.headManifest('testbed/base', 'nope'), undefined)
  })

  test('getBlob streams layers and configs with the right sha256', async () => {
    const c = client({host: open.host})
    const m = JSON.parse((await c.getManifest('testbed/app-a', '1')).bytes.toString()) as ImageManifest
    for (const d of [m.config, ...m.layers]) {
      assert.equal(await c.hasBlob('testbed/app-a', d.digest), true)
      const bytes = await collect(await c.getBlob('testbed/app-a', d.digest, d.size))
      assert.equal(bytes.length, d.size)
      assert.equal(sha(bytes), d.digest)
    }
    assert.equal(await c.hasBlob('testbed/app-a', sha('nothing')), false)
  })

  test('getBlob: wrong digest or size → VerifyError', async () => {
    const c = client({host: open.host})
    const m = JSON.parse((await c.getManifest('testbed/base', '1')).bytes.toString()) as ImageManifest
    const layer = m.layers[0]
    // wrong size
    await rejectsWith(collect(await c.getBlob('testbed/base', layer.digest, layer.size + 1)), 'registry.size_mismatch', VerifyError)
    // the registry serves bytes that do not hash to the digest (storage corrupted behind its back)
    const victim = JSON.parse((await c.getManifest('testbed/app-c', '1')).bytes.toString()) as ImageManifest
    const last = victim.layers.at(-1)!
    const p = blobDataPath(open.root, last.digest)
    const orig = await readFile(p)
    const bad = Buffer.from(orig)
    bad[bad.length - 1] ^= 0xff
    await writeFile(p, bad)
    try {
      const e = await rejectsWith(collect(await c.getBlob('testbed/app-c', last.digest, last.size)), 'registry.digest_mismatch', VerifyError)
      assert.match(e.message, /hashes to sha256:/)
    } finally {
      await writeFile(p, orig)
    }
    // a blob that does not exist
    await rejectsWith(c.getBlob('testbed/base', sha('nope'), 4), 'registry.not_found')
  })

  test('not found: unknown tag and repository', async () => {
    const c = client({host: open.host})
    const e = await rejectsWith(c.getManifest('testbed/x', '1'), 'registry.not_found')
    assert.equal(e.message, `manifest unknown: ${open.host}/testbed/x:1`)
    const e2 = await rejectsWith(c.getManifest('testbed/base', 'nope'), 'registry.not_found')
    assert.match(e2.message, /manifest unknown: .*testbed\/base:nope$/)
    await rejectsWith(c.listTags('testbed/none'), 'registry.not_found')
    await rejectsWith(c.getManifest('Bad Repo', '1'), 'registry.invalid_repository', InputError)
  })

  test('listTags', async () => {
    assert.deepEqual(await client({host: open.host}).listTags('testbed/base'), ['1'])
  })

  test('manifest larger than 4 MiB is rejected without buffering it', async () => {
    // docker-registry itself refuses to store or serve manifests over 4 MiB ("storage: read exceeds
    // limit"), so a hostile registry is played by an in-process proxy that answers /manifests/huge*
    // with a 4 MiB + 1 KiB manifest (with Content-Length) or an endless chunked one.
    const m = {
      schemaVersion: 2,
      mediaType: MediaType.OCI_MANIFEST,
      config: {mediaType: MediaType.OCI_CONFIG, digest: sha('{}'), size: 2},
      layers: [],
      annotations: {pad: 'x'.repeat(MAX_MANIFEST_BYTES + 1024)},
    }
    const bytes = Buffer.from(JSON.stringify(m))
    let streamed = 0
    let streamClosed = false
    const proxy = http.createServer((req, res) => {
      if (req.url?.endsWith('/manifests/huge-cl')) {
        res.writeHead(200, {'Content-Type': MediaType.OCI_MANIFEST, 'Content-Length': bytes.length, 'Docker-Content-Digest': sha(bytes)})
        res.end(req.method === 'HEAD' ? undefined : bytes)
        return
      }
      if (req.url?.endsWith('/manifests/huge-chunked')) {
        res.writeHead(200, {'Content-Type': MediaType.OCI_MANIFEST})
        const chunk = Buffer.alloc(64 * 1024, 0x20)
        const pump = () => {
          while (streamed < 256 * 1024 * 1024) {
            streamed += chunk.length
            if (!res.write(chunk)) {
              res.once('drain', pump)
              return
            }
          }
          res.end()
        }
        res.on('close', () => (streamClosed = true))
        pump()
        return
      }
      res.writeHead(404)
      res.end()
    })
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()))
    try {
      const c = client({host: `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`})
      await rejectsWith(c.getManifest('testbed/huge', 'huge-cl'), 'registry.manifest_too_large', VerifyError)
      await rejectsWith(c.headManifest('testbed/huge', 'huge-cl'), 'registry.manifest_too_large', VerifyError)
      await rejectsWith(c.getManifest('testbed/huge', 'huge-chunked'), 'registry.manifest_too_large', VerifyError)
      await new Promise((r) => setTimeout(r, 100))
      assert.ok(streamClosed, 'client hung up')
      assert.ok(streamed < 32 * 1024 * 1024, `client stopped reading early (server wrote ${streamed} bytes)`)
    } finally {
      proxy.closeAllConnections()
      proxy.close()
    }
  })

  test('manifest whose mediaType disagrees with Content-Type is rejected', async () => {
    // docker-registry derives Content-Type from the stored body, so the disagreement is injected
    // by an in-process proxy that rewrites Content-Type on the way.
    const c0 = client({host: open.host})
    const real = await c0.getManifest('testbed/base', '1')
    const proxy = http.createServer((req, res) => {
      const up = http.request({host: '127.0.0.1', port: Number(open.host.split(':')[1]), method: req.method, path: req.url, headers: req.headers}, (ur) => {
        const h = {...ur.headers}
        if (/\/manifests\//.test(req.url ?? '')) h['content-type'] = MediaType.DOCKER_MANIFEST
        res.writeHead(ur.statusCode ?? 502, h)
        ur.pipe(res)
      })
      req.pipe(up)
    })
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()))
    try {
      const c = client({host: `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`})
      await rejectsWith(c.getManifest('testbed/base', real.digest), 'registry.media_type_mismatch', VerifyError)
    } finally {
      proxy.closeAllConnections()
      proxy.close()
    }
  })

  test('auth registry: clear 401 without creds, works with creds, password never in messages', async () => {
    const messages: string[] = []
    const noCreds = client({host: priv.host})
    let e = await rejectsWith(noCreds.ping(), 'registry.unauthorized')
    messages.push(e.message)
    assert.match(e.message, /requires authentication and no credentials are configured/)
    e = await rejectsWith(noCreds.getManifest('private/secret', '1'), 'registry.unauthorized')
    messages.push(e.message)

    const wrong = client({host: priv.host, credentials: {username: USER, password: `${PASS}-wrong`}})
    e = await rejectsWith(wrong.getManifest('private/secret', '1'), 'registry.unauthorized')
    messages.push(e.message)
    assert.match(e.message, /credentials for .* were rejected/)

    const good = client({host: priv.host, credentials: async () => ({username: USER, password: PASS})})
    await good.ping()
    const m = await good.getManifest('private/secret', '1')
    assert.equal(m.mediaType, MediaType.OCI_MANIFEST)
    const man = JSON.parse(m.bytes.toString()) as ImageManifest
    const layer = await collect(await good.getBlob('private/secret', man.layers[0].digest, man.layers[0].size))
    assert.equal(sha(layer), man.layers[0].digest)
    e = await rejectsWith(good.getManifest('private/secret', 'nope'), 'registry.not_found')
    messages.push(e.message)

    const b64 = Buffer.from(`${USER}:${PASS}`).toString('base64')
    for (const msg of messages) {
      assert.ok(!msg.includes(PASS), msg)
      assert.ok(!msg.includes(b64), msg)
    }
  })

  test('credentials: env vars named in bundle.yaml', async () => {
    await rejectsWith(
      resolveCredentials(priv.host, {auth: {usernameEnv: 'TB_USER', passwordEnv: 'TB_PASS'}, env: {TB_USER: USER}}),
      'credentials.env_unset',
      InputError,
    )
    const creds = await resolveCredentials(priv.host, {auth: {usernameEnv: 'TB_USER', passwordEnv: 'TB_PASS'}, env: {TB_USER: USER, TB_PASS: PASS}})
    await client({host: priv.host, credentials: creds}).ping()
  })

  test('credentials: docker config.json auths (explicit path and $DOCKER_CONFIG)', async () => {
    const cfgDir = join(dir, 'dockercfg')
    await mkdir(cfgDir, {recursive: true})
    const cfg = join(cfgDir, 'config.json')
    await writeFile(cfg, JSON.stringify({auths: {[`http://${priv.host}`]: {auth: Buffer.from(`${USER}:${PASS}`).toString('base64')}}}))
    const creds = await resolveCredentials(priv.host, {registryConfig: cfg, env: {}})
    assert.deepEqual(creds, {username: USER, password: PASS})
    const viaEnv = await resolveCredentials(priv.host, {env: {DOCKER_CONFIG: cfgDir}})
    assert.deepEqual(viaEnv, creds)
    assert.equal(await resolveCredentials(open.host, {env: {DOCKER_CONFIG: cfgDir}}), undefined)
    assert.equal(await resolveCredentials(priv.host, {env: {}, homeDir: join(dir, 'no-home')}), undefined)
    await rejectsWith(resolveCredentials(priv.host, {registryConfig: join(dir, 'missing.json')}), 'credentials.config_missing', InputError)
    const c = client({host: priv.host, credentials: () => resolveCredentials(priv.host, {registryConfig: cfg})})
    assert.equal((await c.getManifest('private/secret', '1')).mediaType, MediaType.OCI_MANIFEST)
  })

  test('credentials: credHelpers runs docker-credential-<x> get with the host on stdin', async () => {
    const bin = join(dir, 'bin')
    await mkdir(bin, {recursive: true})
    const argvLog = join(dir, 'helper-argv.log')
    const script = `#!/bin/sh
echo "$@" >> ${argvLog}
[ "$1" = get ] || exit 3
read -r server
if [ "$server" = "${priv.host}" ]; then
  printf '{"ServerURL":"%s","Username":"${USER}","Secret":"${PASS}"}' "$server"
else
  echo "credentials not found in native keychain"; exit 1
fi
`
    await writeFile(join(bin, 'docker-credential-testhelper'), script)
    await chmod(join(bin, 'docker-credential-testhelper'), 0o755)
    const cfgDir = join(dir, 'helpercfg')
    await mkdir(cfgDir, {recursive: true})
    await writeFile(join(cfgDir, 'config.json'), JSON.stringify({credHelpers: {[priv.host]: 'testhelper', [open.host]: 'testhelper'}}))
    const env = {...process.env, DOCKER_CONFIG: cfgDir, PATH: `${bin}:${process.env.PATH}`}
    const creds = await resolveCredentials(priv.host, {env})
    assert.deepEqual(creds, {username: USER, password: PASS})
    assert.equal(await resolveCredentials(open.host, {env}), undefined) // helper says "not found"
    const argv = await readFile(argvLog, 'utf8')
    assert.ok(!argv.includes(PASS) && !argv.includes(priv.host), 'nothing but "get" in argv')
    await client({host: priv.host, credentials: creds}).ping()
    // a helper that is not installed
    await writeFile(join(cfgDir, 'config.json'), JSON.stringify({credHelpers: {[priv.host]: 'nosuchhelper'}}))
    await rejectsWith(resolveCredentials(priv.host, {env}), 'credentials.helper_missing', InputError)
  })

  test('push round trip: putBlob + putManifest, exists, cross-repo mount, bad upload', async () => {
    const src = client({host: open.host})
    const dst = client({host: open.host})
    const m = await src.getManifest('testbed/app-b', '1')
    const man = JSON.parse(m.bytes.toString()) as ImageManifest
    const blobs = new Map<string, Buffer>()
    for (const d of [man.config, ...man.layers]) blobs.set(d.digest, await collect(await src.getBlob('testbed/app-b', d.digest, d.size)))
    for (const d of [man.config, ...man.layers]) {
      const r = await dst.putBlob('copy/app-b', d.digest, d.size, () => Readable.from([blobs.get(d.digest)!]))
      assert.equal(r, 'uploaded', d.digest)
    }
    assert.equal(await dst.headManifest('copy/app-b', '1'), undefined)
    const digest = await dst.putManifest('copy/app-b', '1', m.bytes, m.mediaType)
    assert.equal(digest, m.digest)
    assert.deepEqual(await dst.headManifest('copy/app-b', '1'), {digest: m.digest, mediaType: m.mediaType, size: m.bytes.length})
    assert.ok((await dst.getManifest('copy/app-b', '1')).bytes.equals(m.bytes))
    // second upload: already there
    const l0 = man.layers[0]
    assert.equal(await dst.putBlob('copy/app-b', l0.digest, l0.size, () => Readable.from([blobs.get(l0.digest)!])), 'exists')
    // cross-repo mount
    let opened = 0
    const mounted = await dst.putBlob('copy/other', l0.digest, l0.size, () => (opened++, Readable.from([blobs.get(l0.digest)!])), {mountFrom: 'copy/app-b'})
    assert.equal(mounted, 'mounted')
    assert.equal(opened, 0)
    assert.equal(await dst.hasBlob('copy/other', l0.digest), true)
    // mount source that lacks the blob: the registry opens an upload session instead
    assert.equal(
      await dst.putBlob('copy/third', l0.digest, l0.size, () => Readable.from([blobs.get(l0.digest)!]), {mountFrom: 'copy/nothing-here'}),
      'uploaded',
    )
    // push by digest
    assert.equal(await dst.putManifest('copy/app-b', m.digest, m.bytes, m.mediaType), m.digest)
    // bytes that do not match the digest: the registry refuses them
    const wrong = Buffer.from('definitely not the layer')
    await rejectsWith(
      dst.putBlob('copy/bad', sha('something else'), wrong.length, () => Readable.from([wrong])),
      'registry.digest_mismatch',
      VerifyError,
    )
    assert.equal(await dst.hasBlob('copy/bad', sha('something else')), false)
    // a source that is shorter than announced is caught before the registry sees it
    await rejectsWith(
      dst.putBlob('copy/bad', sha(wrong), wrong.length + 5, () => Readable.from([wrong])),
      'registry.upload_size_mismatch',
    )
  })

  test('push to the auth registry with credentials', async () => {
    const c = client({host: priv.host, credentials: {username: USER, password: PASS}})
    const data = Buffer.from('pushed with basic auth')
    assert.equal(await c.putBlob('private/pushed', sha(data), data.length, () => Readable.from([data])), 'uploaded')
    assert.equal(await c.putBlob('private/mounted', sha(data), data.length, () => Readable.from([data]), {mountFrom: 'private/pushed'}), 'mounted')
  })

  test('retries: 503 + Retry-After, then success', async () => {
    const proxy = await startFaultProxy(open.host, {fail503: 2})
    try {
      const retries: RetryInfo[] = []
      const c = client({host: proxy.host, onRetry: (i) => retries.push(i)})
      const m = await c.getManifest('testbed/base', '1')
      assert.equal(m.digest, sha(m.bytes))
      assert.deepEqual(retries.map((r) => [r.attempt, r.reason]), [[1, 'HTTP 503'], [2, 'HTTP 503']])
    } finally {
      await proxy.close()
    }
    const proxy2 = await startFaultProxy(open.host, {fail503: 10})
    try {
      const c = client({host: proxy2.host, retries: 1})
      const e = await rejectsWith(c.getManifest('testbed/base', '1'), 'registry.server_error')
      assert.match(e.message, /HTTP 503 \(try later\)/)
    } finally {
      await proxy2.close()
    }
  })

  test('connection refused → registry.unreachable after retries', async () => {
    const port = await freePort()
    const retries: RetryInfo[] = []
    const c = client({host: `127.0.0.1:${port}`, retries: 2, onRetry: (i) => retries.push(i)})
    await rejectsWith(c.ping(), 'registry.unreachable')
    assert.equal(retries.length, 2)
  })

  for (const noRanges of [false, true]) {
    test(`getBlob resumes after a connection cut (${noRanges ? 'restart from zero' : 'Range'})`, async () => {
      const c0 = client({host: open.host})
      const man = JSON.parse((await c0.getManifest('testbed/big', '1')).bytes.toString()) as ImageManifest
      const layer = man.layers[0]
      assert.ok(layer.size > 1024 * 1024)
      const proxy = await startFaultProxy(open.host, {cutBlobAfter: 700_000, noRanges})
      try {
        const retries: RetryInfo[] = []
        const c = client({host: proxy.host, onRetry: (i) => retries.push(i)})
        const s = await c.getBlob('testbed/big', layer.digest, layer.size)
        const bytes = await collect(s)
        assert.equal(bytes.length, layer.size)
        assert.equal(sha(bytes), layer.digest)
        assert.equal(retries.length, 1)
        const gets = proxy.log.filter((l) => l.startsWith('GET') && l.includes('/blobs/'))
        assert.equal(gets.length, 2)
        if (noRanges) assert.match(gets[1], /range=-$/)
        else assert.match(gets[1], /range=bytes=\d+-$/)
      } finally {
        await proxy.close()
      }
    })
  }

  test('getBlob preserves backpressure (does not read the whole blob ahead)', async () => {
    const c = client({host: open.host})
    const man = JSON.parse((await c.getManifest('testbed/big', '1')).bytes.toString()) as ImageManifest
    const layer = man.layers[0]
    const s = await c.getBlob('testbed/big', layer.digest, layer.size)
    await new Promise((r) => setTimeout(r, 300))
    // nothing consumed yet: at most the stream buffer (1 MiB) + socket buffers are held
    assert.ok(s.readableLength <= 2 * 1024 * 1024, `buffered ${s.readableLength}`)
    assert.ok(s.readableLength < layer.size)
    const bytes = await collect(s)
    assert.equal(sha(bytes), layer.digest)
  })

  test('Bearer token flow against a token-auth docker-registry (tokens cached per scope)', async () => {
    const ts = await startTokenService(dir)
    const reg = await startRegistry(
      dir,
      'bearer',
      undefined,
      `auth: {token: {realm: "${ts.realm}", service: airlock-test-registry, issuer: airlock-test-issuer, rootcertbundle: ${ts.certFile}}}\n`,
    )
    try {
      const anon = client({host: reg.host})
      const e = await rejectsWith(anon.getManifest('bearer/img', '1'), 'registry.unauthorized')
      assert.ok(!e.message.includes(PASS))
      const wrong = client({host: reg.host, credentials: {username: USER, password: 'nope-nope'}})
      const e2 = await rejectsWith(wrong.ping(), 'registry.unauthorized')
      assert.match(e2.message, /rejected the credentials/)
      assert.ok(!e2.message.includes('nope-nope'))

      const c = client({host: reg.host, credentials: {username: USER, password: PASS}})
      const first = ts.requests.length
      await c.ping()
      const data = Buffer.from('bearer layer')
      const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
      assert.equal(await c.putBlob('bearer/img', sha(data), data.length, () => Readable.from([data])), 'uploaded')
      assert.equal(await c.putBlob('bearer/img', sha(config), config.length, () => Readable.from([config])), 'uploaded')
      const man = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.OCI_MANIFEST,
          config: {mediaType: MediaType.OCI_CONFIG, digest: sha(config), size: config.length},
          layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(data), size: data.length}],
        }),
      )
      const d = await c.putManifest('bearer/img', '1', man, MediaType.OCI_MANIFEST)
      assert.equal((await c.getManifest('bearer/img', '1')).digest, d)
      assert.equal(sha(await collect(await c.getBlob('bearer/img', sha(data), data.length))), sha(data))
      assert.equal(await c.putBlob('bearer/copy', sha(data), data.length, () => Readable.from([data]), {mountFrom: 'bearer/img'}), 'mounted')
      assert.deepEqual(await c.listTags('bearer/img'), ['1'])
      // one token per distinct scope set, reused across requests
      const mine = ts.requests.slice(first)
      assert.equal(new Set(mine).size, mine.length, `no duplicate token requests: ${JSON.stringify(mine)}`)
      assert.ok(ts.requests.includes('repository:bearer/img:pull,push'))
      assert.ok(ts.requests.includes('repository:bearer/img:pull'))
      assert.ok(ts.requests.some((r) => r.includes('repository:bearer/copy:pull,push') && r.includes('repository:bearer/img:pull')))
    } finally {
      reg.proc.kill()
      await ts.close()
    }
  })

  test('blob redirect to another origin: followed, Authorization not forwarded', async () => {
    const good = client({host: priv.host, credentials: {username: USER, password: PASS}})
    const man = JSON.parse((await good.getManifest('private/secret', '1')).bytes.toString()) as ImageManifest
    const layer = man.layers[0]
    const bytes = await collect(await good.getBlob('private/secret', layer.digest, layer.size))
    // "storage": another origin serving the blob bytes, recording the headers it got
    const seen: Array<string | undefined> = []
    const storage = http.createServer((req, res) => {
      seen.push(req.headers.authorization)
      res.writeHead(200, {'Content-Length': bytes.length, 'Accept-Ranges': 'bytes'})
      res.end(bytes)
    })
    await new Promise<void>((r) => storage.listen(0, '127.0.0.1', () => r()))
    const storageURL = `http://127.0.0.1:${(storage.address() as net.AddressInfo).port}/store/blob?sig=x`
    // front: the real auth registry, except blob GETs that it has authorised are redirected
    const front = http.createServer((req, res) => {
      const up = http.request({host: '127.0.0.1', port: Number(priv.host.split(':')[1]), method: req.method, path: req.url, headers: req.headers}, (ur) => {
        if (req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '') && ur.statusCode === 200) {
          ur.resume()
          res.writeHead(307, {Location: storageURL})
          res.end()
          return
        }
        res.writeHead(ur.statusCode ?? 502, ur.headers)
        ur.pipe(res)
      })
      req.pipe(up)
    })
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()))
    try {
      const c = client({host: `127.0.0.1:${(front.address() as net.AddressInfo).port}`, credentials: {username: USER, password: PASS}})
      const got = await collect(await c.getBlob('private/secret', layer.digest, layer.size))
      assert.equal(sha(got), layer.digest)
      assert.deepEqual(seen, [undefined])
    } finally {
      for (const s of [storage, front]) {
        s.closeAllConnections()
        s.close()
      }
    }
  })
})
