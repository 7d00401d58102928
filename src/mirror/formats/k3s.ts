/**
 * k3s and RKE2: /etc/rancher/{k3s,rke2}/registries.yaml. Each upstream host is a mirror whose
 * endpoint is the mirror registry and whose rewrite puts PREFIX before the repository; `configs`
 * carries the CA for the mirror host. k3s still tries the upstream as a last resort (its "default
 * endpoint", without the rewrite) unless started with --disable-default-registry-endpoint.
 */
import {Document, isScalar, visit} from 'yaml'

import type {MirrorPlan} from '../plan.js'
import {FormatOptions, GeneratedConfig, header, imageLines} from './types.js'

const FIELDS = new Set(['mirrors', 'endpoint', 'rewrite', 'configs', 'tls', 'ca_file'])

/** registries.yaml with every host, pattern and value double-quoted (as k3s documents them): no YAML 1.1 surprises. */
function yamlText(value: unknown): string {
  const doc = new Document(value)
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && !FIELDS.has(String(pair.key.value))) pair.key.type = 'QUOTE_DOUBLE'
    },
    Scalar(key, node) {
      if (key !== 'key' && typeof node.value === 'string') node.type = 'QUOTE_DOUBLE'
    },
  })
  return doc.toString()
}

export function k3sConfig(plan: MirrorPlan, opts: FormatOptions): GeneratedConfig {
  const {host, prefix, origin} = plan.registry
  const mirrors: Record<string, {endpoint: string[]; rewrite?: Record<string, string>}> = {}
  for (const up of plan.upstreams) mirrors[up.host] = {endpoint: [origin], ...(prefix ? {rewrite: {'^(.*)$': `${prefix}/$1`}} : {})}
  const doc = {mirrors, ...(opts.caFile ? {configs: {[host]: {tls: {ca_file: opts.caFile}}}} : {})}
  const comments = plan.upstreams.map((up) => `# ${up.host}:\n${imageLines(up.images)}`).join('\n')
  return {
    files: [{path: 'registries.yaml', content: `${header(plan, opts)}\n${comments}\n${yamlText(doc)}`}],
    directory: '/etc/rancher/k3s',
    notes: [
      'k3s and RKE2 read registries.yaml at start: restart the service on each node (merge by hand with an existing registries.yaml: this file replaces it)',
      'k3s falls back to the upstream host when the mirror lacks an image, unless started with --disable-default-registry-endpoint',
    ],
  }
}
