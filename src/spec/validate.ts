/**
 * Validate bundle.yaml text: YAML (with positions) → JSON Schema (ajv) → semantic checks.
 * Every problem is reported with FILE:LINE:COL; all of them (up to MAX_PROBLEMS), sorted by position.
 */
import path from 'node:path'

import type {Document, LineCounter} from 'yaml'

import {type Issue, offsetOf} from './paths.js'
import {bundleValidator} from './schema.js'
import {schemaIssues} from './schema-issues.js'
import {semanticChecks} from './semantic.js'
import type {BundleSpec, Problem} from './types.js'
import {type Report, parseBundleYaml} from './yaml-document.js'

/** Largest bundle.yaml we read. */
export const MAX_SPEC_BYTES = 1024 * 1024
/** At most this many problems are reported (one more line says how many were left out). */
export const MAX_PROBLEMS = 50

export interface ValidateOptions {
  /** "Now" for the expires-in-the-past check (default: the current time). */
  now?: Date
}

function finish(problems: Problem[]): Problem[] {
  problems.sort((a, b) => a.line - b.line || a.col - b.col || a.message.localeCompare(b.message))
  if (problems.length <= MAX_PROBLEMS) return problems
  const shown = problems.slice(0, MAX_PROBLEMS)
  const last = shown[shown.length - 1]
  shown.push({file: last.file, line: last.line, col: last.col, code: 'problems.truncated', message: `…and ${problems.length - MAX_PROBLEMS} more problems not shown`})
  return shown
}

/**
 * Validate bundle.yaml text. `file` is used in problems as given and (resolved) as the base for
 * relative paths. Returns the normalised spec only when there are no problems.
 */
export function validateBundleText(text: string, file: string, opts: ValidateOptions = {}): {spec?: BundleSpec; problems: Problem[]} {
  const problems: Problem[] = []
  const at: Report = (line, col, code, message) => {
    problems.push({file, line, col, code, message})
  }
  if (Buffer.byteLength(text, 'utf8') > MAX_SPEC_BYTES) {
    at(1, 1, 'file.too_large', `bundle file is larger than ${MAX_SPEC_BYTES / 1024 / 1024} MiB; refusing to parse it`)
    return {problems}
  }
  const abs = path.resolve(file)
  const dir = path.dirname(abs)
  const parsed = parseBundleYaml(text, at)
  if (!parsed) return {problems: finish(problems)}
  const {doc, lc, data} = parsed

  const validate = bundleValidator()
  const issues: Issue[] = []
  if (!validate(data)) issues.push(...schemaIssues(validate.errors ?? [], data))
  const sem = semanticChecks(data, dir, doc, lc, opts.now ?? new Date())
  issues.push(...sem.issues)
  placeIssues(issues, doc, lc, at)
  if (problems.length > 0 || !sem.spec) {
    if (problems.length === 0) at(1, 1, 'spec.invalid', 'bundle file is not a valid airlock/v1 Bundle')
    return {problems: finish(problems)}
  }
  return {spec: {file: abs, dir, ...sem.spec}, problems: []}
}

/** Report each issue at the source position of its path; one problem per position+message. */
function placeIssues(issues: Issue[], doc: Document, lc: LineCounter, at: Report): void {
  const seen = new Set<string>()
  for (const is of issues) {
    const pos = lc.linePos(offsetOf(doc, is.path, Boolean(is.atKey)))
    const k = `${pos.line}:${pos.col}:${is.message}`
    if (seen.has(k)) continue
    seen.add(k)
    at(pos.line, pos.col, is.code, is.message)
  }
}
