import assert from 'node:assert/strict'
import {readdirSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, it} from 'node:test'

import {ERROR_CODES} from '../../../src/core/error-codes.js'

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src')

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n)
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : []
  })
}

describe('error codes', () => {
  it('are one closed list in one spelling (area.snake_case), each once', () => {
    for (const code of ERROR_CODES) assert.match(code, /^[a-z]+\.[a-z0-9]+(_[a-z0-9]+)*$/, code)
    assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length)
  })

  it('every code in the list is used somewhere in src/ (no stale entries)', () => {
    const text = sources(SRC).filter((f) => !f.endsWith('error-codes.ts')).map((f) => readFileSync(f, 'utf8')).join('\n')
    // schema.* codes are built from the JSON Schema keyword (schemaCode in src/spec/schema-issues.ts).
    const unused = ERROR_CODES.filter((c) => !text.includes(`'${c}'`) && !c.startsWith('schema.'))
    assert.deepEqual(unused, [])
  })
})
