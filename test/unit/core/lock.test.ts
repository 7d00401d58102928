import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {describe, it} from 'node:test'

import {AirlockError} from '../../../src/core/errors.js'
import {withFileLock} from '../../../src/core/lock.js'

describe('withFileLock', () => {
  it('runs the function under the lock and removes it afterwards, also on failure', async () => {
    const lock = path.join(await mkdtemp(path.join(os.tmpdir(), 'airlock-lock-')), 'x.lock')
    assert.equal(await withFileLock(lock, 'x', async () => existsSync(lock) ? 'held' : 'not held'), 'held')
    assert.ok(!existsSync(lock))
    await assert.rejects(withFileLock(lock, 'x', async () => { throw new Error('boom') }), /boom/)
    assert.ok(!existsSync(lock))
  })

  it('a lock held by a live airlock (node) process is refused at once, naming its pid and command', async () => {
    const lock = path.join(await mkdtemp(path.join(os.tmpdir(), 'airlock-lock-')), 'x.lock')
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], {stdio: 'ignore'})
    try {
      await writeFile(lock, JSON.stringify({pid: holder.pid, command: 'sign big.tar'}))
      let ran = false
      await assert.rejects(withFileLock(lock, 'the signature of big.tar', async () => { ran = true }), (e: unknown) =>
        e instanceof AirlockError && e.code === 'fs.locked' && e.message.includes(`pid ${holder.pid}`) && e.message.includes('sign big.tar'))
      assert.equal(ran, false)
      assert.ok(existsSync(lock), 'the holder keeps its lock')
    } finally {
      holder.kill()
    }
  })

  it('a lock left by a process that is gone is taken over', async () => {
    const lock = path.join(await mkdtemp(path.join(os.tmpdir(), 'airlock-lock-')), 'x.lock')
    await writeFile(lock, JSON.stringify({pid: 2 ** 22 + 12345, command: 'sign'}))
    assert.equal(await withFileLock(lock, 'x', async () => 'ok'), 'ok')
  })

  it('names of its own that a killed process left beside the lock are removed; a live one\'s are kept', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-lock-'))
    const lock = path.join(dir, 'x.lock')
    const dead = 2 ** 22 + 12345
    const left = [`x.lock.${dead}.0123abcd`, `x.lock.stale.${dead}.89abcdef`]
    const live = `x.lock.${process.pid}.deadbeef`
    for (const n of [...left, live, 'x.lock.other']) await writeFile(path.join(dir, n), '')
    await withFileLock(lock, 'x', async () => undefined)
    for (const n of left) assert.ok(!existsSync(path.join(dir, n)), `${n} was left`)
    assert.ok(existsSync(path.join(dir, live)) && existsSync(path.join(dir, 'x.lock.other')))
  })
})
