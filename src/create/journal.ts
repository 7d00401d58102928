import {appendFile, readFile, rm, stat, writeFile} from 'node:fs/promises'

import {InputError} from '../core/errors.js'
import {airlockRunning} from '../core/process.js'
import {DIGEST_RE} from '../core/model.js'

/**
 * `OUT.partial.journal`: which blobs an unfinished `create` had completely written into
 * `OUT.partial`, and where. A rerun of an interrupted create reads it to resume instead of
 * downloading again. Its lines are hints only: every blob is re-hashed before it is reused.
 *
 *   airlock-journal 1 PID TOTAL PARTSIZE
 *   sha256:HEX SIZE OFFSET
 */
export interface JournalState {
  pid: number
  total: number
  partSize?: number
  /** digest → where its data lies in the partial archive. */
  blobs: Map<string, {size: number; offset: number}>
}

const MAX_JOURNAL_BYTES = 64 * 1024 * 1024
const HEAD_RE = /^airlock-journal 1 (\d+) (\d+) (\d+)$/
const LINE_RE = /^(sha256:[a-f0-9]{64}) (\d+) (\d+)$/

export function journalPath(outPath: string): string {
  return `${outPath}.partial.journal`
}

/** The journal an interrupted run left beside `outPath`, if any (undefined when unreadable). */
export async function readJournal(outPath: string): Promise<JournalState | undefined> {
  const file = journalPath(outPath)
  try {
    if ((await stat(file)).size > MAX_JOURNAL_BYTES) return undefined
    const lines = (await readFile(file, 'utf8')).split('\n')
    const head = HEAD_RE.exec(lines[0] ?? '')
    if (!head) return undefined
    const blobs = new Map<string, {size: number; offset: number}>()
    for (const line of lines.slice(1)) {
      const m = LINE_RE.exec(line)
      if (!m || !DIGEST_RE.test(m[1])) continue // a line cut short by the kill
      blobs.set(m[1], {size: Number(m[2]), offset: Number(m[3])})
    }
    const partSize = Number(head[3])
    return {pid: Number(head[1]), total: Number(head[2]), ...(partSize > 0 ? {partSize} : {}), blobs}
  } catch {
    return undefined
  }
}

/** Refuse to touch the partial archive of a create that is still running. */
export function checkNotRunning(outPath: string, j: JournalState | undefined): void {
  if (j && j.pid !== process.pid && airlockRunning(j.pid)) {
    throw new InputError('create.busy', `another airlock create (pid ${j.pid}) is writing ${outPath}`)
  }
}

export class Journal {
  private chain: Promise<void> = Promise.resolve()

  private constructor(readonly file: string) {}

  /**
   * Start a journal for a new layout (replacing any old one). `carried`: lines of an interrupted
   * run of the same layout, kept as the hints they are, so that a kill while they are re-hashed
   * does not lose them.
   */
  static async start(outPath: string, total: number, partSize?: number, carried: ReadonlyMap<string, {size: number; offset: number}> = new Map()): Promise<Journal> {
    const j = new Journal(journalPath(outPath))
    const lines = [...carried].map(([digest, w]) => `${digest} ${w.size} ${w.offset}\n`)
    try {
      await writeFile(j.file, `airlock-journal 1 ${process.pid} ${total} ${partSize ?? 0}\n${lines.join('')}`)
    } catch (error) {
      await rm(j.file, {force: true}) // e.g. created, then no space for its first line
      throw error
    }
    return j
  }

  /** Record that a blob is completely written at `offset` (appends are serialized). */
  done(digest: string, size: number, offset: number): Promise<void> {
    this.chain = this.chain.then(() => appendFile(this.file, `${digest} ${size} ${offset}\n`))
    return this.chain
  }

  async remove(): Promise<void> {
    await this.chain.catch(() => {})
    await rm(this.file, {force: true})
  }
}
