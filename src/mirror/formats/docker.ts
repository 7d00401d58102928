/**
 * Docker Engine has no per-registry mirror configuration to write: dockerd's `registry-mirrors`
 * (daemon.json) applies to Docker Hub images only, and a mirror is a bare `scheme://host[:port]`
 * with no repository path. So nothing is written; the message says what Docker cannot do, and the
 * alternative: load the bundle into each Docker Engine with `airlock install --to docker`.
 */
import type {MirrorPlan} from '../plan.js'
import type {FormatOptions, GeneratedConfig} from './types.js'

export function dockerConfig(plan: MirrorPlan, opts: FormatOptions): GeneratedConfig {
  const {origin, prefix} = plan.registry
  const hub = plan.upstreams.some((u) => u.host === 'docker.io')
  const others = plan.upstreams.filter((u) => u.host !== 'docker.io').map((u) => u.host)
  const notes = [
    'Docker Engine cannot pull these images by their original names from this mirror: its only mirror setting, "registry-mirrors" in daemon.json, is used for Docker Hub (docker.io) images alone, and takes a bare scheme://host[:port] without a path prefix.',
    ...(others.length > 0 ? [`Not redirectable in Docker at all: ${others.join(', ')}.`] : []),
    ...(hub && prefix ? [`The docker.io images sit under /${prefix} on the mirror, which registry-mirrors cannot express.`] : []),
    ...(hub && !prefix ? [`The docker.io images alone could come from it with "registry-mirrors": ["${origin}"] in /etc/docker/daemon.json (dockerd restarted; plain HTTP also needs "insecure-registries"), as the mirror holds them without a prefix.`] : []),
    `Instead, load the bundle into each Docker Engine: airlock install ${opts.archive} --key KEY --to docker (the images keep their original names).`,
  ]
  return {files: [], notes}
}
