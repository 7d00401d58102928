/**
 * Hostile archives: a seeded fuzz/property test. A valid signed archive is mutated (header fields,
 * sizes, names, types, order, truncation, huge declared sizes, duplicates, PAX 'x'/'g', GNU 'L',
 * prefix-field names, base-256 sizes, bad checksums, non-zero trailer, flipped data bytes) and
 * every case must be refused by readArchive with a VerifyError: never a crash, a hang (per-case
 * timeout), unbounded memory, or a write outside the target. A sample also goes through the CLI
 * (`verify`, `install --to oci:`): test/integration/hostile-cli.test.ts.
 */
import assert from 'node:assert/strict'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'

import * as openpgp from 'openpgp'

import {VerifyError} from '../../../../src/core/errors.js'
import {readArchive} from '../../../../src/transports/archive/reader.js'
import {hostileFixture, MUTATIONS, prng, SEED} from '../../../helpers/hostile.js'

const CASES = 320
const CASE_TIMEOUT_MS = 5000

let dir: string
let valid: Buffer
let pub: openpgp.Key

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`HANG: ${what}`)), ms)))])
  } finally {
    clearTimeout(t)
  }
}

describe('hostile archives (seeded fuzz)', {timeout: 240_000}, () => {
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-hostile-'))
    const fixture = await hostileFixture(dir)
    valid = fixture.valid
    pub = fixture.pub
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it(`${CASES} seeded mutations are each refused with a VerifyError, fast and in bounded memory`, async () => {
    const r = prng(SEED)
    const names = Object.keys(MUTATIONS)
    const codes = new Map<string, number>()
    const problems: string[] = []
    const file = path.join(dir, 'case.tar')
    const rss0 = process.memoryUsage().rss
    let maxRss = rss0
    const t0 = Date.now()
    for (let i = 0; i < CASES; i++) {
      const m = names[i % names.length]
      const bytes = MUTATIONS[m](Buffer.from(valid), r)
      if (bytes.equals(valid)) continue
      await writeFile(file, bytes)
      const what = `case ${i} (${m}, seed ${SEED.toString(16)})`
      try {
        await withTimeout(readArchive([file], {trustedKeys: [pub]}), CASE_TIMEOUT_MS, what)
        problems.push(`${what}: ACCEPTED`)
      } catch (error) {
        if (!(error instanceof VerifyError)) problems.push(`${what}: ${(error as Error).name}: ${(error as Error).message}`)
        else {
          codes.set(error.code, (codes.get(error.code) ?? 0) + 1)
          assert.ok(error.message.length > 10 && error.message.length < 600, `${what}: message ${JSON.stringify(error.message)}`)
        }
      }
      maxRss = Math.max(maxRss, process.memoryUsage().rss)
    }
    const ms = Date.now() - t0
    assert.deepEqual(problems, [])
    // huge declared sizes are refused before any buffering
    assert.ok(maxRss - rss0 < 200 * 1024 * 1024, `rss grew by ${maxRss - rss0}`)
    assert.ok(codes.size >= 8, JSON.stringify([...codes]))
    console.log(`  ${CASES} cases in ${ms} ms, rss +${Math.round((maxRss - rss0) / 1048576)} MiB; codes: ${[...codes].map(([c, n]) => `${c}×${n}`).join(', ')}`)
  })

})
