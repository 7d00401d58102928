import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {AirlockError, VerifyError} from '../../../../src/core/errors.js'
import {MediaType} from '../../../../src/core/model.js'
import {manifestMediaType} from '../../../../src/transports/registry/manifests.js'

const body = (o: unknown) => Buffer.from(JSON.stringify(o))
const codeOf = (fn: () => unknown): string => {
  try {
    fn()
  } catch (e) {
    assert.ok(e instanceof AirlockError)
    return `${e instanceof VerifyError ? 'verify:' : ''}${e.code}`
  }
  return 'ok'
}

describe('manifestMediaType', () => {
  it('a known Content-Type wins; the body may agree or say nothing', () => {
    assert.equal(manifestMediaType(body({schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: []}), MediaType.OCI_INDEX, 'm'), MediaType.OCI_INDEX)
    assert.equal(manifestMediaType(body({schemaVersion: 2, config: {}, layers: []}), MediaType.DOCKER_MANIFEST, 'm'), MediaType.DOCKER_MANIFEST)
  })

  it("a generic Content-Type: the body's mediaType, else the shape", () => {
    assert.equal(manifestMediaType(body({mediaType: MediaType.DOCKER_MANIFEST}), 'application/json', 'm'), MediaType.DOCKER_MANIFEST)
    assert.equal(manifestMediaType(body({schemaVersion: 2, manifests: []}), 'application/octet-stream', 'm'), MediaType.OCI_INDEX)
    assert.equal(manifestMediaType(body({schemaVersion: 2, config: {digest: 'x'}, layers: []}), '', 'm'), MediaType.OCI_MANIFEST)
  })

  it('refused: disagreement, schema 1, not JSON, not an object, unknown type', () => {
    assert.equal(codeOf(() => manifestMediaType(body({mediaType: MediaType.OCI_INDEX}), MediaType.OCI_MANIFEST, 'm')), 'verify:registry.media_type_mismatch')
    assert.equal(codeOf(() => manifestMediaType(body({schemaVersion: 1}), 'application/json', 'm')), 'registry.unsupported_manifest')
    assert.equal(codeOf(() => manifestMediaType(body({mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws'}), '', 'm')), 'registry.unsupported_manifest')
    assert.equal(codeOf(() => manifestMediaType(Buffer.from('{nope'), MediaType.OCI_MANIFEST, 'm')), 'verify:registry.bad_manifest')
    assert.equal(codeOf(() => manifestMediaType(body([1]), MediaType.OCI_MANIFEST, 'm')), 'verify:registry.bad_manifest')
    assert.equal(codeOf(() => manifestMediaType(body({mediaType: 'text/plain'}), 'application/json', 'm')), 'registry.unsupported_media_type')
    assert.equal(codeOf(() => manifestMediaType(body({}), 'application/json', 'm')), 'registry.unsupported_media_type')
  })

  it('messages name the manifest', () => {
    assert.throws(() => manifestMediaType(body({schemaVersion: 1}), '', 'r/a:1'), /manifest r\/a:1 is a Docker schema 1 manifest, which is deprecated and not supported.*skopeo copy --format v2s2/)
  })
})
