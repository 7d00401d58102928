import {createHash, randomBytes} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {chmod, copyFile, lstat, mkdir, open, readFile, rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'

import YAML from 'yaml'

import {AirlockError} from '../../core/errors.js'
import {syncDir, writeFileAtomic} from '../../core/fs.js'
import {hexOf} from '../../core/model.js'
import {checkDest} from '../../spec/content.js'
import type {ImageRecord} from '../archive/metadata.js'
import type {VerifiedHead} from '../archive/reader.js'
import type {Destination, DestinationContext, InstalledImage} from '../types.js'

/** One file the install puts under PATH. */
interface Placement {
  rel: string
  mode: number
  digest: string
  size: number
  entry: ImageRecord
}

const MAX_INDEX_YAML = 64 * 1024 * 1024

/**
 * `dir:PATH`: the bundle's files (with their modes) and charts (`NAME-VERSION.tgz` plus a Helm
 * repository `index.yaml`) as plain files, so a static file server turns PATH into a chart
 * repository. Verified blobs are written to a temp dir beside PATH; nothing appears under PATH
 * before commit, where each file is fsynced and renamed into place. Images are left out (reported).
 */
export async function dirDestination(ctx: DestinationContext & {dir: string}): Promise<Destination> {
  const d = new DirTarget(ctx, path.resolve(ctx.dir))
  return {
    kind: 'dir',
    begin: (head) => d.begin(head),
    blob: (digest, size, data) => d.blob(digest, size, data),
    commit: (head) => d.commit(head),
    abort: () => d.abort(),
    confirm: () => d.confirm(),
  }
}

class DirTarget {
  private readonly tmp: string
  private images: ImageRecord[] = []
  private placements: Placement[] = []
  private charts: {name: string; version: string; file: string; digest: string}[] = []
  private wanted = new Set<string>()

  constructor(private readonly ctx: DestinationContext, private readonly dir: string) {
    this.tmp = path.join(path.dirname(dir), `.${path.basename(dir)}.airlock-${process.pid}-${randomBytes(4).toString('hex')}`)
  }

  async begin(head: VerifiedHead): Promise<void> {
    this.images = this.ctx.selected(head)
    const taken = new Map<string, string>()
    const place = (rel: string, mode: number, digest: string, size: number, entry: ImageRecord) => {
      const d = checkDest(rel)
      if ('error' in d) throw new AirlockError('file.bad_dest', `${entry.name}: file ${JSON.stringify(rel)} ${d.error}`)
      const prev = taken.get(d.dest)
      if (prev !== undefined) throw new AirlockError('install.dir_conflict', `dir:${this.dir}: ${d.dest} would be written by both ${prev} and ${entry.name}`)
      taken.set(d.dest, entry.name)
      this.placements.push({rel: d.dest, mode, digest, size, entry})
      this.wanted.add(digest)
    }
    for (const img of this.images) {
      const c = img.content
      if (c?.type === 'files') for (const f of c.files) place(f.path, Number.parseInt(f.mode, 8) & 0o777, f.digest, f.size, img)
      else if (c?.type === 'chart') {
        const file = `${c.name}-${c.version}.tgz`
        place(file, 0o644, c.chart.digest, c.chart.size, img)
        this.charts.push({name: c.name, version: c.version, file, digest: c.chart.digest})
      } else this.ctx.progress.note(`  left out ${img.name}: a dir: target takes files and charts only`)
    }
    if (this.charts.length > 0 && taken.has('index.yaml')) throw new AirlockError('install.dir_conflict', `dir:${this.dir}: index.yaml is both a file of ${taken.get('index.yaml')} and the chart repository index`)
    const st = await stat(this.dir).catch(() => undefined)
    if (st && !st.isDirectory()) throw new AirlockError('install.dir_conflict', `${this.dir} is not a directory`)
    await mkdir(this.tmp, {recursive: true})
  }

  async blob(digest: string, size: number, data: AsyncIterable<Buffer>): Promise<void> {
    if (!this.wanted.has(digest)) return
    await writeFileAtomic(path.join(this.tmp, hexOf(digest)), data)
    this.ctx.progress.advance(size)
  }

  async commit(head: VerifiedHead): Promise<void> {
    await mkdir(this.dir, {recursive: true})
    const dirs = new Set<string>([this.dir])
    for (const [i, p] of this.placements.entries()) {
      const staged = path.join(this.tmp, `f${i}`)
      await copyFile(path.join(this.tmp, hexOf(p.digest)), staged)
      await chmod(staged, p.mode)
      const fh = await open(staged, 'r')
      await fh.sync().finally(() => fh.close())
      const final = path.join(this.dir, ...p.rel.split('/'))
      await this.mkdirsBelow(path.dirname(final), dirs)
      const old = await lstat(final).catch(() => undefined)
      if (old && !old.isFile()) throw new AirlockError('install.dir_conflict', `${final} exists and is not a regular file`)
      await rename(staged, final)
    }
    if (this.charts.length > 0) await writeFileAtomic(path.join(this.dir, 'index.yaml'), await this.indexYaml(head.metadata.bundle.created))
    for (const d of dirs) await syncDir(d)
    await rm(this.tmp, {recursive: true, force: true})
    for (const p of this.placements) this.ctx.progress.note(`  installed ${p.rel} → dir:${this.dir}`)
  }

  /** Every directory from PATH down to `dir`, made if missing; none of them may be a link. */
  private async mkdirsBelow(dir: string, made: Set<string>): Promise<void> {
    const rel = path.relative(this.dir, dir)
    let cur = this.dir
    for (const part of rel ? rel.split(path.sep) : []) {
      cur = path.join(cur, part)
      const st = await lstat(cur).catch(() => undefined)
      if (!st) await mkdir(cur)
      else if (!st.isDirectory()) throw new AirlockError('install.dir_conflict', `${cur} exists and is not a directory (links are not followed)`)
      made.add(cur)
    }
  }

  /** The Helm repository index: the charts of this install merged into an index.yaml already there. */
  private async indexYaml(created: string): Promise<Buffer> {
    type Entry = {apiVersion: string; name: string; version: string; digest: string; urls: string[]; created: string}
    let entries: Record<string, Entry[]> = {}
    const old = await readFile(path.join(this.dir, 'index.yaml')).catch(() => undefined)
    if (old && old.length <= MAX_INDEX_YAML) {
      try {
        const doc = YAML.parse(old.toString('utf8'), {maxAliasCount: 100}) as {entries?: Record<string, Entry[]>}
        if (doc?.entries && typeof doc.entries === 'object') entries = doc.entries
      } catch { /* an unreadable index is replaced */ }
    }
    for (const c of this.charts) {
      const list = (Array.isArray(entries[c.name]) ? entries[c.name] : []).filter((e) => e?.version !== c.version)
      entries[c.name] = [{apiVersion: 'v2', name: c.name, version: c.version, digest: hexOf(c.digest), urls: [c.file], created}, ...list]
    }
    return Buffer.from(YAML.stringify({apiVersion: 'v1', entries, generated: created}, {lineWidth: 0}))
  }

  async abort(): Promise<void> {
    await rm(this.tmp, {recursive: true, force: true})
  }

  async confirm(): Promise<InstalledImage[]> {
    const bad: string[] = []
    for (const p of this.placements) {
      const file = path.join(this.dir, ...p.rel.split('/'))
      const h = createHash('sha256')
      for await (const c of createReadStream(file) as AsyncIterable<Buffer>) h.update(c)
      const st = await stat(file)
      if (`sha256:${h.digest('hex')}` !== p.digest || (st.mode & 0o777) !== p.mode) bad.push(p.rel)
    }
    if (bad.length > 0) throw new AirlockError('install.confirm_failed', `dir:${this.dir}: ${bad.join(', ')} do not have the signed content or mode`)
    return this.images.map((img) => ({name: img.name, digest: img.digest, confirmed: img.content ? img.digest : ''}))
  }
}
