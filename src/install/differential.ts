import {AirlockError, InputError} from '../core/errors.js'
import type * as openpgp from 'openpgp'

import {readArchive, VerifiedHead} from '../transports/archive/reader.js'
import type {ImageRecord} from '../transports/archive/metadata.js'
import {blobsOf} from '../transports/docker-archive/tarstream.js'
import type {Destination} from '../transports/types.js'

/** Blobs the selected images need that this (differential) archive does not contain. */
export function externalBlobs(head: VerifiedHead, images: ImageRecord[]): Map<string, number> {
  const need = blobsOf(images)
  return new Map((head.metadata.base?.blobs ?? []).filter((b) => need.has(b.digest)).map((b) => [b.digest, b.size]))
}

function baseLabel(head: VerifiedHead): string {
  const b = head.metadata.base!
  return `${b.name} ${b.version}`
}

/**
 * A differential archive installed without --base: the target must already hold every blob the
 * archive leaves out. Checked right after the signed metadata is verified, before any blob moves.
 */
export function requireBaseOnTarget(dest: Destination, selected: () => ImageRecord[]): Destination {
  return {
    ...dest,
    kind: dest.kind,
    confirm: () => dest.confirm(),
    async begin(head) {
      await dest.begin?.(head)
      if (!head.metadata.base) return
      const external = externalBlobs(head, selected())
      if (external.size === 0) return
      if (!dest.missing) {
        throw new InputError('install.differential_unsupported',
          `${head.metadata.bundle.name} ${head.metadata.bundle.version} is a differential bundle: it leaves out ${external.size} blob(s) shipped by ${baseLabel(head)}, and ${dest.kind} cannot load a partial archive. Pass --base with the ${baseLabel(head)} archive to stream those blobs from it in the same install.`)
      }
      const missing = await dest.missing([...external.keys()])
      if (missing.length > 0) {
        throw new InputError('install.base_missing',
          `the target lacks ${missing.length} of the ${external.size} blob(s) this differential bundle expects from ${baseLabel(head)} (e.g. ${missing[0]}): install ${baseLabel(head)} there first, or pass --base with its archive`)
      }
    },
  }
}

/**
 * A differential archive installed with --base PREVIOUS: after the main archive has streamed, the
 * blobs it leaves out are streamed from the (verified) base archive, and only then is the target
 * committed. The base is verified with the same trusted keys.
 */
export function withBaseArchive(dest: Destination, selected: () => ImageRecord[], base: {parts: string[]; trustedKeys: openpgp.Key[]; allowUnsigned?: boolean; now?: Date}): Destination {
  return {
    ...dest,
    kind: dest.kind,
    confirm: () => dest.confirm(),
    async commit(head) {
      if (head.metadata.base) {
        const external = externalBlobs(head, selected())
        const found = new Set<string>()
        const r = await readArchive(base.parts, {
          trustedKeys: base.trustedKeys, allowUnsigned: base.allowUnsigned, now: base.now, checkExpiry: false,
          sink: {
            async blob(digest, size, data) {
              if (!external.has(digest) || found.has(digest)) return
              if (external.get(digest) !== size) return
              await dest.blob?.(digest, size, data)
              found.add(digest)
            },
          },
        })
        const want = head.metadata.base
        if (r.bundle.name !== want.name || r.bundle.version !== want.version) {
          throw new InputError('install.wrong_base', `--base is ${r.bundle.name} ${r.bundle.version}, but this bundle was made against ${want.name} ${want.version}`)
        }
        const lacking = [...external.keys()].filter((d) => !found.has(d))
        if (lacking.length > 0) throw new AirlockError('install.base_incomplete', `--base ${base.parts[0]} lacks ${lacking.length} blob(s) this bundle needs (e.g. ${lacking[0]})`)
      }
      await dest.commit?.(head)
    },
  }
}
