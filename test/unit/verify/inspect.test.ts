import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {describeCreated} from '../../../src/verify/inspect.js'

describe('inspect: created', () => {
  it('the epoch (made without SOURCE_DATE_EPOCH) is shown as not recorded, any other time as it is', () => {
    assert.equal(describeCreated('1970-01-01T00:00:00.000Z'), 'not recorded (made without SOURCE_DATE_EPOCH)')
    assert.equal(describeCreated('2026-11-23T00:00:00.000Z'), '2026-11-23T00:00:00.000Z')
    assert.equal(describeCreated('1970-01-01T00:00:01.000Z'), '1970-01-01T00:00:01.000Z')
  })
})
