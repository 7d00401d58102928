/**
 * `airlock diff` of two real bundles made by `create` from the testbed: one image changes (the
 * same name on the target, from app-b to app-c), one gains a platform, one goes. The byte counts
 * must be exactly those of the differential bundle `create --since OLD` writes, read from its
 * signed metadata; and diff reads only the metadata (a copy cut after it diffs the same).
 */
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {mkdtemp, open, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {after, before, describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {Testbed, testbed} from '../helpers/testbed.js'
import type {DiffResult} from '../../src/verify/diff.js'
import type {AirlockMetadata} from '../../src/transports/archive/metadata.js'

const execFileP = promisify(execFile)
const CHANGING = '127.0.0.1:5301/mirror-h/app:1'

let tb: Testbed
let dir: string

function airlock(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(args, {cwd: dir, env: {...tb.processEnv, ...env}})
}

const bundle = (version: string, images: string) => `apiVersion: airlock/v1
kind: Bundle
metadata: {name: mirror-h-diff, version: ${version}}
images:
${images}`

describe('diff of two real bundles', {timeout: 600_000}, () => {
  let diff: DiffResult
  let since: AirlockMetadata
  before(async () => {
    tb = await testbed()
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-mirror-h-diff-'))
    const img = tb.images
    await writeFile(path.join(dir, 'old.yaml'), bundle('1.0.0', `  - ${img['app-a'].ref}
  - ${img.base.ref}
  - {ref: ${img['app-b'].ref}, name: ${CHANGING}}
  - {ref: ${img.multi.ref}, platforms: [linux/amd64]}
`))
    await writeFile(path.join(dir, 'new.yaml'), bundle('1.1.0', `  - ${img['app-a'].ref}
  - {ref: ${img['app-c'].ref}, name: ${CHANGING}}
  - {ref: ${img.multi.ref}, platforms: all}
`))
    assert.equal(airlock(['key', 'generate', '--name', 'Diff', '--out', 'release']).code, 0)
    const cache = path.join(dir, 'cache')
    for (const args of [['old.yaml', '-o', 'old.tar'], ['new.yaml', '-o', 'new.tar'], ['new.yaml', '-o', 'since.tar', '--since', 'old.tar']]) {
      const r = airlock(['create', ...args, '--sign-key', 'release.key.asc', '--cache-dir', cache])
      assert.equal(r.code, 0, r.stderr)
    }
    const r = airlock(['diff', 'old.tar', 'new.tar', '--key', 'release.pub.asc', '--json'])
    assert.equal(r.code, 0, r.stderr)
    diff = JSON.parse(r.stdout) as DiffResult
    since = JSON.parse((await execFileP('tar', ['-xOf', path.join(dir, 'since.tar'), 'airlock.json'])).stdout) as AirlockMetadata
  })
  after(() => rm(dir, {recursive: true, force: true}))

  it('images: the changed one old → new, the platform added, the removed one, the unchanged one', () => {
    const img = tb.images
    assert.deepEqual(diff.added, [])
    assert.deepEqual(diff.removed.map((i) => [i.name, i.digest]), [[img.base.ref, img.base.digest]])
    assert.deepEqual(diff.unchanged, [img['app-a'].ref])
    const app = diff.changed.find((c) => c.name === CHANGING)!
    assert.deepEqual([app.old, app.new], [img['app-b'].digest, img['app-c'].digest])
    assert.deepEqual(app.platforms, [{platform: 'linux/amd64', change: 'changed', old: img['app-b'].digest, new: img['app-c'].digest}])
    const multi = diff.changed.find((c) => c.name === img.multi.ref)!
    assert.deepEqual(multi.platforms.map((p) => [p.platform, p.change]), [['linux/arm64/v8', 'added']])
    assert.equal(diff.changed.length, 2)
  })

  it('new layers are those the testbed says app-c and multi\'s arm64 add; base\'s layer is shared, app-b\'s own is gone', () => {
    const img = tb.images
    const known = (i: typeof img.base) => new Set(i.manifests.flatMap((m) => m.layers))
    const oldLayers = new Set([...known(img['app-a']), ...known(img.base), ...img['app-b'].manifests[0].layers, ...img.multi.manifests.filter((m) => m.platform === 'linux/amd64').flatMap((m) => m.layers)])
    const newLayers = new Set([...known(img['app-a']), ...known(img['app-c']), ...known(img.multi)])
    assert.deepEqual(diff.layers.added.map((b) => b.digest).sort(), [...newLayers].filter((l) => !oldLayers.has(l)).sort())
    assert.deepEqual(diff.layers.removed.map((b) => b.digest).sort(), [...oldLayers].filter((l) => !newLayers.has(l)).sort())
    assert.ok(diff.layers.added.length > 0 && diff.layers.removed.length > 0)
  })

  it('the byte counts are those of the bundle create --since OLD wrote', () => {
    assert.deepEqual(diff.differential, {
      blobs: since.blobs.count, bytes: since.blobs.bytes,
      leftOut: {blobs: since.base!.blobs.length, bytes: since.base!.blobs.reduce((n, b) => n + b.size, 0)},
    })
    // every new layer is shipped in the differential bundle; nothing it ships is a layer OLD had
    const leftOut = new Set(since.base!.blobs.map((b) => b.digest))
    for (const l of diff.layers.added) assert.ok(!leftOut.has(l.digest), l.digest)
    assert.equal(diff.layers.addedBytes, diff.layers.added.reduce((n, b) => n + b.size, 0))
  })

  it('reads only the metadata: a copy of NEW cut after its metadata diffs the same', async () => {
    const cut = path.join(dir, 'cut.tar')
    const fh = await open(path.join(dir, 'new.tar'))
    const {bytesRead, buffer} = await fh.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0)
    await fh.close()
    await writeFile(cut, buffer.subarray(0, bytesRead))
    const r = airlock(['diff', 'old.tar', 'cut.tar', '--key', 'release.pub.asc', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout) as DiffResult
    assert.deepEqual({...j, new: {...j.new, archive: 'new.tar'}}, diff)
  })

  it('a table on the terminal', () => {
    const r = airlock(['diff', 'old.tar', 'new.tar', '--key', 'release.pub.asc'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^mirror-h-diff 1\.0\.0 → mirror-h-diff 1\.1\.0$/m)
    assert.match(r.stdout, /^ {2}IMAGE +CHANGE +OLD +NEW$/m)
    assert.match(r.stdout, new RegExp(`^ {2}${CHANGING.replace(/[.]/g, '\\.')} +changed +sha256:[0-9a-f]{12} +sha256:[0-9a-f]{12}$`, 'm'))
    assert.match(r.stdout, /^ {6}linux\/arm64\/v8 +added +sha256:[0-9a-f]{12}$/m)
    assert.match(r.stdout, /create --since old\.tar: \d+ blobs/)
  })

  it('both signatures are checked as verify checks them', () => {
    assert.equal(airlock(['diff', 'old.tar', 'new.tar'], {AIRLOCK_TRUSTED_KEYS: ''}).code, 2)
    assert.equal(airlock(['key', 'generate', '--name', 'Other', '--out', 'other']).code, 0)
    assert.equal(airlock(['diff', 'old.tar', 'new.tar', '--key', 'other.pub.asc']).code, 3)
    const unchecked = airlock(['diff', 'old.tar', 'new.tar', '--allow-unsigned'])
    assert.equal(unchecked.code, 0, unchecked.stderr)
    assert.match(unchecked.stdout, /\(signature not checked\)/)
  })
})
