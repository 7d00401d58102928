import type {Hook} from '@oclif/core'

import {EXIT, InputError} from '../core/errors.js'
import {closest} from '../spec/suggest.js'
import {errorJson} from './report.js'

/**
 * oclif's `command_not_found` hook (package.json oclif.hooks): `airlock instal …` is refused as
 * invalid input (exit 2) with the closest command, never run in its place (a typo must not start
 * an install). Under --json the error object goes to stdout, as for any other error.
 */

/** The command a mistyped one most likely meant: a close one by edit distance, else the only one it begins. */
export function suggestCommand(typed: string, commands: readonly string[]): string | undefined {
  const near = closest(typed, commands)
  if (near) return near
  const prefixed = commands.filter((c) => c.startsWith(typed))
  return prefixed.length === 1 ? prefixed[0] : undefined
}

/** The error for an unknown command `typed` (words separated as typed). */
export function unknownCommandError(typed: string, commands: readonly string[], bin: string): InputError {
  const hint = suggestCommand(typed, commands)
  return new InputError('cli.unknown_command', `"${typed}" is not an ${bin} command${hint ? ` (did you mean "${hint}"?)` : ''}; \`${bin} --help\` lists them`)
}

const hook: Hook<'command_not_found'> = async function (opts) {
  const {config} = opts
  const words = (id: string) => id.split(':').join(config.topicSeparator ?? ' ')
  const visible = [
    ...config.commands.filter((c) => !c.hidden).map((c) => c.id),
    ...config.topics.filter((t) => !t.hidden).map((t) => t.name),
  ]
  // With a space as separator oclif joins the arguments to the id (`instal x.tar` → instal:x.tar):
  // the unknown command is the topics typed, then one word.
  const parts = opts.id.split(':')
  let n = 1
  while (n < parts.length && config.findTopic(parts.slice(0, n).join(':'))) n++
  const error = unknownCommandError(words(parts.slice(0, n).join(':')), [...new Set(visible)].map(words), config.bin)
  const dash = opts.argv?.indexOf('--') ?? -1
  const json = (dash === -1 ? opts.argv : opts.argv?.slice(0, dash))?.includes('--json')
  if (json) process.stdout.write(`${JSON.stringify(errorJson(error), null, 2)}\n`)
  else process.stderr.write(`error: ${error.message}\n`)
  this.exit(EXIT.INVALID_INPUT)
}

export default hook
