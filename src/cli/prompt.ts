import readline from 'node:readline'
import {Writable} from 'node:stream'

import type {Environment} from './env.js'

/** Whether we may ask the person at the terminal (never in CI or with piped input). */
export function canPrompt(env: Environment): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY) && !env.CI
}

/** Read a secret from the terminal without echoing it. */
export async function promptSecret(question: string): Promise<string> {
  process.stderr.write(question)
  const muted = new Writable({write(_chunk, _enc, cb) { cb() }})
  const rl = readline.createInterface({input: process.stdin, output: muted, terminal: true})
  try {
    return await new Promise<string>((resolve) => rl.question('', resolve))
  } finally {
    rl.close()
    process.stderr.write('\n')
  }
}

/** The passphrase prompt handed to library code (which never prompts itself), when there is a terminal to ask on. */
export function passphrasePrompt(env: Environment): ((question: string) => Promise<string>) | undefined {
  return canPrompt(env) ? promptSecret : undefined
}
