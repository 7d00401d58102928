import {AirlockError} from '../core/errors.js'
import {copyBlobFile} from '../transports/archive/writer.js'
import type {PlannedBlob} from '../transports/archive/writer.js'
import type {BlobCache} from './cache.js'
import {BlobSource, BlobTarget, SourceMiss} from './source.js'

/**
 * The blob cache as a source: the one place `create` reads blobs from the cache. Entries are
 * re-hashed while they are copied; a corrupt one is removed and the next source is tried.
 */
export class CacheSource implements BlobSource {
  readonly origin = 'cache'
  readonly remote = false
  readonly fresh = false

  constructor(private readonly cache: BlobCache) {}

  has(blob: PlannedBlob): Promise<boolean> {
    return this.cache.has(blob.digest, blob.size)
  }

  async provide(blob: PlannedBlob, target: BlobTarget): Promise<void> {
    try {
      await copyBlobFile(target.file, blob, this.cache.path(blob.digest))
    } catch (error) {
      if (!(error instanceof AirlockError && error.code === 'cache.corrupt')) throw error
      throw new SourceMiss(error.message, error.message.replace(', run again', '; pulling it again'))
    }
  }
}
