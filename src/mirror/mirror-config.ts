/**
 * `airlock mirror-config`: from a bundle's signed metadata, the configuration each container
 * runtime needs so that the bundle's images, pulled by their ORIGINAL names, come from the
 * registry `install --to registry://HOST/PREFIX` filled.
 */
import {mkdir} from 'node:fs/promises'
import path from 'node:path'

import {AirlockError, InputError} from '../core/errors.js'
import {fsError} from '../core/fs-errors.js'
import {writeFileAtomic} from '../core/fs.js'
import {readSignedHeads} from '../verify/signed-head.js'
import {containerdConfig} from './formats/containerd.js'
import {dockerConfig} from './formats/docker.js'
import {k3sConfig} from './formats/k3s.js'
import {registriesConfConfig} from './formats/registries-conf.js'
import type {ConfigFile, FormatGenerator} from './formats/types.js'
import {parseMirrorRegistry, planMirror, UpstreamHost} from './plan.js'

export const MIRROR_FORMATS = ['containerd', 'registries.conf', 'k3s', 'docker'] as const
export type MirrorFormat = (typeof MIRROR_FORMATS)[number]

const GENERATORS: Record<MirrorFormat, FormatGenerator> = {
  containerd: containerdConfig,
  'registries.conf': registriesConfConfig,
  k3s: k3sConfig,
  docker: dockerConfig,
}

export interface MirrorConfigOptions {
  archive: string
  /** HOST[:PORT][/PREFIX], as after `install --to registry://`. */
  registry: string
  format: string
  /** Write the files under this directory (else they are only returned). */
  outDir?: string
  /** Absolute path of the mirror's CA file on the nodes. */
  caFile?: string
  /** The mirror speaks plain HTTP (as `install --insecure`); loopback hosts always do. */
  insecure?: boolean
  keys: string[]
  allowUnsigned?: boolean
}

export interface MirrorConfigResult {
  archive: string
  bundle: {name: string; version: string}
  signed: boolean
  format: MirrorFormat
  /** The mirror, as `install --to` names it, and how it is reached. */
  registry: {target: string; origin: string; prefix: string}
  /** The upstream hosts redirected, with each image's original name and its name on the mirror. */
  upstreams: UpstreamHost[]
  /** The files, by path under the directory the runtime reads (empty for docker). */
  files: ConfigFile[]
  /** Where the runtime reads them (the usual -o). */
  directory?: string
  /** Files written (with -o), full paths. */
  written: string[]
  notes: string[]
}

function checkFormat(format: string): MirrorFormat {
  if ((MIRROR_FORMATS as readonly string[]).includes(format)) return format as MirrorFormat
  throw new InputError('mirror.bad_format', `--format ${JSON.stringify(format)}: use ${MIRROR_FORMATS.join(', ')}`)
}

export async function mirrorConfig(opts: MirrorConfigOptions): Promise<MirrorConfigResult> {
  const format = checkFormat(opts.format)
  const registry = parseMirrorRegistry(opts.registry, {insecure: opts.insecure})
  if (opts.caFile !== undefined && !path.isAbsolute(opts.caFile)) {
    throw new InputError('mirror.ca_file', `--ca-file ${JSON.stringify(opts.caFile)}: give the CA file's absolute path on the nodes (the runtimes read it there)`)
  }
  const [head] = await readSignedHeads([opts.archive], {keys: opts.keys, allowUnsigned: opts.allowUnsigned})
  const {bundle} = head.metadata
  const plan = planMirror(head.metadata.images, registry)
  const generated = GENERATORS[format](plan, {archive: opts.archive, bundle, ...(opts.caFile ? {caFile: opts.caFile} : {})})
  const written = opts.outDir === undefined ? [] : await writeFiles(opts.outDir, generated.files)
  return {
    archive: opts.archive,
    bundle: {name: bundle.name, version: bundle.version},
    signed: head.verified,
    format,
    registry: {target: registry.target, origin: registry.origin, prefix: registry.prefix},
    upstreams: plan.upstreams,
    files: generated.files,
    ...(generated.directory ? {directory: generated.directory} : {}),
    written,
    notes: [...plan.notes, ...generated.notes],
  }
}

/** Each file atomically under `dir` (its subdirectories made): a runtime never reads half a file. */
async function writeFiles(dir: string, files: ConfigFile[]): Promise<string[]> {
  const written: string[] = []
  for (const f of files) {
    const full = path.join(dir, f.path)
    try {
      await mkdir(path.dirname(full), {recursive: true})
      await writeFileAtomic(full, Buffer.from(f.content))
    } catch (error) {
      const mapped = fsError(error, full)
      if (mapped instanceof AirlockError) throw mapped
      throw new AirlockError('mirror.output', `cannot write ${full}: ${(error as Error).message}`, {cause: error})
    }
    written.push(full)
  }
  return written
}

/** The next step `install --to registry://…` prints: this command, for the same registry. */
export function mirrorConfigHint(archive: string, to: string, insecure: boolean): string {
  return `next: airlock mirror-config ${archive} --registry ${to.slice('registry://'.length)} --format containerd|registries.conf|k3s${insecure ? ' --insecure' : ''} -o DIR  (pull by the original names on the nodes)`
}
