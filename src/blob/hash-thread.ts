import {createHash, Hash} from 'node:crypto'
import {parentPort} from 'node:worker_threads'

/**
 * The thread of WorkerHasher: sha256 of the chunks posted for each job, in order. A chunk in a
 * SharedArrayBuffer is hashed in place; one in ordinary memory arrives as a copy.
 */

export type HashThreadMessage =
  | {job: number; hex: true}
  | {job: number; buf: SharedArrayBuffer; off: number; len: number}
  | {job: number; bytes: Uint8Array}

export type HashThreadReply = {done: number} | {job: number; hex: string}

const port = parentPort!
const jobs = new Map<number, Hash>()

port.on('message', (m: HashThreadMessage) => {
  if ('hex' in m) {
    const h = jobs.get(m.job) ?? createHash('sha256')
    jobs.delete(m.job)
    port.postMessage({job: m.job, hex: h.digest('hex')} satisfies HashThreadReply)
    return
  }
  let h = jobs.get(m.job)
  if (!h) jobs.set(m.job, h = createHash('sha256'))
  const bytes = 'bytes' in m ? m.bytes : new Uint8Array(m.buf, m.off, m.len)
  h.update(bytes)
  port.postMessage({done: bytes.length} satisfies HashThreadReply)
})
