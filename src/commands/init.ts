import {existsSync} from 'node:fs'
import {writeFile} from 'node:fs/promises'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import {Args, Flags} from '@oclif/core'

import {AirlockCommand} from '../cli/base.js'
import {InputError} from '../core/errors.js'
import {SCHEMA_PATH} from '../spec/schema.js'
import {starterBundle} from '../spec/template.js'

export default class Init extends AirlockCommand {
  static override summary = 'Write a commented starter bundle.yaml'
  static override description = `Writes a starter bundle.yaml with comments explaining every key, and a yaml-language-server modeline so that editors complete keys and flag mistakes. Refuses to overwrite an existing file unless --force is given.`

  static override examples = [
    {description: 'Write ./bundle.yaml', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Write to another path, replacing an existing file', command: '<%= config.bin %> <%= command.id %> site/bundle.yaml --force'},
  ]

  static override args = {
    file: Args.string({description: 'where to write the bundle file', default: 'bundle.yaml', required: false}),
  }

  static override flags = {
    force: Flags.boolean({char: 'f', description: 'overwrite an existing file', default: false}),
    name: Flags.string({description: 'bundle name (default: the directory name, if valid)'}),
  }

  async run(): Promise<{file: string}> {
    const {args, flags} = await this.parse(Init)
    const file = path.resolve(args.file ?? 'bundle.yaml')
    if (existsSync(file) && !flags.force) {
      throw new InputError('init.exists', `${args.file ?? 'bundle.yaml'} already exists (use --force to overwrite it)`)
    }
    const dir = path.dirname(file)
    if (!existsSync(dir)) throw new InputError('init.no_directory', `directory ${dir} does not exist`)
    const dirName = path.basename(dir).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '')
    const name = flags.name ?? dirName
    if (flags.name !== undefined && !/^[a-z0-9][a-z0-9._-]*$/.test(flags.name)) {
      throw new InputError('init.bad_name', `invalid --name "${flags.name}": use lowercase letters, digits, ".", "_" or "-", starting with a letter or digit`)
    }
    // Relative when the file sits inside the airlock package (e.g. examples/), else a file:// URL.
    const packageRoot = path.dirname(path.dirname(SCHEMA_PATH))
    const rel = path.relative(dir, SCHEMA_PATH).split(path.sep).join('/')
    const schemaRef = dir === packageRoot || dir.startsWith(packageRoot + path.sep) ? rel : pathToFileURL(SCHEMA_PATH).href
    try {
      await writeFile(file, starterBundle({name, schemaRef}), {mode: 0o644})
    } catch (error) {
      throw new InputError('init.write_failed', `cannot write ${file}: ${(error as Error).message}`, {cause: error})
    }
    this.log(`wrote ${args.file ?? 'bundle.yaml'} — edit it, then run: airlock validate${args.file && args.file !== 'bundle.yaml' ? ` ${args.file}` : ''}`)
    return {file}
  }
}
