/**
 * Blobs on a registry: existence (HEAD), opening a download at an offset (`Range` to resume), and
 * making a blob present in a repository: HEAD, else a cross-repository mount, else a monolithic
 * POST + PUT upload that starts a fresh session on every retry.
 */
import type http from 'node:http'
import {Readable} from 'node:stream'

import {AirlockError, VerifyError} from '../../core/errors.js'
import {checkDigest, checkRepo, checkSize, pullScope, pushScope} from './names.js'
import {drain, headerOne} from './transport/http.js'
import type {RegistryTransport, TransportRequest} from './transport/request.js'
import {Backoff, Retryable} from './transport/retry.js'

export type PutBlobResult = 'mounted' | 'uploaded' | 'exists'

/** An open blob download: `start` is the offset its body begins at; `ranges` when resumable. */
export interface OpenBlob {
  res: http.IncomingMessage
  start: number
  ranges: boolean
}

export async function hasBlob(t: RegistryTransport, repo: string, digest: string): Promise<boolean> {
  checkRepo(repo)
  checkDigest(digest)
  return t.request(
    {
      method: 'HEAD',
      url: `/v2/${repo}/blobs/${digest}`,
      scopes: [pullScope(repo)],
      expect: [200, 404],
      what: `blob ${t.host}/${repo}@${digest}`,
    },
    async (res) => {
      drain(res)
      return res.statusCode === 200
    },
  )
}

/** Open a blob GET at `offset` (Range when > 0); one attempt only when `noRetry`. */
export async function openBlob(t: RegistryTransport, repo: string, digest: string, offset: number, noRetry = false): Promise<OpenBlob> {
  const req: TransportRequest = {
    method: 'GET',
    url: `/v2/${repo}/blobs/${digest}`,
    headers: offset > 0 ? {Range: `bytes=${offset}-`} : {},
    scopes: [pullScope(repo)],
    expect: [200, 206],
    what: `blob ${t.host}/${repo}@${digest}`,
  }
  const consume = async (res: http.IncomingMessage): Promise<OpenBlob> => {
    let start = 0
    if (res.statusCode === 206) {
      const m = /^bytes\s+(\d+)-\d+\/(\d+|\*)$/.exec(headerOne(res.headers['content-range']) ?? '')
      if (!m) {
        res.destroy()
        throw new AirlockError('registry.bad_response', `${req.what}: invalid Content-Range in partial response`)
      }
      start = Number(m[1])
      if (start > offset) {
        res.destroy()
        throw new AirlockError('registry.bad_response', `${req.what}: server resumed at byte ${start}, asked for ${offset}`)
      }
    }
    const ranges = res.statusCode === 206 || /bytes/i.test(headerOne(res.headers['accept-ranges']) ?? '')
    return {res, start, ranges}
  }
  return noRetry ? t.attempt(req, consume) : t.request(req, consume)
}

/**
 * Make `digest` present in `repo`: HEAD first ('exists'), then a cross-repo mount from
 * `mountFrom` ('mounted'), else a monolithic POST + PUT upload of `open()` ('uploaded').
 * `open` may be called again on retry and must return a fresh stream of exactly `size` bytes.
 */
export async function putBlob(
  t: RegistryTransport,
  repo: string,
  digest: string,
  size: number,
  open: () => Readable,
  opts: {mountFrom?: string} = {},
): Promise<PutBlobResult> {
  checkRepo(repo)
  checkDigest(digest)
  if (opts.mountFrom) checkRepo(opts.mountFrom)
  checkSize(size)
  if (await hasBlob(t, repo, digest)) return 'exists'
  const what = `blob ${t.host}/${repo}@${digest}`
  const scopes = [pushScope(repo)]
  let location: URL | undefined
  if (opts.mountFrom && opts.mountFrom !== repo) {
    scopes.push(pullScope(opts.mountFrom))
    const mount = await tryMount(t, repo, digest, opts.mountFrom, scopes, what)
    if (mount === 'mounted') return 'mounted'
    location = mount
  }
  await upload(t, {repo, digest, size, open, scopes, what}, location)
  return 'uploaded'
}

/** POST ?mount=&from=: 'mounted' (201), or the upload session the registry opened instead. */
async function tryMount(t: RegistryTransport, repo: string, digest: string, from: string, scopes: string[], what: string): Promise<'mounted' | URL | undefined> {
  const q = new URLSearchParams({mount: digest, from})
  const r = await t.request(
    {method: 'POST', url: `/v2/${repo}/blobs/uploads/?${q}`, headers: {'Content-Length': '0'}, scopes, expect: [201, 202], what},
    async (res) => {
      drain(res)
      return {status: res.statusCode, location: headerOne(res.headers.location)}
    },
  )
  if (r.status === 201) return 'mounted'
  return r.location ? new URL(r.location, `${t.origin}/v2/${repo}/blobs/uploads/`) : undefined
}

interface Upload {
  repo: string
  digest: string
  size: number
  open: () => Readable
  scopes: string[]
  what: string
}

/** PUT the blob into an upload session (`location`, else a new one), retrying with fresh sessions. */
async function upload(t: RegistryTransport, u: Upload, location: URL | undefined): Promise<void> {
  const backoff = new Backoff(t.policy)
  for (;;) {
    try {
      if (!location) location = await startUpload(t, u.repo, u.scopes, u.what)
      const put = new URL(location)
      put.searchParams.set('digest', u.digest)
      await t.attempt(
        {
          method: 'PUT',
          url: put,
          headers: {'Content-Type': 'application/octet-stream'},
          body: u.open,
          bodyLength: u.size,
          scopes: u.scopes,
          expect: [201, 204],
          what: u.what,
        },
        async (res) => {
          drain(res)
          const got = headerOne(res.headers['docker-content-digest'])
          if (got && got.startsWith('sha256:') && got !== u.digest) {
            throw new VerifyError('registry.digest_mismatch', `${u.what}: registry stored digest ${got}`, {entry: u.what})
          }
        },
      )
      return
    } catch (e) {
      if (!(e instanceof Retryable)) throw e
      // A failed PUT may have left a half-written session: start a fresh one.
      location = undefined
      await t.backoffOrThrow(backoff, e, 'PUT', u.what)
    }
  }
}

async function startUpload(t: RegistryTransport, repo: string, scopes: string[], what: string): Promise<URL> {
  return t.request(
    {method: 'POST', url: `/v2/${repo}/blobs/uploads/`, headers: {'Content-Length': '0'}, scopes, expect: [202], what},
    async (res) => {
      drain(res)
      const loc = headerOne(res.headers.location)
      if (!loc) throw new AirlockError('registry.bad_response', `${what}: upload started without a Location header`)
      return new URL(loc, `${t.origin}/v2/${repo}/blobs/uploads/`)
    },
  )
}
