import {isForeignLayer} from '../core/content.js'
import {CacheSource} from '../copy/cache-source.js'
import {BlobSource, SourceChain} from '../copy/source.js'
import type {ArtifactBlobs} from '../resolve/artifacts.js'
import type {ResolvedImage} from '../resolve/resolve.js'
import type {ResumedSource} from './partial.js'
import type {ArchiveLayout} from './plan.js'
import type {CreateRun} from './setup.js'
import {FileSource} from './file-source.js'
import {MemorySource, RegistrySource} from './sources.js'

/**
 * Where `create` takes each blob from, in this order: what an interrupted run left in
 * OUT.partial, what resolving left in memory, the blob cache, the registry. Fresh bytes (memory,
 * registry) are kept in the cache too.
 */
export function buildChain(run: CreateRun, layout: ArchiveLayout, images: ResolvedImage[], resumed: ResumedSource | undefined, artifacts?: ArtifactBlobs): SourceChain {
  const {cache, progress, sources} = run
  const foreign = new Map(images.flatMap((img) => img.manifests.flatMap((m) => m.layers.filter(isForeignLayer).map((l) => [l.digest, l.urls ?? []] as const))))
  const chain: BlobSource[] = [
    ...(resumed ? [resumed] : []),
    MemorySource.fromResolved(artifacts ? new Map([...sources.small, ...artifacts.memory]) : sources.small, images),
    ...(artifacts ? [new FileSource(artifacts.files, (n) => progress.advance(n))] : []),
    ...(cache ? [new CacheSource(cache)] : []),
    new RegistrySource(sources, (digest) => layout.unique.get(digest)!.image.spec.ref, (n) => progress.advance(n), (digest) => foreign.get(digest)),
  ]
  return new SourceChain(chain, {
    ...(cache ? {keep: cache} : {}),
    onMiss: (miss) => {
      if (miss.warning) progress.note(`WARNING: ${miss.warning}`)
    },
  })
}
