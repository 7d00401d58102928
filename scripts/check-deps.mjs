#!/usr/bin/env node
// The import rules of src/, checked with dependency-cruiser (every import resolved to its file,
// type-only imports included): the layer rules and folder cycles of .dependency-cruiser.cjs, plus
// cycles between the top-level folders of src/ (src/create <-> src/install). dependency-cruiser's
// folder scope has one node per leaf folder, so it misses a cycle that leaves src/transports from
// one subfolder and comes back into another; this check collapses each module to src/<folder>.
// Usage: node scripts/check-deps.mjs [DIR]   (DIR holds src/ and tsconfig.json; default: the repo)
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {cruise, format} from 'dependency-cruiser'
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options'
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** `src/install/x.ts` -> `src/install`; a file directly in src/ stands for itself. */
function topFolder(source) {
  const parts = source.split('/')
  return parts.length > 2 ? parts.slice(0, 2).join('/') : source
}

/** Strongly connected components with more than one member (Tarjan), in a stable order. */
function cycles(graph) {
  const index = new Map()
  const low = new Map()
  const stack = []
  const onStack = new Set()
  const found = []
  let next = 0
  const visit = (v) => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    onStack.add(v)
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v), low.get(w)))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), index.get(w)))
      }
    }
    if (low.get(v) !== index.get(v)) return
    const scc = []
    let w
    do {
      w = stack.pop()
      onStack.delete(w)
      scc.push(w)
    } while (w !== v)
    if (scc.length > 1) found.push(scc.sort())
  }
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v)
  return found
}

/** Cycles between the top-level folders of src/, each with one import per folder edge inside it. */
function topFolderCycles(modules) {
  const graph = new Map()
  const witness = new Map()
  for (const m of modules) {
    const from = topFolder(m.source)
    if (!graph.has(from)) graph.set(from, new Set())
    for (const d of m.dependencies) {
      if (!d.resolved.startsWith('src/')) continue
      const to = topFolder(d.resolved)
      if (to === from) continue
      graph.get(from).add(to)
      const key = `${from} ${to}`
      if (!witness.has(key)) witness.set(key, `${m.source} → ${d.resolved}`)
    }
  }
  return cycles(graph).map((members) => {
    const inside = new Set(members)
    const edges = [...witness].filter(([key]) => key.split(' ').every((f) => inside.has(f))).map(([, edge]) => edge).sort()
    return {members, edges}
  })
}

/**
 * Check the tree at `dir` (its src/ and tsconfig.json) against the rules of `config`.
 * Returns the report to print and how many problems it lists.
 */
export async function checkDeps(dir = repo, config = path.join(repo, '.dependency-cruiser.cjs')) {
  const options = await extractDepcruiseOptions(config)
  const tsConfigFile = path.join(dir, 'tsconfig.json')
  const tsConfig = extractTSConfig(tsConfigFile)
  // Rule paths are matched against names relative to baseDir (src/...).
  const cruiseOptions = {...options, baseDir: dir, tsConfig: {fileName: tsConfigFile}, outputType: 'json'}
  const {output} = await cruise(['src'], cruiseOptions, {}, {tsConfig})
  const cruised = typeof output === 'string' ? JSON.parse(output) : output
  const violations = cruised.summary.violations.filter((v) => v.rule.severity === 'error' || v.rule.severity === 'warn')
  const top = topFolderCycles(cruised.modules)
  const lines = []
  if (violations.length > 0) lines.push((await format(cruised, {outputType: 'err'})).output.trimEnd())
  for (const c of top) {
    lines.push(`  error no-top-folder-cycle: ${c.members.join(' ⇄ ')}`)
    for (const e of c.edges) lines.push(`      ${e}`)
  }
  return {problems: violations.length + top.length, violations, topCycles: top, report: lines.join('\n')}
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const {problems, report} = await checkDeps(process.argv[2] ? path.resolve(process.argv[2]) : repo)
  if (problems > 0) {
    console.error(report)
    console.error(`\n✖ import rules: ${problems} problem${problems === 1 ? '' : 's'} (see .dependency-cruiser.cjs)`)
    process.exit(1)
  }
  console.log('✔ import rules: no layer violation, no folder cycle')
}
