/**
 * `WWW-Authenticate` challenges: how a registry says which scheme it wants on its 401s
 * (Basic, or Bearer with the token service's realm, service and scope).
 */

export type Challenge =
  | {scheme: 'basic'; realm?: string}
  | {scheme: 'bearer'; realm: string; service?: string; scope?: string; error?: string}

/** Parse `WWW-Authenticate` (Basic or Bearer with quoted or token params). Unknown schemes → undefined. */
export function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  const values = Array.isArray(header) ? header : header ? [header] : []
  for (const h of values) {
    const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(h)
    if (!m) continue
    const scheme = m[1].toLowerCase()
    const params: Record<string, string> = {}
    const re = /([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy
    const rest = m[2]
    re.lastIndex = 0
    let pm: RegExpExecArray | null
    while (re.lastIndex < rest.length && (pm = re.exec(rest))) {
      params[pm[1].toLowerCase()] = pm[2] !== undefined ? pm[2].replace(/\\(.)/g, '$1') : pm[3]
    }
    if (scheme === 'basic') return {scheme: 'basic', realm: params.realm}
    if (scheme === 'bearer' && params.realm) {
      return {scheme: 'bearer', realm: params.realm, service: params.service, scope: params.scope, error: params.error}
    }
  }
  return undefined
}
