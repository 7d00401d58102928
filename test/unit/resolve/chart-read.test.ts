import assert from 'node:assert/strict'
import {gzipSync} from 'node:zlib'
import {describe, it} from 'node:test'

import tarStream from 'tar-stream'

import {AirlockError} from '../../../src/core/errors.js'
import {imagesInValues, MAX_CHART_INFLATED, parseChartYaml, readChartFiles} from '../../../src/resolve/chart-read.js'

type Entry = {name: string; body?: string | Buffer; type?: 'file' | 'symlink' | 'directory'; linkname?: string}

async function tgz(entries: Entry[]): Promise<Buffer> {
  const p = tarStream.pack()
  const chunks: Buffer[] = []
  p.on('data', (c: unknown) => void chunks.push(c as Buffer))
  const done = new Promise<void>((resolve) => p.on('end', () => resolve()))
  for (const e of entries) p.entry({name: e.name, type: e.type ?? 'file', ...(e.linkname ? {linkname: e.linkname} : {})}, e.body ?? '')
  p.finalize()
  await done
  return gzipSync(Buffer.concat(chunks))
}

describe('chart archives: read without extracting', () => {
  it('takes NAME/Chart.yaml and NAME/values.yaml only; links, traversal names and sub-chart files are skipped', async () => {
    const got = await readChartFiles(await tgz([
      {name: '../../etc/values.yaml', body: 'evil: 1'},
      {name: 'app/charts/sub/values.yaml', body: 'sub: 1'},
      {name: 'app/Chart.yaml', type: 'symlink', linkname: '/etc/passwd'},
      {name: 'app/Chart.yaml', body: 'apiVersion: v2\nname: app\nversion: 1.0.0\n'},
      {name: 'app/values.yaml', body: 'image: {repository: nginx, tag: "1.27"}\n'},
    ]), 'test')
    assert.equal(parseChartYaml(got.chartYaml, 'test').name, 'app')
    assert.equal(got.valuesYaml!.toString(), 'image: {repository: nginx, tag: "1.27"}\n')
  })

  it('refuses a gzip bomb and garbage with chart.bad_archive', async () => {
    const bomb = await tgz([{name: 'app/big', body: Buffer.alloc(MAX_CHART_INFLATED + 1024 * 1024)}])
    await assert.rejects(readChartFiles(bomb, 'bomb'), (e: AirlockError) => e.code === 'chart.bad_archive' && /inflates to more than/.test(e.message))
    await assert.rejects(readChartFiles(Buffer.from('not gzip'), 'junk'), (e: AirlockError) => e.code === 'chart.bad_archive')
    assert.throws(() => parseChartYaml(Buffer.from('name: x\n'), 'noversion'), (e: AirlockError) => e.code === 'chart.bad_archive')
  })
})

describe('values.yaml image scan', () => {
  it('finds image.repository + image.tag, image: "repo:tag", registry/digest variants and *Image keys at any depth', () => {
    const found = imagesInValues(Buffer.from(`
image:
  repository: bitnami/nginx
  tag: 1.27.0
sidecar:
  image: "busybox:1.36"
db:
  image:
    registry: docker.io
    repository: library/postgres
    tag: 16
    digest: ""
exporter:
  metricsImage: {name: prom/exporter, digest: "sha256:${'a'.repeat(64)}"}
database:
  repository: x
  tag: y
imagePullPolicy: IfNotPresent
list:
  - image: quay.io/app/worker:2
`))
    assert.deepEqual(found.sort(), ['bitnami/nginx:1.27.0', 'busybox:1.36', 'docker.io/library/postgres:16', `prom/exporter@sha256:${'a'.repeat(64)}`, 'quay.io/app/worker:2'].sort())
  })

  it('is quiet on templates it cannot read (no tag, template strings, bad YAML)', () => {
    assert.deepEqual(imagesInValues(Buffer.from('image:\n  repository: nginx\n  tag: ""\nother:\n  image: "{{ .Values.x }}"\n')), [])
    assert.deepEqual(imagesInValues(Buffer.from('a: [\n')), [])
    assert.deepEqual(imagesInValues(undefined), [])
  })
})
