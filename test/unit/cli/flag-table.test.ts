/** The one reading of `verify`'s command line shared by the fast path and the early start (src/cli/flag-table.ts). */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseArgv, VERIFY_FLAGS} from '../../../src/cli/flag-table.js'
import {oclifFlags} from '../../../src/cli/flags.js'
import Verify from '../../../src/commands/verify.js'

const parse = (...argv: string[]) => parseArgv(VERIFY_FLAGS, argv)

describe('verify flag table', () => {
  it('the oclif command declares exactly the table\'s flags (builtins aside), with the same short names and kinds', () => {
    const built = oclifFlags(VERIFY_FLAGS) as Record<string, {char?: string; type: string; multiple?: boolean}>
    assert.deepEqual(Object.keys(Verify.flags).sort(), Object.keys(built).sort())
    for (const [name, spec] of Object.entries(VERIFY_FLAGS)) {
      if ('builtin' in spec) continue
      const f = built[name]
      assert.equal(f.type, spec.value ? 'option' : 'boolean', name)
      assert.equal(f.char, 'char' in spec ? spec.char : undefined, name)
      assert.equal(Boolean(f.multiple), 'multiple' in spec, name)
    }
  })

  it('the plain form', () => {
    const p = parse('a.tar', '--key', 'k.asc', '-k', 'j.asc', '--key=l.asc', '--allow-unsigned', '--json')
    assert.deepEqual(p, {args: ['a.tar'], flags: new Map([['key', ['k.asc', 'j.asc', 'l.asc']], ['allow-unsigned', ['']], ['json', ['']]]), plain: true})
    assert.equal(parse('a.tar', '--hash-threads', '3')?.plain, true)
    // `-` is standard input: an argument, and a plain one; --quiet is every command's.
    assert.deepEqual(parse('-', '--key', 'k.asc', '-q'), {args: ['-'], flags: new Map([['key', ['k.asc']], ['quiet', ['']]]), plain: true})
    assert.equal(parse('--key', '-', 'a.tar')?.plain, false, 'a value that looks like a flag')
  })

  it('accepted as oclif would, but not plain: --, -kFILE, a repeated switch, a value like a flag, an empty value', () => {
    for (const argv of [['--', 'a.tar'], ['a.tar', '-kk.asc'], ['a.tar', '--json', '--json'], ['a.tar', '--key', '-x'], ['a.tar', '--key='], ['a.tar', '--hash-threads', '1', '--hash-threads', '2'], ['']]) {
      assert.equal(parse(...argv)?.plain, false, argv.join(' '))
    }
    assert.deepEqual(parse('--key', 'k.asc', '--', 'a.tar')?.args, ['a.tar'])
    assert.deepEqual(parse('-kk.asc', 'a.tar')?.flags.get('key'), ['k.asc'])
  })

  it('left to oclif: an unknown flag, a flag without its value, a value given to a switch', () => {
    for (const argv of [['a.tar', '--help'], ['a.tar', '--frobnicate'], ['a.tar', '-x'], ['a.tar', '--key'], ['a.tar', '--json=yes'], ['a.tar', '-kx', '-j']]) {
      assert.equal(parse(...argv), undefined, argv.join(' '))
    }
  })
})
