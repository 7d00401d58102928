import readline from 'node:readline'
import {Writable} from 'node:stream'

/** Whether we may ask the person at the terminal (never in CI or with piped input). */
export function canPrompt(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY) && !process.env.CI
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
