/**
 * The JSON Schema in schemas/bundle.schema.json is the single source of truth for the bundle.yaml
 * shape: editors use it for completion, and ajv runs it here. It is read at run time (schema-file.ts).
 */
import {Ajv, type AnySchemaObject, type ValidateFunction} from 'ajv'

import {AirlockError} from '../core/errors.js'
import {readSchemaText, SCHEMA_PATH} from './schema-file.js'

export {SCHEMA_PATH} from './schema-file.js'

let cachedSchema: AnySchemaObject | undefined
let cachedValidator: ValidateFunction | undefined

/** The parsed bundle JSON Schema. */
export function bundleSchema(): AnySchemaObject {
  if (!cachedSchema) {
    try {
      cachedSchema = JSON.parse(readSchemaText()) as AnySchemaObject
    } catch (error) {
      throw new AirlockError('schema.missing', `cannot read the bundle schema at ${SCHEMA_PATH} (broken installation?)`, {cause: error})
    }
  }
  return cachedSchema
}

/** A compiled ajv validator (allErrors, verbose: errors carry their schema and parentSchema). */
export function bundleValidator(): ValidateFunction {
  if (!cachedValidator) {
    const ajv = new Ajv({allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, logger: false})
    // `errorMessage` is the friendly message shown for a failing keyword (yaml-language-server shows it too).
    ajv.addKeyword({keyword: 'errorMessage', schemaType: 'string'})
    cachedValidator = ajv.compile(bundleSchema())
  }
  return cachedValidator
}
