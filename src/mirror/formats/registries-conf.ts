/**
 * CRI-O, podman, buildah, skopeo: containers-registries.conf(5) version 2. Each upstream host is a
 * `[[registry]]` whose `location` rewrites the prefix to the mirror path, so `HOST/REPO` is pulled
 * from `MIRROR/PREFIX/REPO` and stored under its original name. Written as a drop-in for
 * /etc/containers/registries.conf.d/ (one per bundle: bundles for other hosts stay apart).
 */
import type {MirrorPlan} from '../plan.js'
import {FormatOptions, GeneratedConfig, header, imageLines} from './types.js'
import {tomlString} from './toml.js'

/** The drop-in's file name, from the bundle's name. */
export function dropInName(bundle: string): string {
  return `airlock-${bundle.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[.-]+/, '') || 'bundle'}.conf`
}

export function registriesConfConfig(plan: MirrorPlan, opts: FormatOptions): GeneratedConfig {
  const {host, prefix, scheme} = plan.registry
  const location = prefix ? `${host}/${prefix}` : host
  const blocks = plan.upstreams.map((up) => [
    imageLines(up.images),
    '[[registry]]',
    `prefix = ${tomlString(up.host)}`,
    `location = ${tomlString(location)}`,
    // insecure: plain HTTP (or TLS without verification) to the mirror, only when it speaks HTTP.
    ...(scheme === 'http' ? ['insecure = true'] : []),
    '',
  ].join('\n'))
  const notes = opts.caFile
    ? [`registries.conf has no CA setting: put the CA at /etc/containers/certs.d/${host}/ca.crt on each node (podman, CRI-O and skopeo read it there)`]
    : []
  return {
    files: [{path: dropInName(opts.bundle.name), content: [header(plan, opts), '', ...blocks].join('\n')}],
    directory: '/etc/containers/registries.conf.d',
    notes,
  }
}
