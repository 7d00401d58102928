/**
 * Every read and hash size of the blob pipeline, in one place. Most are 1 MiB: large enough that
 * per-read costs vanish, small enough to stay in a core's L2 cache while it is hashed.
 */

const MiB = 1024 * 1024

/**
 * Sequential reads of an archive (SequentialReader): one read is one chunk handed to a sink, and
 * a released chunk of exactly this size is read into again.
 */
export const READ_CHUNK = MiB

/**
 * Positional reads of the hashing threads (plain verify). Measured on a 2-core EPYC (1 MiB L2 per
 * core), page cache warm, `airlock verify` of 1.26 GB (10 rounds, medians): on both cores 0.68 s
 * in 128 KiB reads, 0.66 s in 512 KiB, 0.64 s in 1 MiB; on one core 1.06 / 1.04 / 1.05 s.
 */
export const HASH_CHUNK = MiB

/** Reads of a range that was verified before and is read again (serve, install re-reads). */
export const RANGE_CHUNK = MiB

/** Reads of a blob file copied into an archive (create from the blob cache). */
export const COPY_CHUNK = MiB

/** Pulled bytes gathered into one positional write of the archive (create). */
export const WRITE_BATCH = MiB

/** Reads of the small metadata entries at the head of an archive, on the positional (plain verify) path. */
export const HEAD_CHUNK = 64 * 1024

/** Most bytes posted to the hashing thread and not yet hashed: beyond, the reader waits for it. */
export const MAX_HASH_BEHIND = 16 * MiB

/** Buffering of a blob downloaded from a registry (a stream's highWaterMark). */
export const DOWNLOAD_BUFFER = MiB

/** Output pieces of gunzip when a layer is sent inflated (install --to docker). */
export const INFLATE_CHUNK = MiB

/**
 * Fewer bytes than this to hash are hashed on the main thread alone: starting a hashing thread
 * takes some 20–40 ms, hashing 2 MiB about 1 ms.
 */
export const MIN_THREADED_HASH = 2 * MiB
