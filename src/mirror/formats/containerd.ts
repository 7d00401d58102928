/**
 * containerd (1.5+, CRI and `ctr --hosts-dir`): one `HOST/hosts.toml` per upstream host under the
 * hosts directory (`config_path`, usually /etc/containerd/certs.d).
 *
 * The mirror is both the one `[host]` entry (containerd 1.6 ignores a hosts.toml without one) and
 * the `server`, so that the upstream host is never consulted: the site is isolated, and a pull of
 * an image the mirror lacks fails at once instead of waiting on the internet. Under a prefix the
 * URL carries the API path itself (`/v2/PREFIX`, `override_path = true`); without `override_path`
 * containerd would append `/v2` after the prefix.
 */
import type {MirrorPlan} from '../plan.js'
import {FormatOptions, GeneratedConfig, header, imageLines} from './types.js'
import {tomlString, tomlStrings} from './toml.js'

/** The mirror's API root as containerd is to call it, and whether that needs override_path. */
export function containerdMirrorUrl(plan: MirrorPlan): {url: string; overridePath: boolean} {
  const {origin, prefix} = plan.registry
  return prefix ? {url: `${origin}/v2/${prefix}`, overridePath: true} : {url: origin, overridePath: false}
}

function settings(plan: MirrorPlan, opts: FormatOptions, indent: string): string[] {
  const {overridePath} = containerdMirrorUrl(plan)
  return [
    `${indent}capabilities = ${tomlStrings(['pull', 'resolve'])}`,
    ...(overridePath ? [`${indent}override_path = true`] : []),
    ...(opts.caFile ? [`${indent}ca = ${tomlString(opts.caFile)}`] : []),
  ]
}

export function containerdConfig(plan: MirrorPlan, opts: FormatOptions): GeneratedConfig {
  const {url} = containerdMirrorUrl(plan)
  const files = plan.upstreams.map((up) => ({
    path: `${up.host}/hosts.toml`,
    content: [
      header(plan, opts),
      `# ${up.host} is served by the mirror only (server = the mirror: the upstream is never consulted):`,
      imageLines(up.images),
      `server = ${tomlString(url)}`,
      ...settings(plan, opts, ''),
      '',
      `[host.${tomlString(url)}]`,
      ...settings(plan, opts, '  '),
      '',
    ].join('\n'),
  }))
  return {
    files, directory: '/etc/containerd/certs.d',
    notes: [
      'containerd reads these when its CRI registry config_path names the directory ([plugins."io.containerd.grpc.v1.cri".registry] config_path = "/etc/containerd/certs.d"; no restart needed for changes under it); ctr takes --hosts-dir DIR',
    ],
  }
}
