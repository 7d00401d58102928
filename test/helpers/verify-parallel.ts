/**
 * The archive and the verdicts shared by the multi-threaded verify tests
 * (test/unit/transports/archive/verify-parallel.test.ts, test/integration/verify-parallel-cli.test.ts).
 */
import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'

import * as openpgp from 'openpgp'

import {VerifyError} from '../../src/core/errors.js'
import {generateKeyPair} from '../../src/sign/keys.js'
import {HASH_CHUNK} from '../../src/blob/sizes.js'
import {readArchive} from '../../src/transports/archive/reader.js'
import {BLOCK, paddingFor} from '../../src/transports/archive/tar.js'
import {randomLayer, splitTar, syntheticArchive} from './archive.js'

export type Outcome = {ok: unknown} | {error: string}

/** The verdict of readArchive on `parts`: sequentially (through an empty sink) or fast on `threads` threads. */
export async function outcome(pub: openpgp.Key, parts: string[], mode: 'sequential' | number): Promise<Outcome> {
  try {
    const r = await readArchive(parts, {trustedKeys: [pub], ...(mode === 'sequential' ? {sink: {}} : {hashThreads: mode})})
    return {ok: {entries: r.entries, blobs: r.blobs, bytes: r.bytes, locations: [...r.head.locations]}}
  } catch (error) {
    if (!(error instanceof VerifyError)) return {error: `NOT A VerifyError: ${(error as Error).stack}`}
    return {error: `${error.code}: ${error.message}`}
  }
}

export interface Hdr {
  name: string
  off: number
  size: number
  end: number
}

export function entries(buf: Buffer): Hdr[] {
  return splitTar(buf).map((e) => ({name: e.name, off: e.offset!, size: e.data.length, end: e.offset! + BLOCK + e.data.length + paddingFor(e.data.length)}))
}

export interface ParallelFixture {
  pub: openpgp.Key
  pubFile: string
  /** the valid signed archive, whole (`validFile`) and split into parts of 300 kB (`split.tar.NNN` in the same folder) */
  valid: Buffer
  validFile: string
}

/** Write the signed archive of two images, whole and split, with layers chosen around one read (HASH_CHUNK), into `dir`. */
export async function parallelFixture(dir: string): Promise<ParallelFixture> {
  const kp = await generateKeyPair({name: 'Parallel Test'})
  const pub = await openpgp.readKey({armoredKey: kp.publicKeyArmored})
  const pubFile = path.join(dir, 'pub.asc')
  await writeFile(pubFile, kp.publicKeyArmored)
  const key = await openpgp.readPrivateKey({armoredKey: kp.privateKeyArmored})
  // Layers of several reads (HASH_CHUNK), of exactly one, of less than one, a small one, an empty one.
  assert.equal(HASH_CHUNK, 1_048_576, 'the layer sizes below are chosen around one read')
  const images = [
    {name: 'parallel.test/a:1', layers: [randomLayer(2_700_000), randomLayer(700), Buffer.alloc(0)]},
    {name: 'parallel.test/b:1', layers: [randomLayer(600_000), randomLayer(1_048_576), randomLayer(3000)]},
  ]
  const validFile = path.join(dir, 'valid.tar')
  await syntheticArchive(path.join(dir, 'blobs'), validFile, images, {key})
  const valid = await readFile(validFile)
  await syntheticArchive(path.join(dir, 'blobs'), path.join(dir, 'split.tar'), images, {key, partSize: 300_000})
  return {pub, pubFile, valid, validFile}
}
