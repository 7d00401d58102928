import {Command} from '@oclif/core/command'
import * as Flags from '@oclif/core/flags'
import type {Interfaces} from '@oclif/core'

import {AirlockError, EXIT} from '../core/errors.js'
import {environment} from './env.js'
import {DEBUG, QUIET} from './flag-table.js'
import {oclifFlag} from './flags.js'
import {Progress, progressFor} from './progress.js'
import {errorJson, writeErrorText} from './report.js'

/** What oclif's parser returns flags and arguments as. */
type Parsed = {[name: string]: unknown}

/**
 * Base for every airlock command: --json is enabled, and user-facing errors
 * (AirlockError) are printed as a clear message with no stack trace, with the
 * documented exit code. Anything else is a bug and keeps its stack (--debug or AIRLOCK_DEBUG
 * shows stacks for AirlockErrors too). --quiet silences this.log and the progress, never an
 * error, a warning or the --json output.
 */
export abstract class AirlockCommand extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    // oclif's own --json, with the variable oclif also reads for it in its help.
    json: Flags.boolean({description: 'Format output as json. [env: AIRLOCK_CONTENT_TYPE=json]', helpGroup: 'GLOBAL'}),
    debug: oclifFlag(DEBUG),
    quiet: oclifFlag(QUIET),
  }

  /** --quiet, known once the command has parsed its flags. */
  protected quiet = false

  protected override async parse<F extends Parsed, B extends Parsed, A extends Parsed>(
    options?: Interfaces.Input<F, B, A>, argv?: string[],
  ): Promise<Interfaces.ParserOutput<F, B, A>> {
    const parsed = await super.parse(options, argv)
    this.quiet = (parsed.flags as {quiet?: boolean}).quiet === true
    return parsed
  }

  /** Human output on stdout: none under --quiet (nor under --json, as oclif's own log). */
  override log(message?: string, ...args: unknown[]): void {
    if (!this.quiet) super.log(message, ...args)
  }

  /** Progress on stderr: none under --json or --quiet (warnings still shown). */
  protected progress(): Progress {
    return progressFor(this.jsonEnabled() || this.quiet)
  }

  /** --debug, or AIRLOCK_DEBUG set (read here: the error may come before the flags are parsed). */
  private debugEnabled(): boolean {
    const dash = this.argv.indexOf('--')
    return this.argv.slice(0, dash === -1 ? undefined : dash).includes('--debug') || Boolean(environment().AIRLOCK_DEBUG)
  }

  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    if (err instanceof AirlockError) {
      if (this.jsonEnabled()) this.logJson(errorJson(err))
      else writeErrorText(err, {debug: this.debugEnabled()})
      this.exit(err.exitCode)
    }
    // oclif's own parse errors (unknown flag, missing arg) are user errors: exit 2.
    if (err.oclif?.exit === 2 || (err as {name?: string}).name === 'CLIError' && err.oclif?.exit === undefined) {
      if (this.jsonEnabled()) {
        // Not oclif's dump of the whole parser state: the message, and exit 2.
        const [message, ...rest] = err.message.split('\n').filter((l) => l && !/^See more help with/.test(l))
        this.logJson({error: {code: 'cli.usage', message, details: rest}})
        this.exit(EXIT.INVALID_INPUT)
      }
      if (!err.oclif) err.oclif = {}
      err.oclif.exit = EXIT.INVALID_INPUT
    }
    return super.catch(err)
  }
}
