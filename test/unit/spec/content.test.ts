import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {after, describe, it} from 'node:test'

import {validateBundleText} from '../../../src/spec/index.js'

const tmp = mkdtempSync(path.join(tmpdir(), 'airlock-content-spec-'))
after(() => rmSync(tmp, {recursive: true, force: true}))
mkdirSync(path.join(tmp, 'tree'))
writeFileSync(path.join(tmp, 'tool.sh'), '#!/bin/sh\n')

const HEAD = 'apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: t, version: "1.0"}\nimages: [nginx:1]\n'
const file = path.join(tmp, 'bundle.yaml')

function problemsOf(text: string): Array<[number, number, string]> {
  return validateBundleText(HEAD + text, file).problems.map((p) => [p.line, p.col, p.code])
}

describe('bundle.yaml files: and charts:', () => {
  it('accepts local files, directories, URLs, OCI charts and classic-repository charts with ranges, and normalises them', () => {
    const {spec, problems} = validateBundleText(`${HEAD}files:
  - {source: tool.sh, dest: bin/tool.sh, mode: "755"}
  - {source: tree, dest: share/tree/}
  - {source: "https://example.com/k3s.tar.gz?x=1", dest: k3s.tar.gz}
charts:
  - {chart: oci://registry.example.com/charts/app, version: 1.2.3+build}
  - {repo: "https://charts.example.com/stable/", name: app, version: "^1.2"}
`, file)
    assert.deepEqual(problems, [])
    assert.deepEqual(spec!.files!.map((f) => [f.dest, f.mode, f.url, f.name]), [
      ['bin/tool.sh', '0755', false, 'airlock.local/files/bin/tool.sh:1.0'],
      ['share/tree', '0644', false, 'airlock.local/files/share/tree:1.0'],
      ['k3s.tar.gz', '0644', true, 'airlock.local/files/k3s.tar.gz:1.0'],
    ])
    assert.equal(spec!.files![0].source, path.join(tmp, 'tool.sh'))
    const chart = spec!.images.find((i) => i.chart)!
    assert.equal(chart.refString, 'registry.example.com/charts/app:1.2.3_build')
    assert.deepEqual(spec!.charts!.map((c) => [c.repo, c.host, c.name, c.version]), [['https://charts.example.com/stable', 'charts.example.com', 'app', '^1.2']])
  })

  it('reports each bad item at its LINE:COL', () => {
    assert.deepEqual(problemsOf(`files:
  - {source: tool.sh, dest: ../escape}
  - {source: tool.sh, dest: /abs}
  - {source: missing.txt, dest: a}
  - {source: tool.sh, dest: a}
  - {source: tool.sh, dest: b, mode: "999"}
  - {source: "https://user:pw@example.com/x", dest: c}
  - {source: tree, dest: d, sha256: ${'a'.repeat(64)}}
charts:
  - {repo: "https://charts.example.com", name: app, version: "not a range!"}
  - {chart: oci://registry.example.com/app, repo: "https://x.example.com", name: app, version: "1"}
  - {chart: "ftp://x", version: "1"}
`), [
      [6, 29, 'file.bad_dest'],
      [7, 29, 'file.bad_dest'],
      [8, 14, 'file.not_found'],
      [9, 29, 'file.duplicate_dest'],
      [10, 38, 'schema.pattern'],
      [11, 14, 'registry.literal_secret'],
      [12, 37, 'file.unreadable'],
      [14, 62, 'chart.invalid'],
      [15, 13, 'chart.invalid'],
      [16, 13, 'schema.pattern'],
    ])
  })
})
