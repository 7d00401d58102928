import type {MirrorPlan} from '../plan.js'

/** One file of a runtime's configuration, by its path under the directory the runtime reads. */
export interface ConfigFile {
  path: string
  content: string
}

export interface FormatOptions {
  /** Absolute path of the PEM CA file on the nodes (--ca-file). */
  caFile?: string
  /** The archive, as the command was given it (named in messages). */
  archive: string
  /** Bundle name and version, named in the files' comments. */
  bundle: {name: string; version: string}
}

/** What a format writes, where its files go, and what else the person must do. */
export interface GeneratedConfig {
  files: ConfigFile[]
  /** Where the runtime reads the files from (the usual -o directory). */
  directory?: string
  notes: string[]
}

export type FormatGenerator = (plan: MirrorPlan, opts: FormatOptions) => GeneratedConfig

/** The first comment lines of every generated file. */
export function header(plan: MirrorPlan, opts: FormatOptions, comment = '#'): string {
  return [
    `${comment} Written by airlock mirror-config for bundle ${opts.bundle.name} ${opts.bundle.version}: pull these images by their`,
    `${comment} original names from the mirror that \`airlock install --to ${plan.registry.target}\` filled.`,
  ].join('\n')
}

/** `# name -> mirror` comment lines for the images of one upstream host. */
export function imageLines(images: {name: string; mirror: string}[], comment = '#'): string {
  return images.map((i) => `${comment}   ${i.name} -> ${i.mirror}`).join('\n')
}
