/**
 * `--to docker`: the Docker Engine API over its unix socket (no docker CLI).
 *
 * begin() opens `POST /images/load?quiet=1` with a chunked application/x-tar body that a
 * VerifiedTarStream writes into directly, verified blobs as they arrive. dockerd unpacks the whole
 * body into a temporary directory and loads images only once the body has ended properly, so
 * commit() (which ends the tar and the chunked body) is the moment anything becomes visible.
 * abort() destroys the request socket and the stream: dockerd sees a body that breaks off
 * without its terminating chunk and loads nothing.
 *
 * With dockerd's classic image store (GET /info), the body is a plain docker archive: manifest.json
 * plus the configs and layers it names, and gzip layers that compress well are sent inflated (see
 * inflatedSizeFor). With the containerd image store, or when /info does not say, it is the full
 * OCI layout plus manifest.json, every blob as it is.
 *
 * Only runnable images are loaded: entries with nothing runnable (charts, signatures, attestations,
 * other artifacts) and the other manifests of a loaded entry are left out, and reported as such
 * (leftOut). zstd layers are decompressed on the way into the classic store (zstd.ts): Docker
 * Engine 20.10 cannot unpack them.
 *
 * The socket comes from `host` (`unix:///path`; the install command passes DOCKER_HOST), else
 * /var/run/docker.sock.
 */
import type {Destination, DestinationContext} from '../types.js'
import {DockerEngine} from './engine.js'
import {DockerLoad, LoadStats} from './load.js'

export {classicImageStore, dockerSocketPath, parseJsonStream} from './engine.js'
export {inflatedSizeFor} from './inflate.js'
export type {GzipProbe} from './inflate.js'

export interface DockerOptions {
  /** `unix:///path/docker.sock` (or a plain socket path). Default /var/run/docker.sock. */
  host?: string
  /**
   * Send gzip layers inflated (default true; the install command passes false for
   * AIRLOCK_DOCKER_LAYERS=gzip). dockerd's
   * classic image store unpacks a load only after the whole body arrived, and inflates gzip
   * there with Go's gzip on one core; inflating here instead overlaps that work with the upload.
   * Used only with a classic store (not the containerd image store, which keeps the compressed
   * blobs) and an archive that can be read again by offset (to take each layer's size from its
   * gzip trailer before its tar header goes out).
   */
  inflate?: boolean
}

export interface DockerDestination extends Destination {
  /**
   * Layers sent inflated, and sent as they are, in this load; blobs of the selected images not
   * sent at all (other platforms, manifests: the classic store reads manifest.json only).
   */
  readonly stats: LoadStats
}

export async function dockerDestination(ctx: DestinationContext & DockerOptions): Promise<DockerDestination> {
  const engine = await DockerEngine.connect(ctx.host)
  const canInflate = (ctx.inflate ?? true) && engine.classic && ctx.parts !== undefined
  const load = new DockerLoad(engine, ctx, canInflate)
  // A plain object: wrappers (differential installs) copy a destination with `...dest`.
  return {
    kind: 'docker',
    stats: load.stats,
    // Every chunk goes back to the reader once written out, or once zlib has read it.
    releasesChunks: true,
    begin: (head) => load.begin(head),
    blob: (digest, size, data, release) => load.blob(digest, size, data, release),
    commit: () => load.commit(),
    abort: (error) => load.abort(error),
    confirm: () => load.confirm(),
    leftOut: () => load.leftOut,
  }
}
