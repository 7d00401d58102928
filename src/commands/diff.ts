import {Args} from '@oclif/core'

import {AirlockCommand} from '../cli/base.js'
import {environment} from '../cli/env.js'
import {allowUnsignedFlag, trustedKeysFlag} from '../cli/flags.js'
import {formatBytes} from '../cli/progress.js'
import {diffArchives, DiffResult} from '../verify/diff.js'
import {trustedKeyPaths} from '../sign/keys.js'

const short = (digest?: string) => (digest ? digest.slice(0, 'sha256:'.length + 12) : '')

/** The rows of the table: image (or indented platform), change, old digest, new digest. */
function rows(r: DiffResult): string[][] {
  const out: string[][] = []
  for (const c of r.changed) {
    out.push([c.name, 'changed', short(c.old), short(c.new)])
    for (const p of c.platforms) out.push([`    ${p.platform}`, p.change, short(p.old), short(p.new)])
  }
  for (const a of r.added) out.push([a.name, 'added', '', short(a.digest)])
  for (const d of r.removed) out.push([d.name, 'removed', short(d.digest), ''])
  return out
}

function table(lines: string[][]): string[] {
  const header = ['IMAGE', 'CHANGE', 'OLD', 'NEW']
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  return [header, ...lines].map((l) => `  ${l.map((c, i) => c.padEnd(widths[i])).join('  ')}`.trimEnd())
}

/** What `airlock diff` prints without --json. */
export function diffLines(r: DiffResult): string[] {
  const who = (s: DiffResult['old']) => `${s.name} ${s.version}${s.signed ? '' : ' (signature not checked)'}`
  const changes = rows(r)
  return [
    `${who(r.old)} → ${who(r.new)}`,
    ...(changes.length > 0 ? table(changes) : ['  no image added, removed or changed']),
    `  ${r.added.length} added, ${r.removed.length} removed, ${r.changed.length} changed, ${r.unchanged.length} unchanged`,
    `  new layers: ${r.layers.added.length} (${formatBytes(r.layers.addedBytes)}); layers no longer used: ${r.layers.removed.length} (${formatBytes(r.layers.removedBytes)})`,
    `  create --since ${r.old.archive}: ${r.differential.blobs} blobs, ${formatBytes(r.differential.bytes)}; leaves out ${r.differential.leftOut.blobs} blobs, ${formatBytes(r.differential.leftOut.bytes)}`,
  ]
}

export default class Diff extends AirlockCommand {
  static override summary = 'Show what changed between two bundles: images, platforms, new layers, the size of a differential bundle'
  static override description = 'Reads only the signed metadata of both archives (never a blob, so it is instant), after checking both signatures as verify does (--key, or --allow-unsigned). Images are matched by their name on the target: added, removed, changed (old → new digest, and each platform that differs). "new layers" are the layers NEW uses that OLD did not; the last line is what `create --since OLD` would write for NEW (new layers plus every manifest and config) and what it would leave out.'

  static override examples = [
    '<%= config.bin %> diff release-1.tar release-2.tar --key release.pub.asc',
    '<%= config.bin %> diff release-1.tar release-2.tar --key release.pub.asc --json',
  ]

  static override args = {
    old: Args.string({description: 'the earlier archive (a split archive: its first part)', required: true}),
    new: Args.string({description: 'the later archive', required: true}),
  }

  static override flags = {
    key: trustedKeysFlag,
    'allow-unsigned': allowUnsignedFlag,
  }

  async run(): Promise<DiffResult> {
    const {args, flags} = await this.parse(Diff)
    const r = await diffArchives(args.old, args.new, {keys: trustedKeyPaths(flags.key, environment()), allowUnsigned: flags['allow-unsigned']})
    if (!this.jsonEnabled()) for (const l of diffLines(r)) this.log(l)
    return r
  }
}
