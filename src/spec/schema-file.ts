/**
 * Where the bundle JSON Schema is read from: schemas/bundle.schema.json relative to the package
 * root, which works both from src/ (tsx) and dist/ (tsc). The single executable has no package
 * root: its build (scripts/build-sea.mjs) replaces this module with one holding the file's text.
 */
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

/** Absolute path of schemas/bundle.schema.json in the installed package. */
export const SCHEMA_PATH = fileURLToPath(new URL('../../schemas/bundle.schema.json', import.meta.url))

/** The schema file's text (throws as readFileSync does). */
export function readSchemaText(): string {
  return readFileSync(SCHEMA_PATH, 'utf8')
}
