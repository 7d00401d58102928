/**
 * ajv's errors for a bundle.yaml, as issues a person can act on: one message per problem in
 * plain words (not one per schema branch), unknown keys with a "did you mean", and literal
 * credentials under `registries` refused with the way to give them instead.
 */
import type {ErrorCode} from '../core/errors.js'
import type {ErrorObject} from 'ajv'

import {type Issue, type Seg, getAt, label, pointerToSegs, withLabel} from './paths.js'
import {closest} from './suggest.js'

const SECRET_KEYS: Record<string, 'usernameEnv' | 'passwordEnv'> = {
  username: 'usernameEnv', user: 'usernameEnv', login: 'usernameEnv',
  password: 'passwordEnv', passwd: 'passwordEnv', pass: 'passwordEnv', token: 'passwordEnv', secret: 'passwordEnv',
  identitytoken: 'passwordEnv', registrytoken: 'passwordEnv', accesstoken: 'passwordEnv', apikey: 'passwordEnv',
}

const MESSAGE_KEYWORDS = new Set(['type', 'const', 'enum', 'pattern', 'minLength', 'maxLength', 'format', 'anyOf', 'oneOf'])

function jsonType(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number'
  return typeof v
}

function typeMatches(schemaType: unknown, t: string): boolean {
  const types = Array.isArray(schemaType) ? schemaType : schemaType === undefined ? [] : [schemaType]
  return types.some((st) => st === t || (st === 'number' && t === 'integer'))
}

function typeName(t: string): string {
  switch (t) {
    case 'object':
      return 'a mapping'
    case 'array':
      return 'a list'
    case 'string':
      return 'a string'
    case 'boolean':
      return 'true or false'
    case 'integer':
      return 'an integer'
    case 'number':
      return 'a number'
    default:
      return t
  }
}

/** The issues of a failed schema validation of `data`. */
export function schemaIssues(errors: ErrorObject[], data: unknown): Issue[] {
  const drop = droppedByCombinators(errors, data)
  const kept = errors.filter((e) => !drop.has(e))
  const {issues, suppressRequired} = unknownKeyIssues(kept, data)
  for (const e of kept) {
    if (e.keyword === 'additionalProperties') continue
    const issue = keywordIssue(e, data, suppressRequired)
    if (issue) issues.push(issue)
  }
  return issues
}

/**
 * anyOf / oneOf: keep the branch whose type matches the data, or the combinator's own message;
 * the errors of every other branch are dropped.
 */
function droppedByCombinators(errors: ErrorObject[], data: unknown): Set<ErrorObject> {
  const drop = new Set<ErrorObject>()
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && e.keyword !== 'oneOf') continue
    const branches = Array.isArray(e.schema) ? (e.schema as Array<{type?: unknown; const?: unknown}>) : []
    const t = jsonType(getAt(data, pointerToSegs(e.instancePath, data)))
    const matching = branches.map((b, i) => (typeMatches(b.type, t) ? i : -1)).filter((i) => i >= 0)
    const prefix = e.schemaPath + '/'
    const under = (o: ErrorObject): boolean => o.instancePath === e.instancePath || o.instancePath.startsWith(e.instancePath + '/')
    const inBranch = (o: ErrorObject, i: number): boolean => under(o) && o.schemaPath.startsWith(`${prefix}${i}/`)
    for (const o of errors) {
      if (o === e || !under(o) || !o.schemaPath.startsWith(prefix)) continue
      if (!matching.some((i) => inBranch(o, i))) drop.add(o)
    }
    if (matching.length > 0) {
      const mine = errors.filter((o) => o !== e && matching.some((i) => inBranch(o, i)))
      const shallow = mine.every((o) => o.instancePath === e.instancePath && ['const', 'enum', 'type', 'pattern'].includes(o.keyword))
      if (shallow && mine.length > 0 && (e.parentSchema as {errorMessage?: string} | undefined)?.errorMessage) {
        for (const o of mine) drop.add(o)
      } else {
        drop.add(e)
      }
    }
  }
  return drop
}

/**
 * additionalProperties: a literal secret under `registries`, or an unknown key with the closest
 * allowed one. `suppressRequired` holds `${pointer}\0${prop}` for "missing key" errors that the
 * suggestion already explains (a misspelt key is not also reported missing).
 */
function unknownKeyIssues(kept: ErrorObject[], data: unknown): {issues: Issue[]; suppressRequired: Set<string>} {
  const issues: Issue[] = []
  const suppressRequired = new Set<string>()
  for (const e of kept) {
    if (e.keyword !== 'additionalProperties') continue
    const segs = pointerToSegs(e.instancePath, data)
    const extra = String((e.params as {additionalProperty: string}).additionalProperty)
    const underRegistries = segs[0] === 'registries' && segs.length >= 2
    const secretFor = underRegistries ? SECRET_KEYS[extra.toLowerCase()] : undefined
    if (secretFor) {
      suppressRequired.add(`${e.instancePath}\0${secretFor}`)
      issues.push({
        path: [...segs, extra],
        atKey: true,
        code: 'registry.literal_secret',
        message: withLabel(segs, `literal credential \`${extra}\` is not allowed in bundle.yaml: put it in an environment variable and give that variable's NAME as \`${secretFor}\`${segs.length === 2 ? ' under `auth`' : ''}`),
      })
      continue
    }
    const props = Object.keys(((e.parentSchema as {properties?: Record<string, unknown>} | undefined)?.properties) ?? {})
    const present = getAt(data, segs)
    const absent = props.filter((p) => !(present && typeof present === 'object' && p in (present)))
    const suggestion = closest(extra, absent) ?? closest(extra, props)
    if (suggestion) suppressRequired.add(`${e.instancePath}\0${suggestion}`)
    const where = segs.length ? ` in ${label(segs)}` : ''
    issues.push({
      path: [...segs, extra],
      atKey: true,
      code: 'schema.unknown_key',
      message: suggestion
        ? `unknown key \`${extra}\`${where}, did you mean \`${suggestion}\`?`
        : `unknown key \`${extra}\`${where}${props.length ? ` (allowed: ${props.join(', ')})` : ''}`,
    })
  }
  return {issues, suppressRequired}
}

/** The issue of one (non-additionalProperties) error, or undefined when it is suppressed. */
function keywordIssue(e: ErrorObject, data: unknown, suppressRequired: Set<string>): Issue | undefined {
  const segs = pointerToSegs(e.instancePath, data)
  if (e.keyword === 'required') {
    const missing = String((e.params as Record<string, unknown>).missingProperty)
    if (suppressRequired.has(`${e.instancePath}\0${missing}`)) return undefined
  }
  const {message, code} = keywordMessage(e, segs, getAt(data, segs))
  return {path: segs, code, message: withLabel(segs, message)}
}

/** The plain-words message for one schema keyword ("must be a list", "missing required key `x`"). */
/** The JSON Schema keywords bundle.schema.json uses, as problem codes (`schema.min_items`); any other is `schema.invalid`. */
const SCHEMA_KEYWORD_CODES = new Set<string>([
  'schema.additional_properties', 'schema.any_of', 'schema.const', 'schema.enum', 'schema.format', 'schema.max_items',
  'schema.max_length', 'schema.max_properties', 'schema.maximum', 'schema.min_items', 'schema.min_length', 'schema.minimum',
  'schema.one_of', 'schema.pattern', 'schema.required', 'schema.type', 'schema.unique_items',
] satisfies ErrorCode[])

function schemaCode(keyword: string): ErrorCode {
  const code = `schema.${keyword.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`
  return SCHEMA_KEYWORD_CODES.has(code) ? code as ErrorCode : 'schema.invalid'
}

function keywordMessage(e: ErrorObject, segs: Seg[], value: unknown): {message: string; code: ErrorCode} {
  const ps = e.parentSchema as {errorMessage?: string} | undefined
  const custom = MESSAGE_KEYWORDS.has(e.keyword) ? ps?.errorMessage : undefined
  const params = e.params as Record<string, unknown>
  let message: string
  let code = schemaCode(e.keyword)
  switch (e.keyword) {
    case 'required':
      message = `missing required key \`${String(params.missingProperty)}\``
      code = 'schema.required'
      break
    case 'type':
      if (segs[0] === 'registries' && segs[segs.length - 1] === 'auth' && segs.length === 3 && typeof value === 'string') {
        message = 'literal credentials are not allowed in bundle.yaml: use `auth: {usernameEnv: VAR, passwordEnv: VAR}` with the NAMES of environment variables'
        code = 'registry.literal_secret'
        break
      }
      message = custom ?? `must be ${typeName(String(params.type))}${value === null ? ' (the value is empty)' : ''}`
      break
    case 'const':
      message = custom ?? `must be \`${String(params.allowedValue)}\``
      break
    case 'enum':
      message = custom ?? `must be one of ${(params.allowedValues as unknown[]).map((v) => `\`${String(v)}\``).join(', ')}`
      break
    case 'minItems':
      message = Number(params.limit) === 1 ? 'must not be empty' : `must have at least ${String(params.limit)} items`
      break
    case 'maxItems':
      message = `must have at most ${String(params.limit)} items`
      break
    case 'maxProperties':
      message = `must have at most ${String(params.limit)} entries`
      break
    case 'uniqueItems':
      message = `has duplicate entries (items ${String(params.j)} and ${String(params.i)} are the same)`
      break
    case 'minLength':
      message = custom ?? (Number(params.limit) === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters`)
      break
    case 'maxLength':
      message = custom ?? `must be at most ${String(params.limit)} characters`
      break
    default:
      message = custom ?? e.message ?? `fails ${e.keyword}`
  }
  return {message, code}
}
