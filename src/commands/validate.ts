import {Args} from '@oclif/core'

import {AirlockCommand} from '../cli/base.js'
import {EXIT} from '../core/errors.js'
import {formatProblem, readBundleText, validateBundleText} from '../spec/load.js'
import type {Problem} from '../spec/types.js'

export interface ValidateResult {
  valid: boolean
  file: string
  problems: Problem[]
  /** Full normalised source references of the images (when valid). */
  images?: string[]
}

export default class Validate extends AirlockCommand {
  static override summary = 'Check a bundle.yaml and report every problem as FILE:LINE:COL'
  static override description = `Checks the file against the airlock/v1 schema (schemas/bundle.schema.json) and the rules the schema cannot express: image references and platforms are parsed and normalised, duplicate images, literal credentials and an expiry in the past are reported.
Every problem is printed on stderr as FILE:LINE:COL: message (at most 50). Exit status: 0 when valid, 2 when not.`

  static override examples = [
    {description: 'Check ./bundle.yaml', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Check another file', command: '<%= config.bin %> <%= command.id %> examples/quickstart/bundle.yaml'},
    {description: 'Machine-readable result (exit status still 2 when invalid)', command: '<%= config.bin %> <%= command.id %> bundle.yaml --json'},
  ]

  static override args = {
    file: Args.string({description: 'the bundle file to check', default: 'bundle.yaml', required: false}),
  }

  async run(): Promise<ValidateResult> {
    const {args} = await this.parse(Validate)
    const file = args.file ?? 'bundle.yaml'
    const text = await readBundleText(file)
    const {spec, problems} = validateBundleText(text, file)
    if (!spec || problems.length > 0) {
      if (!this.jsonEnabled()) {
        process.stderr.write(problems.map(formatProblem).join('\n') + '\n')
        const n = problems.filter((p) => p.code !== 'problems.truncated').length
        process.stderr.write(`${file}: ${n} problem${n === 1 ? '' : 's'}\n`)
      }
      process.exitCode = EXIT.INVALID_INPUT
      return {valid: false, file, problems}
    }
    const n = spec.images.length
    this.log(`${file}: valid — ${spec.metadata.name} ${spec.metadata.version}, ${n} image${n === 1 ? '' : 's'}`)
    return {valid: true, file, problems: [], images: spec.images.map((i) => i.refString)}
  }
}
