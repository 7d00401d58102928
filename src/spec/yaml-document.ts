/**
 * Parsing bundle.yaml text into data with positions: YAML syntax errors, duplicate keys and
 * warnings reported at LINE:COL, and "billion laughs" documents refused twice (alias nodes
 * counted by the lexer before the parse, alias expansion bounded while converting).
 */
import type {ErrorCode} from '../core/errors.js'
import {Lexer, LineCounter, parseDocument, visit, type Document} from 'yaml'

/** Bound on alias expansion (yaml's maxAliasCount): stops billion-laughs documents. */
export const MAX_ALIAS_COUNT = 100
/** At most this many alias nodes (`*name`) in a document: counted by the lexer before the (slower) parse. */
export const MAX_ALIAS_NODES = 1000
/** Lexer tokens that mark structure but are not source text. */
const CONTROL_TOKENS = new Set(['\u{FEFF}', '\x02', '\x18', '\x1f'])

/** Where problems go: a position in the source, a code and a message. */
export type Report = (line: number, col: number, code: ErrorCode, message: string) => void

export interface ParsedBundle {
  doc: Document
  lc: LineCounter
  /** The document as plain JSON-like data (not null). */
  data: unknown
}

/** Count alias tokens with yaml's lexer (fast), stopping past the limit; offset of the first one. */
function countAliases(text: string, limit: number): {count: number; first: number} {
  let count = 0
  let first = -1
  let offset = 0
  if (!text.includes('*')) return {count, first}
  for (const tok of new Lexer().lex(text)) {
    if (tok[0] === '*') {
      if (first < 0) first = offset
      if (++count > limit) break
    }
    if (!(tok.length === 1 && CONTROL_TOKENS.has(tok))) offset += tok.length
  }
  return {count, first}
}

/**
 * Parse `text`, reporting every problem found through `at`. Undefined when the document cannot be
 * checked further (too many aliases, a syntax error, an empty document).
 */
export function parseBundleYaml(text: string, at: Report): ParsedBundle | undefined {
  const aliases = countAliases(text, MAX_ALIAS_NODES)
  if (aliases.count > MAX_ALIAS_NODES) {
    const before = text.slice(0, Math.max(0, aliases.first))
    const line = before.split('\n').length
    const col = before.length - before.lastIndexOf('\n')
    at(line, col, 'yaml.alias_limit', `too many YAML aliases (more than ${MAX_ALIAS_NODES}): refusing a possible "billion laughs" document`)
    return undefined
  }
  const lc = new LineCounter()
  const doc = parseDocument(text, {lineCounter: lc, uniqueKeys: true, prettyErrors: false, strict: true, merge: false, keepSourceTokens: false})
  const fatal = reportParseErrors(doc, lc, text, at)
  if (fatal) return undefined
  const data = toData(doc, lc, at)
  if (data === undefined) return undefined
  if (data === null) {
    at(1, 1, 'spec.empty', 'bundle file is empty (start with `airlock init`)')
    return undefined
  }
  return {doc, lc, data}
}

/** Report the parser's errors and warnings; true when one of them is fatal (not a duplicate key). */
function reportParseErrors(doc: Document, lc: LineCounter, text: string, at: Report): boolean {
  let fatal = false
  const syntaxLines = new Set<number>()
  for (const err of doc.errors) {
    const pos = lc.linePos(err.pos[0])
    if (err.code === 'DUPLICATE_KEY') {
      const keyText = (/^\s*("[^"\n]*"|'[^'\n]*'|[^:\n,{}[\]]*?)\s*:/.exec(text.slice(err.pos[0], err.pos[0] + 300))?.[1] ?? '').trim()
      at(pos.line, pos.col, 'yaml.duplicate_key', keyText ? `duplicate key \`${keyText}\` (keys must be unique)` : 'duplicate key (keys must be unique)')
    } else {
      fatal = true
      // One syntax error per line: the parser's follow-on errors add nothing.
      if (syntaxLines.has(pos.line)) continue
      syntaxLines.add(pos.line)
      at(pos.line, pos.col, 'yaml.syntax', `YAML syntax error: ${err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`)
    }
  }
  for (const w of doc.warnings) {
    const pos = lc.linePos(w.pos[0])
    at(pos.line, pos.col, 'yaml.warning', `YAML: ${w.message.split('\n')[0]}`)
  }
  return fatal
}

/** The document's data (null when empty), or undefined after reporting why it cannot be built. */
function toData(doc: Document, lc: LineCounter, at: Report): unknown {
  try {
    return doc.toJS({maxAliasCount: MAX_ALIAS_COUNT}) ?? null
  } catch (error) {
    let offset = 0
    visit(doc, {
      Alias(_k, node) {
        offset = node.range?.[0] ?? 0
        return visit.BREAK
      },
    })
    const pos = lc.linePos(offset)
    const msg = /alias/i.test((error as Error).message)
      ? `too many YAML alias expansions (limit ${MAX_ALIAS_COUNT}): refusing a possible "billion laughs" document`
      : `cannot read the YAML document: ${(error as Error).message}`
    at(pos.line, pos.col, 'yaml.alias_limit', msg)
    return undefined
  }
}
