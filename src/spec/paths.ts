/**
 * Paths into a bundle.yaml: a JSON path (`images[2].ref`) names a value in messages and finds
 * its position (LINE:COL) in the YAML source, so every problem points at the text that caused it.
 */
import type {ErrorCode} from '../core/errors.js'
import {isAlias, isMap, isScalar, isSeq, type Document, type Node} from 'yaml'

/** One step of a path: a mapping key or a list index. */
export type Seg = string | number

/** A problem found in the data, before it is placed at a position in the source. */
export interface Issue {
  path: Seg[]
  /** Point at the key of the last path segment instead of its value. */
  atKey?: boolean
  message: string
  code: ErrorCode
}

export function label(segs: Seg[]): string {
  let s = ''
  for (const seg of segs) {
    if (typeof seg === 'number') s += `[${seg}]`
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) s += (s ? '.' : '') + seg
    else s += `[${JSON.stringify(seg)}]`
  }
  return s
}

export function withLabel(segs: Seg[], message: string): string {
  const l = label(segs)
  return l ? `${l}: ${message}` : message
}

/** A JSON pointer (ajv's instancePath) as path segments, list indexes as numbers. */
export function pointerToSegs(pointer: string, data: unknown): Seg[] {
  if (pointer === '') return []
  const out: Seg[] = []
  let cur: unknown = data
  for (const raw of pointer.slice(1).split('/')) {
    const s = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (Array.isArray(cur)) {
      out.push(Number(s))
      cur = cur[Number(s)]
    } else {
      out.push(s)
      cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[s] : undefined
    }
  }
  return out
}

export function getAt(data: unknown, segs: Seg[]): unknown {
  let cur = data
  for (const s of segs) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string | number, unknown>)[s]
  }
  return cur
}

function keyString(k: unknown): string {
  if (isScalar(k)) return String(k.value)
  return String(k)
}

/** The YAML node at a JSON path (and the key node of its last segment, when in a map). */
function nodeAt(doc: Document, segs: Seg[]): {node?: Node; key?: Node; parent?: Node} {
  let cur: unknown = doc.contents
  let key: Node | undefined
  let parent: Node | undefined
  for (const seg of segs) {
    if (isAlias(cur)) cur = cur.resolve(doc)
    parent = cur as Node
    key = undefined
    if (isMap(cur)) {
      const pair = cur.items.find((p) => keyString(p.key) === String(seg))
      if (!pair) return {parent}
      key = isScalar(pair.key) || isMap(pair.key) || isSeq(pair.key) ? (pair.key) : undefined
      cur = pair.value
    } else if (isSeq(cur)) {
      cur = cur.items[Number(seg)]
    } else {
      return {parent}
    }
  }
  return {node: (cur ?? undefined) as Node | undefined, key, parent}
}

/** The source offset of a path (its key with `atKey`), or of the nearest ancestor that has one. */
export function offsetOf(doc: Document, segs: Seg[], atKey: boolean): number {
  // Walk up the path until something has a position.
  for (let n = segs.length; n >= 0; n--) {
    const {node, key, parent} = nodeAt(doc, segs.slice(0, n))
    const pick = atKey && n === segs.length ? key ?? node : node ?? key
    const r = (pick as {range?: [number, number, number]} | undefined)?.range
    if (r) return r[0]
    const k = (key as {range?: [number, number, number]} | undefined)?.range
    if (k) return k[0]
    const pr = (parent as {range?: [number, number, number]} | undefined)?.range
    if (pr && n === segs.length) return pr[0]
  }
  return 0
}
