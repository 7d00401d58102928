/**
 * Load a bundle.yaml: read it (size-capped, clear errors for a missing or unreadable file), then
 * validate it (validate.ts) and throw one InputError listing every FILE:LINE:COL problem.
 */
import {readFile, stat} from 'node:fs/promises'

import {InputError} from '../core/errors.js'
import type {BundleSpec, Problem} from './types.js'
import {MAX_SPEC_BYTES, type ValidateOptions, validateBundleText} from './validate.js'

export {resolveExpiry} from './expiry.js'
export {MAX_PROBLEMS, MAX_SPEC_BYTES, type ValidateOptions, validateBundleText} from './validate.js'
export {MAX_ALIAS_COUNT, MAX_ALIAS_NODES} from './yaml-document.js'

/** Format a problem as `FILE:LINE:COL: message`. */
export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.message}`
}

/** Read a bundle.yaml (at most 1 MiB), with the file's problems, or an InputError when unreadable. */
export async function readBundleText(file: string): Promise<string> {
  let size: number
  try {
    const st = await stat(file)
    if (st.isDirectory()) throw new InputError('spec.not_a_file', `${file} is a directory, not a bundle.yaml`)
    size = st.size
  } catch (error) {
    if (error instanceof InputError) throw error
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new InputError('spec.not_found', `${file} not found (create one with \`airlock init\`)`)
    throw new InputError('spec.unreadable', `cannot read ${file}: ${(error as Error).message}`, {cause: error})
  }
  if (size > MAX_SPEC_BYTES) throw new InputError('spec.too_large', `${file} is larger than ${MAX_SPEC_BYTES / 1024 / 1024} MiB; refusing to parse it`)
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    throw new InputError('spec.unreadable', `cannot read ${file}: ${(error as Error).message}`, {cause: error})
  }
}

/**
 * Load, validate and normalise a bundle.yaml. Throws InputError('spec.invalid') whose details are
 * `FILE:LINE:COL: message` lines when the file has problems.
 */
export async function loadBundleSpec(file: string, opts: ValidateOptions = {}): Promise<BundleSpec> {
  const text = await readBundleText(file)
  const {spec, problems} = validateBundleText(text, file, opts)
  if (!spec || problems.length > 0) {
    throw new InputError('spec.invalid', `${file} is not a valid bundle (${problems.length} problem${problems.length === 1 ? '' : 's'})`, {
      details: problems.map(formatProblem),
    })
  }
  return spec
}