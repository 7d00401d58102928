import * as Args from '@oclif/core/args'

import {AirlockCommand} from '../cli/base.js'
import {completionCommands, completionScript, Shell, SHELLS} from '../cli/completion.js'

export interface CompletionResult {
  shell: Shell
  script: string
}

export default class Completion extends AirlockCommand {
  static override summary = 'Print a shell completion script (bash or zsh)'
  static override description = `Completes command names, each command's flags, and file names. Load it from the shell's startup file:

  bash, in ~/.bashrc:                  eval "$(airlock completion bash)"
  zsh, in ~/.zshrc (after compinit):   eval "$(airlock completion zsh)"`

  static override examples = [
    '<%= config.bin %> completion bash >> ~/.bashrc',
    'eval "$(<%= config.bin %> completion zsh)"',
  ]

  static override args = {
    shell: Args.string({description: 'the shell', options: [...SHELLS], required: true, ignoreStdin: true}),
  }

  async run(): Promise<CompletionResult> {
    const {args} = await this.parse(Completion)
    const shell = args.shell as Shell
    const sep = this.config.topicSeparator ?? ' '
    const commands = completionCommands(this.config.commands, sep)
    const topics = new Map(this.config.topics.map((t) => [t.name.split(':').join(sep), t.description ?? '']))
    const script = completionScript(shell, this.config.bin, commands, topics)
    // The script is the output itself, not a report: printed under --quiet too.
    if (!this.jsonEnabled()) process.stdout.write(script)
    return {shell, script}
  }
}
