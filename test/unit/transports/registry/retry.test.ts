import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {Backoff, DEFAULT_RETRY_POLICY, Retryable, parseRetryAfter, retryPolicyOf} from '../../../../src/transports/registry/transport/retry.js'

const policy = {retries: 3, baseDelayMs: 100, maxDelayMs: 1000, maxTotalWaitMs: 10_000}

describe('retry policy', () => {
  it('defaults: 5 retries from 500 ms, 30 s per delay, 120 s in all; options override each knob', () => {
    assert.deepEqual(DEFAULT_RETRY_POLICY, {retries: 5, baseDelayMs: 500, maxDelayMs: 30_000, maxTotalWaitMs: 120_000})
    assert.deepEqual(retryPolicyOf({}), DEFAULT_RETRY_POLICY)
    assert.deepEqual(retryPolicyOf({retries: 0, retryBaseDelayMs: 5, retryMaxDelayMs: 50, maxRetryWaitMs: 70}), {retries: 0, baseDelayMs: 5, maxDelayMs: 50, maxTotalWaitMs: 70})
  })

  it('delays double from the base, with jitter in [exp/2, exp], then stop after `retries`', (t) => {
    t.mock.method(Math, 'random', () => 0.5)
    const b = new Backoff(policy)
    assert.deepEqual([b.next(), b.next(), b.next(), b.next()], [75, 150, 300, undefined])
    assert.equal(b.attempt, 3)
    t.mock.method(Math, 'random', () => 0)
    assert.deepEqual([new Backoff(policy).next()], [50])
    t.mock.method(Math, 'random', () => 0.999_999)
    assert.deepEqual([new Backoff(policy).next()], [100])
  })

  it('one delay is capped at maxDelayMs', (t) => {
    t.mock.method(Math, 'random', () => 0.999_999)
    const b = new Backoff({retries: 10, baseDelayMs: 400, maxDelayMs: 1000, maxTotalWaitMs: 100_000})
    const delays = Array.from({length: 5}, () => b.next())
    assert.deepEqual(delays, [400, 800, 1000, 1000, 1000])
  })

  it('the sum of delays stays within maxTotalWaitMs', () => {
    // Whatever the jitter: the first delay is >= 50 ms, the second >= 100 ms: 150 > 140.
    const b = new Backoff({...policy, maxTotalWaitMs: 140})
    assert.ok(b.next() !== undefined)
    assert.equal(b.next(), undefined)
  })

  it('Retry-After longer than the backoff is honoured, capped by the total budget', (t) => {
    t.mock.method(Math, 'random', () => 0.5)
    assert.equal(new Backoff(policy).next(2000), 2000)
    assert.equal(new Backoff(policy).next(10), 75, 'a shorter Retry-After does not shorten the backoff')
    const b = new Backoff({...policy, maxTotalWaitMs: 500})
    assert.equal(b.next(60_000), 500)
    assert.equal(b.next(), undefined, 'the budget is spent')
  })

  it('reset() starts over (progress was made)', (t) => {
    t.mock.method(Math, 'random', () => 0.5)
    const b = new Backoff(policy)
    b.next()
    b.next()
    b.reset()
    assert.equal(b.attempt, 0)
    assert.equal(b.waited, 0)
    assert.equal(b.next(), 75)
  })

  it('Retryable carries the reason, the final error and Retry-After', () => {
    const final = new Error('registry x unreachable')
    const r = new Retryable('HTTP 503', final, 1000)
    assert.equal(r.message, 'HTTP 503')
    assert.equal(r.reason, 'HTTP 503')
    assert.equal(r.final, final)
    assert.equal(r.retryAfterMs, 1000)
  })
})

describe('parseRetryAfter', () => {
  it('delta-seconds', () => {
    assert.equal(parseRetryAfter('3'), 3000)
    assert.equal(parseRetryAfter(' 7 '), 7000)
    assert.equal(parseRetryAfter(['2', '9']), 2000)
  })

  it('an HTTP date: the time until then, never negative', () => {
    const soon = parseRetryAfter(new Date(Date.now() + 60_000).toUTCString())!
    assert.ok(soon > 55_000 && soon <= 60_000, String(soon))
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT'), 0)
  })

  it('absent or unreadable: undefined', () => {
    assert.equal(parseRetryAfter(undefined), undefined)
    assert.equal(parseRetryAfter(''), undefined)
    assert.equal(parseRetryAfter('soon'), undefined)
  })
})
