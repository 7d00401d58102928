import cliProgress from 'cli-progress'

import {formatBytes, silentProgress} from '../core/progress.js'
import type {Progress} from '../core/progress.js'

export {formatBytes, silentProgress}
export type {Progress}

/** Progress on the terminal: bars on a TTY, one line per image otherwise, nothing for --json. */
class TtyProgress implements Progress {
  private bar?: cliProgress.SingleBar
  private total = 0
  begin(totalBytes: number, label: string): void {
    this.total = totalBytes
    this.done = 0
    this.started = Date.now()
    this.bar = new cliProgress.SingleBar({
      format: `${label} [{bar}] {percentage}% | {done}/{size} | {rate}/s | ETA {eta_formatted}`,
      hideCursor: true,
      stream: process.stderr,
      clearOnComplete: true,
    }, cliProgress.Presets.shades_classic)
    this.bar.start(Math.max(totalBytes, 1), 0, {done: formatBytes(0), size: formatBytes(totalBytes), rate: formatBytes(0)})
  }

  private started = Date.now()
  private done = 0
  advance(bytes: number): void {
    this.done += bytes
    const secs = Math.max((Date.now() - this.started) / 1000, 0.001)
    this.bar?.update(Math.min(this.done, Math.max(this.total, 1)), {done: formatBytes(this.done), size: formatBytes(this.total), rate: formatBytes(this.done / secs)})
  }

  note(message: string): void {
    if (this.bar) this.bar.stop()
    process.stderr.write(message + '\n')
    if (this.bar) {
      this.bar.start(Math.max(this.total, 1), Math.min(this.done, Math.max(this.total, 1)), {done: formatBytes(this.done), size: formatBytes(this.total), rate: '-'})
    }
  }

  end(): void {
    this.bar?.stop()
    this.bar = undefined
  }
}

class LineProgress implements Progress {
  begin(): void {}
  advance(): void {}
  note(message: string): void {
    process.stderr.write(message + '\n')
  }

  end(): void {}
}

export function progressFor(json: boolean): Progress {
  // --json keeps stdout for the result; warnings still reach stderr.
  if (json) return {...silentProgress, note: (m: string) => { if (m.startsWith('WARNING')) process.stderr.write(`${m}\n`) }}
  return process.stderr.isTTY ? new TtyProgress() : new LineProgress()
}
