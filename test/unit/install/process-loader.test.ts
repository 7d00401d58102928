/**
 * ProcessLoader (src/install/process-loader.ts) with a real, tiny loader process (`node -e`): the
 * verified tar reaches its stdin whole and ends only at finish(); kill() stops it before it ever
 * sees the end of its input; an early exit, a failure or a missing binary are reported clearly.
 */
import assert from 'node:assert/strict'
import {createHash, randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {AirlockError} from '../../../src/core/errors.js'
import {ProcessLoader, reasonOf, run} from '../../../src/transports/process-loader.js'
import type {VerifiedHead} from '../../../src/transports/archive/reader.js'
import type {ImageRecord} from '../../../src/transports/archive/metadata.js'
import {splitTar} from '../../helpers/archive.js'

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`
const CODE = 'install.podman_failed' as const

/** Reads its stdin to the end, then writes it to argv[1] and exits with argv[2] (default 0). Creates argv[1].reading on its first input. */
const SAVE_STDIN = `
const chunks = []
process.stdin.on('data', (b) => { if (chunks.length === 0) require('fs').writeFileSync(process.argv[1] + '.reading', ''); chunks.push(b) })
process.stdin.on('end', () => {
  require('fs').writeFileSync(process.argv[1], Buffer.concat(chunks))
  if (process.argv[2]) { process.stderr.write('loading\\nrefused: not today\\n'); process.exit(Number(process.argv[2])) }
})
`

const image = (layer: string): ImageRecord => ({
  ref: 'x', name: 'example.test/x:1', mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:' + 'a'.repeat(64), size: 1,
  sourceDigest: 'sha256:' + 'a'.repeat(64), platforms: ['linux/amd64'],
  manifests: [{digest: 'sha256:' + 'a'.repeat(64), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1, platform: 'linux/amd64', config: 'sha256:' + 'c'.repeat(64), layers: [layer]}],
  dockerManifest: 'sha256:' + 'a'.repeat(64), blobs: [{digest: layer, size: 1}],
})

async function* pieces(buf: Buffer, size = 64 * 1024): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size)
}

const loader = (args: string[], bin = process.execPath) => new ProcessLoader({tool: 'testloader', bin, args, code: CODE, what: 'loading example.test/x:1'})

let dir: string

describe('ProcessLoader: a loader process fed the verified tar on its stdin', () => {
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-loader-'))
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('the process gets the whole tar (layout, manifest.json, the blob) and its end only at finish()', async () => {
    const out = path.join(dir, 'whole.tar')
    const layer = randomBytes(600_000)
    const digest = sha(layer)
    const l = loader(['-e', SAVE_STDIN, out])
    l.start()
    await l.guard(() => l.tar.begin({} as VerifiedHead, [image(digest)]))
    await l.guard(() => l.tar.blob(digest, layer.length, pieces(layer)))
    await new Promise((r) => setTimeout(r, 200))
    assert.equal(existsSync(out), false, 'the loader saw the end of its input before finish()')
    const r = await l.finish()
    assert.equal(r.code, 0)
    const entries = splitTar(await readFile(out))
    assert.deepEqual(entries.map((e) => e.name), ['oci-layout', 'index.json', 'manifest.json', `blobs/sha256/${digest.slice(7)}`])
    assert.ok(entries[3].data.equals(layer))
  })

  it('kill() stops the process before it sees the end of its input, and that is not reported as its failure', async () => {
    const out = path.join(dir, 'killed.tar')
    const layer = randomBytes(100_000)
    const digest = sha(layer)
    const l = loader(['-e', SAVE_STDIN, out])
    l.start()
    await l.guard(() => l.tar.begin({} as VerifiedHead, [image(digest)]))
    await l.guard(() => l.tar.blob(digest, layer.length, pieces(layer)))
    while (!existsSync(`${out}.reading`)) await new Promise((r) => setTimeout(r, 10))
    await l.kill(new Error('the archive failed verification'))
    assert.equal(existsSync(out), false, 'the killed loader read an end of input')
    assert.equal(l.earlyError(), undefined)
  })

  it('a process that exits before the archive is complete: its exit status and last stderr lines, with the tool\'s code', async () => {
    // More than the stream buffers (~8 MiB), so the blob is still being written when the process is gone.
    const layer = Buffer.alloc(32 * 1024 * 1024, 1)
    const digest = sha(layer)
    const l = loader(['-e', 'process.stderr.write("opening\\nbad archive: nope\\n"); process.exit(3)'])
    l.start()
    await assert.rejects(async () => {
      await l.guard(() => l.tar.begin({} as VerifiedHead, [image(digest)]))
      await l.guard(() => l.tar.blob(digest, layer.length, pieces(layer)))
      await l.finish()
    }, (e: unknown) => {
      assert.ok(e instanceof AirlockError, String(e))
      assert.equal(e.code, CODE)
      assert.match(e.message, /^loading example\.test\/x:1: testloader stopped before the archive was complete \(exit code 3\): opening \| bad archive: nope$/)
      return true
    })
  })

  it('a process that reads everything and then fails: "failed", its exit status and reason', async () => {
    const out = path.join(dir, 'failed.tar')
    const layer = randomBytes(1000)
    const digest = sha(layer)
    const l = loader(['-e', SAVE_STDIN, out, '4'])
    l.start()
    await l.guard(() => l.tar.begin({} as VerifiedHead, [image(digest)]))
    await l.guard(() => l.tar.blob(digest, layer.length, pieces(layer)))
    await assert.rejects(l.finish(), (e: unknown) => {
      assert.ok(e instanceof AirlockError)
      assert.equal(e.code, CODE)
      assert.equal(e.message, 'loading example.test/x:1: testloader failed (exit code 4): loading | refused: not today')
      return true
    })
  })

  it('a missing binary is TOOL_not_found, saying to install it', async () => {
    const layer = randomBytes(1000)
    const digest = sha(layer)
    const bin = path.join(dir, 'no-such-loader')
    const l = loader([], bin)
    l.start()
    await assert.rejects(async () => {
      await l.guard(() => l.tar.begin({} as VerifiedHead, [image(digest)]))
      await l.guard(() => l.tar.blob(digest, layer.length, pieces(layer)))
      await l.finish()
    }, (e: unknown) => {
      assert.ok(e instanceof AirlockError, String(e))
      assert.equal(e.code, 'install.podman_not_found')
      assert.equal(e.message, `testloader not found (${bin}): install it or put it on PATH`)
      return true
    })
  })
})

describe('process-loader helpers', () => {
  it('reasonOf: the last three non-blank lines of stderr, else of stdout', () => {
    assert.equal(reasonOf('a\n\n b \nc\nd\n'), 'b | c | d')
    assert.equal(reasonOf('', 'only stdout\n'), 'only stdout')
    assert.equal(reasonOf('\n  \n'), 'no error output')
    assert.equal(reasonOf('x'.repeat(5000)).length, 2000)
  })

  it('run: stdout on success; the tool\'s reason, or TOOL_not_found, on failure', async () => {
    const opts = {code: CODE, tool: 'testloader', what: 'listing images'}
    assert.equal(await run(process.execPath, ['-e', 'process.stdout.write("one\\ntwo\\n")'], opts), 'one\ntwo\n')
    await assert.rejects(run(process.execPath, ['-e', 'console.error("no such namespace"); process.exit(1)'], opts), (e: unknown) =>
      e instanceof AirlockError && e.code === CODE && e.message === 'listing images: no such namespace')
    await assert.rejects(run('/nonexistent/testloader', [], opts), (e: unknown) =>
      e instanceof AirlockError && e.code === 'install.podman_not_found' && /testloader not found \(\/nonexistent\/testloader\)/.test(e.message))
  })
})
