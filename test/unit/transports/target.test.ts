/** `install --to`, parsed once (src/transports/target.ts). */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {InputError} from '../../../src/core/errors.js'
import {parseTarget, targetReference} from '../../../src/transports/target.js'

const badTarget = (message: RegExp) => (e: unknown) => e instanceof InputError && e.code === 'install.bad_target' && e.exitCode === 2 && message.test(e.message)

describe('parseTarget', () => {
  it('names each kind of target', () => {
    assert.deepEqual(parseTarget('docker'), {kind: 'docker'})
    assert.deepEqual(parseTarget('podman'), {kind: 'podman'})
    assert.deepEqual(parseTarget('containerd'), {kind: 'containerd'})
    assert.deepEqual(parseTarget('oci:/srv/images'), {kind: 'oci', dir: '/srv/images'})
    assert.deepEqual(parseTarget('dir:/srv/site'), {kind: 'dir', dir: '/srv/site'})
    assert.deepEqual(parseTarget('registry://reg.local:5000'), {kind: 'registry', host: 'reg.local:5000', prefix: ''})
    assert.deepEqual(parseTarget('registry://[::1]:5000/mirror/team/'), {kind: 'registry', host: '[::1]:5000', prefix: 'mirror/team'})
  })

  it('refuses anything else with install.bad_target (exit 2)', () => {
    assert.throws(() => parseTarget('dockr'), badTarget(/^unknown target "dockr": use docker, podman, containerd, registry:\/\/HOST\[:PORT\]\[\/PREFIX\], oci:DIR or dir:PATH$/))
    assert.throws(() => parseTarget('oci:'), badTarget(/^unknown target "oci:"/))
    assert.throws(() => parseTarget('dir:'), badTarget(/^unknown target "dir:"/))
    assert.throws(() => parseTarget('registry://'), badTarget(/^invalid registry target "registry:\/\/": expected registry:\/\/HOST\[:PORT\]\[\/PREFIX\]$/))
    assert.throws(() => parseTarget('registry://reg.local/Bad_Prefix'), badTarget(/^invalid repository prefix "Bad_Prefix" in registry:\/\/reg.local\/Bad_Prefix$/))
    assert.throws(() => parseTarget('docker', 'registry'), badTarget(/is not a registry target/))
  })

  it('places an image under the registry prefix, same tag or digest', () => {
    const t = parseTarget('registry://reg.local:5000/mirror', 'registry')
    assert.deepEqual(targetReference('127.0.0.1:5301/team/app:1', t), {registry: 'reg.local:5000', repository: 'mirror/team/app', tag: '1'})
  })
})
