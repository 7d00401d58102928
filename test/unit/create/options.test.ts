import assert from 'node:assert/strict'
import {readdir, readFile} from 'node:fs/promises'
import path from 'node:path'
import {describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'

import {InputError} from '../../../src/core/errors.js'
import {epochFromEnv, parseSize} from '../../../src/create/create.js'

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src')

describe('create options', () => {
  it('SOURCE_DATE_EPOCH becomes the epoch option (the command passes its environment)', () => {
    assert.equal(epochFromEnv({}), undefined)
    assert.equal(epochFromEnv({SOURCE_DATE_EPOCH: ''}), undefined)
    assert.equal(epochFromEnv({SOURCE_DATE_EPOCH: '0'}), 0)
    assert.equal(epochFromEnv({SOURCE_DATE_EPOCH: '1700000000'}), 1_700_000_000)
    assert.throws(() => epochFromEnv({SOURCE_DATE_EPOCH: '17e8'}), (e: unknown) => e instanceof InputError && e.code === 'env.source_date_epoch')
  })

  it('--split sizes', () => {
    assert.equal(parseSize('700M'), 700 * 1024 ** 2)
    assert.equal(parseSize('1.5G'), Math.floor(1.5 * 1024 ** 3))
    assert.equal(parseSize('65536'), 65_536)
    assert.throws(() => parseSize('10K'), /too small/)
    assert.throws(() => parseSize('lots'), /invalid size/)
  })

  it('create and the blob cache read no environment variable: only their options', async () => {
    for (const folder of ['create', 'copy']) {
      for (const name of await readdir(path.join(SRC, folder))) {
        const text = await readFile(path.join(SRC, folder, name), 'utf8')
        assert.doesNotMatch(text, /process\.env|os\.homedir/, `${folder}/${name} reads the environment`)
      }
    }
  })
})
