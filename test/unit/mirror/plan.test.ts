/** The mapping every format is written from (src/mirror/plan.ts): the mirror registry, and where install put each image. */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseMirrorRegistry, planMirror} from '../../../src/mirror/plan.js'
import {formatReference} from '../../../src/spec/reference.js'
import {parseTarget, targetReference} from '../../../src/transports/target.js'
import {image} from './fixtures.js'

describe('mirror-config: the mirror registry', () => {
  it('reads HOST[:PORT][/PREFIX] as install reads --to registry://…, with install\'s scheme', () => {
    assert.deepEqual(parseMirrorRegistry('registry.local:5000/mirror/site/'), {kind: 'registry', host: 'registry.local:5000', prefix: 'mirror/site', scheme: 'https', origin: 'https://registry.local:5000', target: 'registry://registry.local:5000/mirror/site'})
    assert.equal(parseMirrorRegistry('registry://registry.local').prefix, '')
    assert.equal(parseMirrorRegistry('registry.local', {insecure: true}).origin, 'http://registry.local')
    assert.equal(parseMirrorRegistry('127.0.0.1:5303/m').scheme, 'http', 'loopback is plain HTTP, as for install')
  })

  it('refuses a URL scheme and a bad host or prefix', () => {
    assert.throws(() => parseMirrorRegistry('https://registry.local/mirror'), {code: 'mirror.bad_registry'})
    assert.throws(() => parseMirrorRegistry('bad host/x'), {code: 'install.bad_target'})
    assert.throws(() => parseMirrorRegistry('registry.local/UPPER'), {code: 'install.bad_target'})
  })
})

describe('mirror-config: upstream hosts', () => {
  const images = [
    image('docker.io/library/nginx:1.27', 'a', {'linux/amd64': ['b', 'c', 'd']}),
    image('ghcr.io/acme/api:2', 'e', {'linux/amd64': ['f', 'g', 'h']}),
    image('docker.io/library/redis:7', 'i', {'linux/amd64': ['j', 'k', 'l']}),
  ]

  it('groups the images by upstream host, each with the very name install gives it on the mirror', () => {
    const registry = parseMirrorRegistry('registry.local:5000/mirror')
    const plan = planMirror(images, registry)
    assert.deepEqual(plan.upstreams.map((u) => u.host), ['docker.io', 'ghcr.io'])
    assert.deepEqual(plan.upstreams[0].images, [
      {name: 'docker.io/library/nginx:1.27', mirror: 'registry.local:5000/mirror/library/nginx:1.27'},
      {name: 'docker.io/library/redis:7', mirror: 'registry.local:5000/mirror/library/redis:7'},
    ])
    const target = parseTarget('registry://registry.local:5000/mirror', 'registry')
    for (const up of plan.upstreams) for (const i of up.images) assert.equal(i.mirror, formatReference(targetReference(i.name, target)))
    assert.deepEqual(plan.notes, [])
  })

  it('names two images that land on one mirror path, and leaves out images already named after the mirror', () => {
    const clash = [...images, image('quay.io/library/nginx:1.27', 'z', {'linux/amd64': ['y', 'x', 'w']}), image('registry.local:5000/tools/x:1', 'v', {'linux/amd64': ['u', 't', 's']})]
    const plan = planMirror(clash, parseMirrorRegistry('registry.local:5000'))
    assert.deepEqual(plan.upstreams.map((u) => u.host), ['docker.io', 'ghcr.io', 'quay.io'])
    assert.equal(plan.notes.length, 1)
    assert.match(plan.notes[0], /docker\.io\/library\/nginx:1\.27 and quay\.io\/library\/nginx:1\.27 both land at registry\.local:5000\/library\/nginx:1\.27/)
  })
})
