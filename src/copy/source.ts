import type {ArchiveFile, PlannedBlob} from '../transports/archive/writer.js'
import type {BlobCache, CacheWriter} from './cache.js'

/**
 * Where a blob can come from while an archive is filled (in the spirit of containers/image's
 * ImageSource): a resumed partial file, memory, the blob cache, a registry. Sources are tried in
 * the order they are chained; the first one that has the blob and whose copy verifies wins.
 */
export interface BlobSource {
  /** Which kind of source this is (results count bytes by origin). */
  readonly origin: BlobOrigin
  /** Over the network: tried only after every local source, under the progress bar. */
  readonly remote: boolean
  /** Its bytes are new to this machine: a copy is kept in the blob cache, if there is one. */
  readonly fresh: boolean
  /** A cheap check (no bytes read): false means "ask the next source". */
  has(blob: PlannedBlob): Promise<boolean>
  /**
   * Put the blob's verified bytes into its planned place (`target`). Throws SourceMiss when its
   * copy turned out unusable (the next source is tried); any other error is a failure.
   */
  provide(blob: PlannedBlob, target: BlobTarget): Promise<void>
}

export type BlobOrigin = 'resumed' | 'memory' | 'cache' | 'registry' | 'file'

/** The planned place of one blob in the archive being filled. */
export interface BlobTarget {
  /** The archive; the blob's bytes go to [blob.dataOffset, blob.dataOffset + blob.size). */
  readonly file: ArchiveFile
  /** Write `bufs` (in order) at offset `at` of the blob (and into the cache, for fresh sources). */
  write(bufs: Buffer[], at: number): Promise<void>
}

/** A source's copy of a blob was unusable (it cleaned up after itself): try the next source. */
export class SourceMiss extends Error {
  /** Shown to the user as a warning, if set (a silent miss has none). */
  readonly warning?: string
  constructor(message: string, warning?: string) {
    super(message)
    this.name = 'SourceMiss'
    this.warning = warning
  }
}

export interface ChainOptions {
  /** Fresh bytes are also written here (temp file, renamed once the blob is complete). */
  keep?: BlobCache
  /** A source's copy was unusable and the next one is tried. */
  onMiss?: (miss: SourceMiss, source: BlobSource) => void
}

/** Sources tried in order for each blob. */
export class SourceChain {
  constructor(readonly sources: readonly BlobSource[], private readonly opts: ChainOptions = {}) {}

  /**
   * Fill `blob` into `file` from the first source (local ones, or remote ones) that has it and
   * whose copy verifies. Returns that source, or undefined when none of them could.
   */
  async fill(blob: PlannedBlob, file: ArchiveFile, reach: 'local' | 'remote'): Promise<BlobSource | undefined> {
    for (const source of this.sources) {
      if (source.remote !== (reach === 'remote')) continue
      if (!(await source.has(blob))) continue
      if (await this.tryOne(source, blob, file)) return source
    }
    return undefined
  }

  private async tryOne(source: BlobSource, blob: PlannedBlob, file: ArchiveFile): Promise<boolean> {
    const keep = source.fresh && this.opts.keep ? await this.opts.keep.writer(blob.digest) : undefined
    try {
      await source.provide(blob, targetFor(file, blob, keep))
      await keep?.commit()
      return true
    } catch (error) {
      await keep?.abort()
      if (!(error instanceof SourceMiss)) throw error
      this.opts.onMiss?.(error, source)
      return false
    }
  }
}

function targetFor(file: ArchiveFile, blob: PlannedBlob, keep: CacheWriter | undefined): BlobTarget {
  return {
    file,
    async write(bufs, at) {
      await file.write(bufs, blob.dataOffset + at)
      await keep?.write(bufs)
    },
  }
}
