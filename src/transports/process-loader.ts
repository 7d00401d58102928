/**
 * A loader CLI (`podman load`, `ctr images import -`) fed a VerifiedTarStream on its stdin.
 *
 * The process is started at begin(), verified blobs are piped to it as they arrive, and its stdin
 * is ended only by finish() at commit. abort() SIGKILLs the process BEFORE anything closes its
 * stdin, so the loader never sees an end of input and never loads a partial archive.
 * Shared by the podman and containerd destinations.
 */
import {ChildProcess, execFile, spawn} from 'node:child_process'

import {AirlockError, type ErrorCode} from '../core/errors.js'
import {VerifiedTarStream} from './docker-archive/tarstream.js'

const MAX_OUTPUT = 256 * 1024

/** The error code of a loader CLI's failure, and the one for the CLI not being installed. */
export type LoaderCode = 'install.podman_failed' | 'install.containerd_failed' | 'install.confirm_failed'
const NOT_FOUND: Record<LoaderCode, ErrorCode> = {
  'install.podman_failed': 'install.podman_not_found',
  'install.containerd_failed': 'install.containerd_not_found',
  'install.confirm_failed': 'install.confirm_not_found',
}

export interface ProcessResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

function capped(): {push(b: Buffer): void; text(): string} {
  const chunks: Buffer[] = []
  let size = 0
  return {
    push(b) {
      if (size >= MAX_OUTPUT) return
      chunks.push(b.subarray(0, MAX_OUTPUT - size))
      size += b.length
    },
    text: () => Buffer.concat(chunks).toString('utf8'),
  }
}

/** Last meaningful lines of a tool's stderr, for an error message. */
export function reasonOf(stderr: string, stdout = ''): string {
  const lines = (stderr || stdout).split('\n').map((l) => l.trim()).filter(Boolean)
  if (lines.length === 0) return 'no error output'
  return lines.slice(-3).join(' | ').slice(0, 2000)
}

export class ProcessLoader {
  readonly tar = new VerifiedTarStream()
  private child?: ChildProcess
  private exited?: Promise<ProcessResult>
  private result?: ProcessResult
  private spawnError?: Error
  private finishing = false
  private killed = false

  constructor(private readonly opts: {tool: string; bin: string; args: string[]; env?: NodeJS.ProcessEnv; code: LoaderCode; what: string}) {}

  start(): void {
    const child = spawn(this.opts.bin, this.opts.args, {stdio: ['pipe', 'pipe', 'pipe'], env: this.opts.env ?? process.env})
    this.child = child
    const out = capped()
    const err = capped()
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    // EPIPE after the process died or was killed: reported through the exit status instead.
    child.stdin.on('error', () => {})
    this.exited = new Promise<ProcessResult>((resolve) => {
      child.once('error', (e) => {
        this.spawnError = e
        this.tar.fail(e)
        resolve({code: null, signal: null, stdout: out.text(), stderr: err.text()})
      })
      child.once('close', (code, signal) => {
        this.result = {code, signal, stdout: out.text(), stderr: err.text()}
        // Exited before we ended its input: stop feeding it (a write would wait forever).
        if (!this.finishing) this.tar.fail(new Error(`${this.opts.tool} exited early`))
        resolve(this.result)
      })
    })
    // fail() destroys the stream with the cause; that error is reported by the caller, not here.
    this.tar.stream.on('error', () => {})
    this.tar.stream.pipe(child.stdin)
  }

  /** The error to report when the process is gone before commit (it ended early or never started). */
  earlyError(): AirlockError | undefined {
    if (this.spawnError) return this.spawnErrorToAirlock(this.spawnError)
    if (this.result && !this.killed) {
      return new AirlockError(this.opts.code, `${this.opts.what}: ${this.opts.tool} stopped before the archive was complete (${this.describeExit(this.result)}): ${reasonOf(this.result.stderr, this.result.stdout)}`)
    }
    return undefined
  }

  private spawnErrorToAirlock(e: Error & {code?: string}): AirlockError {
    if (e.code === 'ENOENT') return new AirlockError(NOT_FOUND[this.opts.code], `${this.opts.tool} not found (${this.opts.bin}): install it or put it on PATH`, {cause: e})
    return new AirlockError(this.opts.code, `${this.opts.what}: cannot run ${this.opts.bin}: ${e.message}`, {cause: e})
  }

  private describeExit(r: ProcessResult): string {
    return r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`
  }

  /** Run a step that writes to the stream; if the process died meanwhile, report ITS reason. */
  async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      if (this.tar.stream.destroyed) {
        // Give a just-exited process the moment it needs to deliver its exit status.
        if (this.child && !this.result && !this.spawnError) await Promise.race([this.exited, new Promise((r) => setTimeout(r, 2000))])
        const early = this.earlyError()
        if (early) throw early
      }
      throw error
    }
  }

  /** End the input cleanly and wait for the process; returns its output on exit code 0. */
  async finish(): Promise<ProcessResult> {
    const early = this.earlyError()
    if (early) throw early
    this.finishing = true
    await this.guard(() => this.tar.finish())
    const r = await this.exited!
    if (this.spawnError) throw this.spawnErrorToAirlock(this.spawnError)
    if (r.code !== 0) {
      throw new AirlockError(this.opts.code, `${this.opts.what}: ${this.opts.tool} failed (${this.describeExit(r)}): ${reasonOf(r.stderr, r.stdout)}`)
    }
    return r
  }

  /** Kill the process first (so it never sees the end of its input), then drop the stream. */
  async kill(error: unknown): Promise<void> {
    this.killed = !this.result
    if (this.child && !this.result && !this.spawnError) this.child.kill('SIGKILL')
    this.tar.fail(error)
    if (this.exited) await this.exited
  }
}

/** Run a short command (inspect, list) and return stdout; AirlockError with its stderr on failure. */
export function run(bin: string, args: string[], opts: {code: LoaderCode; what: string; tool: string; env?: NodeJS.ProcessEnv; timeoutMs?: number}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, {env: opts.env ?? process.env, maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 120_000}, (error, stdout, stderr) => {
      if (error) {
        const e = error as NodeJS.ErrnoException & {code?: string | number}
        if (e.code === 'ENOENT') {
          reject(new AirlockError(NOT_FOUND[opts.code], `${opts.tool} not found (${bin}): install it or put it on PATH`, {cause: error}))
          return
        }
        reject(new AirlockError(opts.code, `${opts.what}: ${reasonOf(String(stderr), String(stdout)) || error.message}`, {cause: error}))
        return
      }
      resolve(String(stdout))
    })
  })
}
