import {readFile} from 'node:fs/promises'

import YAML from 'yaml'

import {AirlockError} from '../core/errors.js'
import {MediaType} from '../core/model.js'
import type {Progress} from '../core/progress.js'
import {ArtifactBlobs, ArtifactResolver} from '../resolve/artifacts.js'
import {imagesInValues, parseChartYaml, readChartFiles} from '../resolve/chart-read.js'
import {Downloader} from '../resolve/download.js'
import type {BundleLock} from '../resolve/lock.js'
import type {ResolvedImage} from '../resolve/resolve.js'
import {formatReference, parseReference, withoutDigest} from '../spec/reference.js'
import type {CreateRun} from './setup.js'

/** Pins of URL files recorded by an earlier create (a missing or unreadable lock file: none). */
async function previousPins(lockFile: string): Promise<Map<string, string>> {
  try {
    const doc = YAML.parse(await readFile(lockFile, 'utf8'), {maxAliasCount: 10}) as BundleLock
    return new Map((doc?.files ?? []).filter((f) => typeof f?.source === 'string' && typeof f.digest === 'string').map((f) => [f.source, f.digest]))
  } catch {
    return new Map()
  }
}

/**
 * `files:` and classic-repository `charts:` as artifact entries; the OCI charts among `images`
 * read for their name, version and values.yaml. Warns about images a chart's values.yaml names
 * that the bundle does not carry.
 */
export async function resolveArtifacts(run: CreateRun, images: ResolvedImage[], lockFile: string): Promise<{entries: ResolvedImage[]; blobs: ArtifactBlobs}> {
  const {spec, opts, progress} = run
  const downloader = new Downloader({
    registries: spec.registries, ...(opts.registryConfig ? {registryConfig: opts.registryConfig} : {}),
    ...(opts.retries === undefined ? {} : {retries: opts.retries}), ...(opts.retryBaseDelayMs === undefined ? {} : {retryBaseDelayMs: opts.retryBaseDelayMs}),
  })
  const resolver = new ArtifactResolver(downloader, await previousPins(lockFile), (m) => progress.note(m))
  const carried = new Set(images.flatMap((i) => [i.spec.refString, i.spec.name, formatReference(withoutDigest(i.spec.ref))]))
  const values: {chart: string; values?: Buffer}[] = []
  try {
    const entries: ResolvedImage[] = []
    for (const f of spec.files ?? []) entries.push(await resolver.file(f))
    for (const c of spec.charts ?? []) {
      const {entry, tgz} = await resolver.repoChart(c)
      entries.push(entry)
      values.push({chart: `${c.name} ${entry.content!.type === 'chart' ? entry.content!.version : ''}`, values: (await readChartFiles(tgz, c.name)).valuesYaml})
    }
    for (const img of images.filter((i) => i.spec.chart)) values.push(await readOciChart(run, img))
    warnUncarried(values, carried, progress)
    return {entries, blobs: resolver.blobs}
  } catch (error) {
    await resolver.blobs.cleanup()
    throw error
  } finally {
    downloader.close()
  }
}

/** An OCI chart entry: its config and chart layer (small, and written into the archive anyway) give its name, version and values.yaml. */
async function readOciChart(run: CreateRun, img: ResolvedImage): Promise<{chart: string; values?: Buffer}> {
  const m = img.manifests.find((x) => x.config.mediaType === MediaType.HELM_CONFIG)
  const layer = m?.layers.find((l) => l.mediaType === MediaType.HELM_CHART)
  if (!m || !layer) {
    run.progress.note(`WARNING: ${img.spec.refString} is listed under charts: but is not a Helm chart (no ${MediaType.HELM_CONFIG} config)`)
    return {chart: img.spec.refString}
  }
  let files, meta
  try {
    const tgz = await run.sources.getSmallBlob(img.spec.ref, layer.digest, layer.size)
    files = await readChartFiles(tgz, img.spec.refString)
    meta = parseChartYaml(files.chartYaml, img.spec.refString)
  } catch (error) {
    // Still carried byte-exact; only its name (for dir: and --only) and the values.yaml check are lost.
    if (!(error instanceof AirlockError)) throw error
    run.progress.note(`WARNING: ${img.spec.refString}: cannot read the chart (${error.message}); it is carried as it is, but not placed by dir: targets`)
    return {chart: img.spec.refString}
  }
  img.content = {type: 'chart', name: meta.name, version: meta.version, chart: {digest: layer.digest, size: layer.size}}
  return {chart: `${meta.name} ${meta.version}`, ...(files.valuesYaml ? {values: files.valuesYaml} : {})}
}

function warnUncarried(values: {chart: string; values?: Buffer}[], carried: Set<string>, progress: Progress): void {
  for (const {chart, values: v} of values) {
    for (const named of imagesInValues(v)) {
      let norm: string
      try {
        const r = parseReference(named)
        norm = formatReference(r.tag ? withoutDigest(r) : r)
      } catch {
        continue
      }
      if (!carried.has(norm) && !carried.has(formatReference(parseReference(named)))) {
        progress.note(`WARNING: chart ${chart}: values.yaml names image ${named}, which this bundle does not carry`)
      }
    }
  }
}
