/**
 * Every tag on a registry, one `repo: tag,tag` line per repository that has tags: what a failed or
 * refused install must leave exactly as it was. (Blobs uploaded before a failure are invisible
 * content: a repository with no tag in the catalog.)
 */
export async function registryTags(host: string): Promise<string> {
  const {repositories} = (await (await fetch(`http://${host}/v2/_catalog?n=1000`)).json()) as {repositories: string[]}
  const out: string[] = []
  for (const r of repositories.sort()) {
    const t = (await (await fetch(`http://${host}/v2/${r}/tags/list`)).json()) as {tags: string[] | null}
    if (t.tags && t.tags.length > 0) out.push(`${r}: ${t.tags.sort().join(',')}`)
  }
  return out.join('\n')
}
