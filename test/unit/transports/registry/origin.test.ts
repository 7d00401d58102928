import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {isLoopbackHost, registryEndpoint} from '../../../../src/transports/registry/transport/origin.js'

describe('registry origins', () => {
  it('loopback hosts, with or without port', () => {
    for (const h of ['127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', 'localhost', 'LocalHost:5301', '[::1]:5000', '::1']) assert.ok(isLoopbackHost(h), h)
    for (const h of ['registry.example.com', 'ghcr.io:443', '10.0.0.1:5000', '128.0.0.1', 'localhost.example.com', '[fe80::1]:5000', '127.0.0.1.nip.io']) {
      assert.ok(!isLoopbackHost(h), h)
    }
  })

  it('HTTPS for remote hosts, HTTP for loopback or with insecure', () => {
    assert.deepEqual(registryEndpoint('ghcr.io'), {scheme: 'https', origin: 'https://ghcr.io'})
    assert.deepEqual(registryEndpoint('registry.example.com:5000'), {scheme: 'https', origin: 'https://registry.example.com:5000'})
    assert.deepEqual(registryEndpoint('127.0.0.1:5301'), {scheme: 'http', origin: 'http://127.0.0.1:5301'})
    assert.deepEqual(registryEndpoint('localhost:5000'), {scheme: 'http', origin: 'http://localhost:5000'})
    assert.deepEqual(registryEndpoint('registry.lan:5000', true), {scheme: 'http', origin: 'http://registry.lan:5000'})
  })

  it('Docker Hub names are served by registry-1.docker.io', () => {
    assert.equal(registryEndpoint('docker.io').origin, 'https://registry-1.docker.io')
    assert.equal(registryEndpoint('Index.Docker.io').origin, 'https://registry-1.docker.io')
    assert.equal(registryEndpoint('registry-1.docker.io').origin, 'https://registry-1.docker.io')
  })

  it('the default port is not part of the origin', () => {
    assert.equal(registryEndpoint('ghcr.io:443').origin, 'https://ghcr.io')
  })
})
