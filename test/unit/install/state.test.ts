/**
 * The installed-versions record behind rollback protection (src/install/state.ts): reading it,
 * recording an install, refusing a downgrade. The CLI side is test/integration/rollback.test.ts.
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import {AirlockError, VerifyError} from '../../../src/core/errors.js'
import {checkDowngrade, compareVersions, defaultStateFile, type InstalledRecord, readState, recordInstall, stateKey} from '../../../src/install/state.js'

let dir: string

const record = (over: Partial<InstalledRecord> = {}): InstalledRecord => ({
  name: 'shop', version: '1.2.0', archive: '/media/shop-1.2.0.tar', target: 'oci:/srv/oci', installedAt: '2026-01-02T03:04:05.000Z', ...over,
})

describe('rollback protection (installed-versions state file)', () => {
  it('compares versions semver-aware, with a segment-wise fallback', () => {
    assert.equal(compareVersions('1.10.0', '1.9.0'), 1)
    assert.equal(compareVersions('2.0.0-rc.1', '2.0.0'), -1)
    assert.equal(compareVersions('2.0.0-rc.2', '2.0.0-rc.10'), -1)
    assert.equal(compareVersions('2.0.0-alpha', '2.0.0-alpha.1'), -1)
    assert.equal(compareVersions('v1.2.3', '1.2.3+build.7'), 0)
    assert.equal(compareVersions('2024.10', '2024.9'), 1)
    assert.equal(compareVersions('1', '1.0.1'), -1)
    assert.equal(compareVersions('b', 'a'), 1)
  })
})

describe('install state: read, record, refuse a downgrade', () => {
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-state-'))
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('a missing state file reads as empty; no file is created by reading', async () => {
    const file = path.join(dir, 'none', 'installed.json')
    assert.deepEqual(await readState(file), {version: 1, bundles: {}})
    await assert.rejects(readFile(file), {code: 'ENOENT'})
  })

  it('a state file that is not JSON, or not the known format, is refused as state.corrupt naming the file', async () => {
    const file = path.join(dir, 'bad.json')
    for (const text of ['{not json', '[]', 'null', '{"version":2,"bundles":{}}', '{"version":1}', '{"version":1,"bundles":"x"}']) {
      await writeFile(file, text)
      await assert.rejects(readState(file), (e: unknown) => {
        assert.ok(e instanceof AirlockError, String(e))
        assert.equal(e.code, 'state.corrupt', text)
        assert.ok(e.message.includes(file), e.message)
        return true
      })
    }
  })

  it('a state file that cannot be read (a directory) is state.unreadable, not a raw error', async () => {
    const file = path.join(dir, 'a-directory')
    await mkdir(file)
    await assert.rejects(readState(file), (e: unknown) => e instanceof AirlockError && e.code === 'state.unreadable' && e.message.includes(file))
  })

  it('recordInstall creates the folder, keys each record by name and target, keeps the others, and leaves no temp file', async () => {
    const file = path.join(dir, 'deep', 'er', 'installed.json')
    await recordInstall(file, record())
    await recordInstall(file, record({target: 'docker'}))
    await recordInstall(file, record({version: '1.3.0', contentSha256: 'ab'.repeat(32)}))
    const state = await readState(file)
    assert.deepEqual(Object.keys(state.bundles).sort(), [stateKey('shop', 'docker'), stateKey('shop', 'oci:/srv/oci')].sort())
    assert.equal(stateKey('shop', 'docker'), 'shop → docker')
    assert.equal(state.bundles['shop → oci:/srv/oci'].version, '1.3.0')
    assert.equal(state.bundles['shop → oci:/srv/oci'].contentSha256, 'ab'.repeat(32))
    assert.equal(state.bundles['shop → docker'].version, '1.2.0')
    assert.deepEqual(await readdir(path.dirname(file)), ['installed.json'])
    assert.ok((await readFile(file, 'utf8')).endsWith('}\n'))
  })

  it('recordInstall over a corrupt file starts a new record rather than failing the install', async () => {
    const file = path.join(dir, 'was-corrupt.json')
    await writeFile(file, '{oops')
    await recordInstall(file, record())
    assert.deepEqual(Object.keys((await readState(file)).bundles), ['shop → oci:/srv/oci'])
  })

  it('checkDowngrade refuses an older version on the same target only, as VerifyError bundle.downgrade', async () => {
    const file = path.join(dir, 'downgrade.json')
    await recordInstall(file, record({version: '1.10.0'}))
    const state = await readState(file)
    assert.throws(() => checkDowngrade(state, {name: 'shop', version: '1.9.0'}, file, 'oci:/srv/oci'), (e: unknown) => {
      assert.ok(e instanceof VerifyError)
      assert.equal(e.code, 'bundle.downgrade')
      assert.match(e.message, /bundle shop 1\.9\.0 is older than version 1\.10\.0, installed 2026-01-02T03:04:05\.000Z to oci:\/srv\/oci: .*--allow-downgrade/)
      return true
    })
    // the same version, a newer one, another target, another bundle: all fine
    checkDowngrade(state, {name: 'shop', version: '1.10.0'}, file, 'oci:/srv/oci')
    checkDowngrade(state, {name: 'shop', version: '2.0.0'}, file, 'oci:/srv/oci')
    checkDowngrade(state, {name: 'shop', version: '0.1.0'}, file, 'docker')
    checkDowngrade(state, {name: 'other', version: '0.1.0'}, file, 'oci:/srv/oci')
    // a record under an inherited property name is not a record
    checkDowngrade({version: 1, bundles: {}}, {name: 'constructor', version: '0.0.1'}, file, '')
  })

  it('the default state file: $AIRLOCK_STATE_FILE, else $XDG_STATE_HOME/airlock, else ~/.local/state/airlock', () => {
    assert.equal(defaultStateFile({AIRLOCK_STATE_FILE: 'rel/state.json', XDG_STATE_HOME: '/x'}), path.resolve('rel/state.json'))
    assert.equal(defaultStateFile({XDG_STATE_HOME: '/x'}), '/x/airlock/installed.json')
    assert.equal(defaultStateFile({AIRLOCK_STATE_FILE: '', XDG_STATE_HOME: ''}), path.join(os.homedir(), '.local', 'state', 'airlock', 'installed.json'))
  })
})

describe('install state file and links', () => {
  it('a state file that is a symbolic link is refused (not read, not renamed over), and its content is never quoted', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-state-link-'))
    const elsewhere = path.join(dir, 'shadow')
    await writeFile(elsewhere, 'root:$6$not-for-your-eyes:19000::::::\n')
    const file = path.join(dir, 'installed.json')
    await symlink(elsewhere, file)
    for (const attempt of [() => readState(file), () => recordInstall(file, record())]) {
      await assert.rejects(attempt(), (e: unknown) => e instanceof AirlockError && e.code === 'state.link' && !e.message.includes('not-for-your-eyes'))
    }
    assert.equal(await readFile(elsewhere, 'utf8'), 'root:$6$not-for-your-eyes:19000::::::\n')
  })
})

describe('install state file: file-system errors', () => {
  it('a folder that cannot be made (a file stands in its place) is a clear error naming the file, not a raw EEXIST', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-state-eexist-'))
    await writeFile(path.join(dir, 'blocker'), 'x')
    const file = path.join(dir, 'blocker', 'installed.json')
    await assert.rejects(recordInstall(file, record()), (e: unknown) => e instanceof AirlockError && e.code === 'state.unwritable' && e.message.includes(file) && /EEXIST|ENOTDIR/.test(e.message))
  })
})
