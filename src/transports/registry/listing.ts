/** Listing a registry: its repositories (`/v2/_catalog`) and a repository's tags (paginated by `Link`). */
import {AirlockError} from '../../core/errors.js'
import {checkRepo, pullScope} from './names.js'
import {headerOne, readBody} from './transport/http.js'
import type {RegistryTransport} from './transport/request.js'

const MAX_SMALL_BODY = 16 * 1024 * 1024

/** Repository names from `/v2/_catalog` (best effort: many registries disable it; then []). */
export async function catalog(t: RegistryTransport, max = 1000): Promise<string[]> {
  try {
    return await t.request(
      {method: 'GET', url: `/v2/_catalog?n=${max}`, scopes: ['registry:catalog:*'], expect: [200], what: `catalog of ${t.host}`},
      async (res) => {
        const body = await readBody(res, MAX_SMALL_BODY, () => new AirlockError('registry.bad_response', `catalog of ${t.host} too large`))
        const j = JSON.parse(body.toString('utf8')) as {repositories?: unknown}
        return Array.isArray(j.repositories) ? j.repositories.filter((x): x is string => typeof x === 'string') : []
      },
    )
  } catch {
    return []
  }
}

export async function listTags(t: RegistryTransport, repo: string): Promise<string[]> {
  checkRepo(repo)
  const tags: string[] = []
  let url: URL | string | undefined = `/v2/${repo}/tags/list`
  for (let page = 0; url && page < 10_000; page++) {
    const r: {tags: string[]; next?: string} = await t.request(
      {method: 'GET', url, scopes: [pullScope(repo)], expect: [200], what: `repository ${t.host}/${repo}`},
      async (res) => {
        const body = await readBody(res, MAX_SMALL_BODY, () => new AirlockError('registry.bad_response', `tag list of ${t.host}/${repo} too large`))
        let j: {tags?: unknown}
        try {
          j = JSON.parse(body.toString('utf8')) as typeof j
        } catch {
          throw new AirlockError('registry.bad_response', `invalid tag list JSON from ${t.host}/${repo}`)
        }
        const found = Array.isArray(j.tags) ? j.tags.filter((x): x is string => typeof x === 'string') : []
        const link = headerOne(res.headers.link)
        const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null
        return {tags: found, next: m ? m[1] : undefined}
      },
    )
    tags.push(...r.tags)
    url = r.next ? new URL(r.next, t.origin) : undefined
  }
  return tags
}
