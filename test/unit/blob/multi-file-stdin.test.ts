/**
 * STDIN (`-`) as a part: descriptor 0 read front to back, in a child process whose standard input
 * is a pipe the test writes to slowly. The child first makes that pipe non-blocking (as creating
 * process.stdin does), so a read finds nothing yet (EAGAIN) and must wait, not fail. Closing the
 * MultiFile leaves descriptor 0 open.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {describe, it} from 'node:test'

const MODULE = new URL('../../../src/blob/multi-file.ts', import.meta.url).href

const CHILD = `
import {fstatSync} from 'node:fs'
import {createHash} from 'node:crypto'
const {MultiFile, STDIN} = await import(${JSON.stringify(MODULE)})
void process.stdin.isTTY
const f = await MultiFile.open([STDIN])
process.stderr.write('ready\\n')
const hash = createHash('sha256')
let total = 0
const buf = Buffer.alloc(1 << 20)
for (;;) {
  const n = await f.readNext(0, buf, 0, buf.length)
  if (n === 0) break
  hash.update(buf.subarray(0, n))
  total += n
}
await f.close()
fstatSync(0)
process.stdout.write(JSON.stringify({total, sha: hash.digest('hex')}))
process.exit(0)
`

describe('MultiFile: standard input', () => {
  it('reads a slow, non-blocking pipe to its end, and leaves descriptor 0 open', async () => {
    const data = randomBytes(700_000)
    // A module file: \`node -e\` leaves standard input as it is.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'airlock-stdin-'))
    writeFileSync(path.join(dir, 'child.mjs'), CHILD)
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(dir, 'child.mjs')], {stdio: ['pipe', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve))
    // Written only once the child reads: it finds the pipe empty between the pieces.
    let exited = false
    void closed.then(() => { exited = true })
    while (!err.includes('ready\n') && !exited) await sleep(20)
    for (let at = 0; at < data.length; at += 100_000) {
      child.stdin.write(data.subarray(at, at + 100_000))
      await sleep(50)
    }
    child.stdin.end()
    const code = await closed
    rmSync(dir, {recursive: true, force: true})
    assert.equal(code, 0, err)
    assert.deepEqual(JSON.parse(out), {total: data.length, sha: createHash('sha256').update(data).digest('hex')})
  })
})
