/**
 * The OCI 1.1 referrers API: `GET /v2/<name>/referrers/<digest>` answers an image index of the
 * manifests whose `subject` is `digest`. A registry without the API answers 404 (docker-registry
 * 2.8) or some other error page; then the caller falls back to the `sha256-<hex>` tag scheme.
 */
import {sha256Digest} from '../../core/digest.js'
import {MAX_MANIFEST_BYTES, MediaType} from '../../core/model.js'
import {checkDigest, checkRepo, pullScope, refString} from './names.js'
import {baseMediaType, drain, readBody} from './transport/http.js'
import type {RegistryTransport} from './transport/request.js'
import type {ManifestResult} from './manifests.js'
import {AirlockError} from '../../core/errors.js'

/** The referrers index of `digest`, or undefined when the registry has no referrers API. */
export async function getReferrers(t: RegistryTransport, repo: string, digest: string): Promise<ManifestResult | undefined> {
  checkRepo(repo)
  checkDigest(digest)
  const what = `referrers of ${refString(t.host, repo, digest)}`
  return t.request(
    {method: 'GET', url: `/v2/${repo}/referrers/${digest}`, headers: {Accept: MediaType.OCI_INDEX}, scopes: [pullScope(repo)], expect: [200, 400, 404, 405, 406, 501], what},
    async (res) => {
      if (res.statusCode !== 200 || baseMediaType(res.headers['content-type']) !== MediaType.OCI_INDEX) {
        drain(res)
        return undefined
      }
      const bytes = await readBody(res, MAX_MANIFEST_BYTES, () => new AirlockError('registry.manifest_too_large', `${what}: the answer is larger than ${MAX_MANIFEST_BYTES} bytes`))
      return {bytes, mediaType: MediaType.OCI_INDEX, digest: sha256Digest(bytes)}
    },
  )
}
