import {createReadStream} from 'node:fs'

import {AirlockError} from '../core/errors.js'
import {verifiedChunks} from '../blob/verified.js'
import {WRITE_BATCH} from '../blob/sizes.js'
import type {BlobSource, BlobTarget} from '../copy/source.js'
import type {PlannedBlob} from '../transports/archive/writer.js'

/**
 * The `files:` of a bundle: local files, and URL downloads spooled to a temp dir while resolving.
 * Each is read again and checked against the digest it had when its manifest was made: a file
 * that changed in between is an error, never a different blob under the signed digest.
 */
export class FileSource implements BlobSource {
  readonly origin = 'file'
  readonly remote = false
  readonly fresh = false

  constructor(private readonly files: ReadonlyMap<string, string>, private readonly onBytes: (n: number) => void) {}

  async has(blob: PlannedBlob): Promise<boolean> {
    return this.files.has(blob.digest)
  }

  async provide(blob: PlannedBlob, target: BlobTarget): Promise<void> {
    const file = this.files.get(blob.digest)!
    const fail = () => new AirlockError('file.unreadable', `${file} changed while the bundle was being made (it no longer has ${blob.digest}, ${blob.size} bytes)`)
    let at = 0
    for await (const chunk of verifiedChunks(createReadStream(file, {highWaterMark: WRITE_BATCH}), blob, {fail})) {
      await target.write([chunk], at)
      at += chunk.length
      this.onBytes(chunk.length)
    }
  }
}
