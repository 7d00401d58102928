/**
 * docker's credential helpers: `docker-credential-<x> get` with the server URL on stdin (secrets
 * never in argv), its JSON answer read back. Nothing a helper prints is echoed in our messages.
 */
import {spawn} from 'node:child_process'

import {AirlockError, InputError} from '../../core/errors.js'
import type {Credentials} from './transport/credentials.js'

/**
 * Run `docker-credential-<helper> get` with the server URL on stdin. Returns undefined when the
 * helper has no credentials for that server.
 */
export function runCredentialHelper(
  helper: string,
  serverURL: string,
  o: {env?: NodeJS.ProcessEnv; timeoutMs?: number} = {},
): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(helper)) {
    return Promise.reject(new InputError('credentials.helper_invalid', `invalid credential helper name: ${JSON.stringify(helper)}`))
  }
  const bin = `docker-credential-${helper}`
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['get'], {stdio: ['pipe', 'pipe', 'pipe'], env: o.env ?? process.env})
    const out: Buffer[] = []
    const err: Buffer[] = []
    let outLen = 0
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new AirlockError('credentials.helper_failed', `${bin} timed out`))
    }, o.timeoutMs ?? 30_000)
    child.stdout.on('data', (c: Buffer) => {
      outLen += c.length
      if (outLen <= 1024 * 1024) out.push(c)
    })
    child.stderr.on('data', (c: Buffer) => err.push(c))
    child.stdin.on('error', () => {})
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      if (e.code === 'ENOENT') {
        reject(new InputError('credentials.helper_missing', `credential helper ${bin} not found on PATH`))
      } else {
        reject(new AirlockError('credentials.helper_failed', `cannot run ${bin}: ${e.code ?? e.message}`))
      }
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      const stdout = Buffer.concat(out).toString('utf8')
      if (code !== 0) {
        const text = (stdout + '\n' + Buffer.concat(err).toString('utf8')).toLowerCase()
        if (text.includes('credentials not found')) {
          resolve(undefined)
          return
        }
        // stderr/stdout of a failing helper are not echoed: they could contain secrets.
        reject(new AirlockError('credentials.helper_failed', `${bin} get failed with exit code ${code}`))
        return
      }
      try {
        const j = JSON.parse(stdout) as {Username?: unknown; Secret?: unknown}
        const user = typeof j.Username === 'string' ? j.Username : ''
        const secret = typeof j.Secret === 'string' ? j.Secret : ''
        if (!secret) {
          resolve(undefined)
          return
        }
        resolve(user === '<token>' ? {identityToken: secret} : {username: user, password: secret})
      } catch {
        reject(new AirlockError('credentials.helper_failed', `${bin} get returned invalid JSON`))
      }
    })
    child.stdin.end(serverURL)
  })
}
