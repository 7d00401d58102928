import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {archiveArgument} from '../../../src/cli/fast.js'

describe('verify, early start: the archive argument', () => {
  it('reads the archive argument of `verify` from the command line as oclif would', () => {
    assert.equal(archiveArgument(['a.tar', '--key', 'k.asc']), 'a.tar')
    assert.equal(archiveArgument(['a.tar', '--key', 'k.asc', '--key', 'k2.asc', '--json']), 'a.tar')
    assert.equal(archiveArgument(['--json', 'a.tar', '-k', 'k.asc']), 'a.tar')
    assert.equal(archiveArgument(['--allow-unsigned', 'a.tar']), 'a.tar')
    assert.equal(archiveArgument(['--key=k.asc', '--json', 'a.tar']), 'a.tar')
    assert.equal(archiveArgument(['-kk.asc', '--json', 'a.tar']), 'a.tar')
    assert.equal(archiveArgument(['--key', 'k.asc', '--', 'a.tar']), 'a.tar')
    // --key takes one value per flag: the word after that value is the archive.
    assert.equal(archiveArgument(['--key', 'k.asc', 'a.tar']), 'a.tar')
    assert.equal(archiveArgument(['--key=k.asc', 'a.tar']), 'a.tar')
    assert.equal(archiveArgument(['--key', 'k.asc', 'k2.asc', 'a.tar']), undefined) // oclif refuses the extra argument
    assert.equal(archiveArgument(['a.tar', '--help']), undefined)
    assert.equal(archiveArgument(['a.tar', 'b.tar']), undefined)
    assert.equal(archiveArgument(['a.tar', '--frobnicate']), undefined)
    assert.equal(archiveArgument(['--key', 'k.asc']), undefined)
  })
})
