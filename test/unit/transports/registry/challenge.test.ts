import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseChallenge} from '../../../../src/transports/registry/transport/challenge.js'

describe('parseChallenge (WWW-Authenticate)', () => {
  it('Bearer with quoted realm, service and scope', () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"'), {
      scheme: 'bearer', realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull', error: undefined,
    })
  })

  it('token (unquoted) values, spaces after commas, any case of scheme and names', () => {
    assert.deepEqual(parseChallenge('BEARER Realm=https://a/token, Service=reg, error=invalid_token'), {
      scheme: 'bearer', realm: 'https://a/token', service: 'reg', scope: undefined, error: 'invalid_token',
    })
  })

  it('backslash escapes inside quoted values', () => {
    assert.equal((parseChallenge('Bearer realm="https://a/t",service="a\\"b\\\\c"') as {service?: string}).service, 'a"b\\c')
  })

  it('a scope with several actions and several scopes separated by spaces stays one string', () => {
    const ch = parseChallenge('Bearer realm="r",scope="repository:a:pull,push repository:b:pull"')
    assert.equal((ch as {scope?: string}).scope, 'repository:a:pull,push repository:b:pull')
  })

  it('Basic, with or without realm', () => {
    assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), {scheme: 'basic', realm: 'Registry Realm'})
    assert.deepEqual(parseChallenge('basic'), {scheme: 'basic', realm: undefined})
  })

  it('the first usable challenge among several header values', () => {
    assert.deepEqual(parseChallenge(['Negotiate abc', 'Bearer realm="https://a/t"']), {scheme: 'bearer', realm: 'https://a/t', service: undefined, scope: undefined, error: undefined})
  })

  it('unknown schemes, a Bearer without realm, or no header: undefined', () => {
    assert.equal(parseChallenge('Negotiate abc'), undefined)
    assert.equal(parseChallenge('Bearer service="x"'), undefined)
    assert.equal(parseChallenge(undefined), undefined)
    assert.equal(parseChallenge([]), undefined)
    assert.equal(parseChallenge(''), undefined)
  })
})
