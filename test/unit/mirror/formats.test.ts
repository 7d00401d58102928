/**
 * The generated files of each format (src/mirror/formats/), parsed back with a TOML or YAML
 * parser and checked field by field, and the request path each runtime derives from them.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parse} from 'smol-toml'
import {parse as parseYaml} from 'yaml'

import {containerdConfig} from '../../../src/mirror/formats/containerd.js'
import {dockerConfig} from '../../../src/mirror/formats/docker.js'
import {k3sConfig} from '../../../src/mirror/formats/k3s.js'
import {registriesConfConfig} from '../../../src/mirror/formats/registries-conf.js'
import {tomlString} from '../../../src/mirror/formats/toml.js'
import {MirrorPlan, parseMirrorRegistry, planMirror} from '../../../src/mirror/plan.js'
import {image} from './fixtures.js'

const IMAGES = [
  image('docker.io/library/nginx:1.27', 'a', {'linux/amd64': ['b', 'c', 'd']}),
  image('127.0.0.1:5301/testbed/app-a:1', 'e', {'linux/amd64': ['f', 'g', 'h']}),
]
const opts = {archive: 'release.tar', bundle: {name: 'Shop Site', version: '2.4.0'}}
/** Parsed TOML as plain JSON values. */
const parseToml = (text: string): unknown => JSON.parse(JSON.stringify(parse(text)))
const plan = (registry: string, insecure = false): MirrorPlan => planMirror(IMAGES, parseMirrorRegistry(registry, {insecure}))

interface HostsToml {
  server: string
  capabilities: string[]
  override_path?: boolean
  ca?: string
  skip_verify?: boolean
  host: Record<string, {capabilities: string[]; override_path?: boolean; ca?: string; skip_verify?: boolean}>
}

/** The URL containerd requests a manifest at: the host's path is the API root when override_path is set, else `/v2` is appended (remotes/docker/config/hosts.go). */
function containerdManifestUrl(hostUrl: string, overridePath: boolean, repo: string, tag: string): string {
  const u = new URL(hostUrl)
  const root = overridePath ? u.pathname : `${u.pathname.replace(/\/$/, '')}/v2`
  return `${u.origin}${root}/${repo}/manifests/${tag}`
}

describe('mirror-config --format containerd', () => {
  it('one HOST/hosts.toml per upstream host; the mirror is the [host] and the server, under /v2/PREFIX with override_path', () => {
    const g = containerdConfig(plan('registry.local:5000/mirror/site'), {...opts, caFile: '/etc/pki/mirror "ca".pem'})
    assert.deepEqual(g.files.map((f) => f.path), ['127.0.0.1:5301/hosts.toml', 'docker.io/hosts.toml'])
    const t = parseToml(g.files[1].content) as HostsToml
    const url = 'https://registry.local:5000/v2/mirror/site'
    assert.equal(t.server, url)
    assert.deepEqual(Object.keys(t.host), [url])
    for (const h of [t, t.host[url]]) {
      assert.deepEqual(h.capabilities, ['pull', 'resolve'])
      assert.equal(h.override_path, true)
      assert.equal(h.ca, '/etc/pki/mirror "ca".pem')
      assert.equal(h.skip_verify, undefined)
    }
    // docker.io/library/nginx:1.27 → the path install pushed it to
    assert.equal(containerdManifestUrl(url, true, 'library/nginx', '1.27'), 'https://registry.local:5000/v2/mirror/site/library/nginx/manifests/1.27')
  })

  it('without a prefix: the bare origin, no override_path; plain HTTP for loopback or --insecure; no ca unless given', () => {
    const g = containerdConfig(plan('registry.local:5000', true), opts)
    const t = parseToml(g.files[0].content) as HostsToml
    assert.equal(t.server, 'http://registry.local:5000')
    assert.equal(t.override_path, undefined)
    assert.equal(t.ca, undefined)
    assert.equal(containerdManifestUrl(t.server, false, 'testbed/app-a', '1'), 'http://registry.local:5000/v2/testbed/app-a/manifests/1')
  })
})

describe('mirror-config --format registries.conf', () => {
  it('a drop-in with one [[registry]] per upstream host, location = MIRROR/PREFIX; insecure only for plain HTTP', () => {
    const g = registriesConfConfig(plan('registry.local:5000/mirror'), opts)
    assert.deepEqual(g.files.map((f) => f.path), ['airlock-shop-site.conf'])
    const t = parseToml(g.files[0].content) as {registry: {prefix: string; location: string; insecure?: boolean}[]}
    assert.deepEqual(t.registry, [
      {prefix: '127.0.0.1:5301', location: 'registry.local:5000/mirror'},
      {prefix: 'docker.io', location: 'registry.local:5000/mirror'},
    ])
    const insecure = parseToml(registriesConfConfig(plan('registry.local:5000/mirror', true), opts).files[0].content) as typeof t
    assert.ok(insecure.registry.every((r) => r.insecure === true))
    assert.match(registriesConfConfig(plan('registry.local:5000/mirror'), {...opts, caFile: '/ca.pem'}).notes.join('\n'), /\/etc\/containers\/certs\.d\/registry\.local:5000\/ca\.crt/)
  })
})

describe('mirror-config --format k3s', () => {
  it('registries.yaml: each upstream host mirrored to the registry, PREFIX put before the repository by a rewrite; the CA in configs', () => {
    const g = k3sConfig(plan('registry.local:5000/mirror/site'), {...opts, caFile: '/etc/ssl/mirror.pem'})
    assert.deepEqual(g.files.map((f) => f.path), ['registries.yaml'])
    const y = parseYaml(g.files[0].content) as {mirrors: Record<string, {endpoint: string[]; rewrite?: Record<string, string>}>; configs: Record<string, {tls: {ca_file: string; insecure_skip_verify?: boolean}}>}
    assert.deepEqual(Object.keys(y.mirrors), ['127.0.0.1:5301', 'docker.io'])
    const hub = y.mirrors['docker.io']
    assert.deepEqual(hub.endpoint, ['https://registry.local:5000'])
    // k3s applies each rewrite to the repository (Go's regexp: $1 is the first group, as in JS).
    const [[pattern, replacement]] = Object.entries(hub.rewrite!)
    assert.equal('library/nginx'.replace(new RegExp(pattern), replacement), 'mirror/site/library/nginx')
    assert.deepEqual(y.configs, {'registry.local:5000': {tls: {ca_file: '/etc/ssl/mirror.pem'}}})
  })

  it('no rewrite without a prefix, no configs without a CA', () => {
    const y = parseYaml(k3sConfig(plan('127.0.0.1:5303'), opts).files[0].content) as {mirrors: Record<string, {endpoint: string[]; rewrite?: unknown}>; configs?: unknown}
    assert.deepEqual(y.mirrors['docker.io'], {endpoint: ['http://127.0.0.1:5303']})
    assert.equal(y.configs, undefined)
  })
})

describe('mirror-config --format docker', () => {
  it('writes nothing, says what registry-mirrors cannot do, and offers install --to docker', () => {
    const g = dockerConfig(plan('registry.local:5000/mirror'), opts)
    assert.deepEqual(g.files, [])
    const text = g.notes.join('\n')
    assert.match(text, /registry-mirrors.*Docker Hub \(docker\.io\) images alone.*without a path prefix/)
    assert.match(text, /Not redirectable in Docker at all: 127\.0\.0\.1:5301/)
    assert.match(text, /under \/mirror on the mirror/)
    assert.match(text, /airlock install release\.tar --key KEY --to docker/)
    assert.match(dockerConfig(plan('registry.local:5000'), opts).notes.join('\n'), /"registry-mirrors": \["https:\/\/registry\.local:5000"\]/)
  })
})

describe('TOML strings', () => {
  it('round-trip quotes, backslashes and every control character', () => {
    const s = 'a"b\\c\u0000\u0001\t\n\u001f\u007fé/'
    assert.equal((parseToml(`x = ${tomlString(s)}`) as {x: string}).x, s)
  })
})
