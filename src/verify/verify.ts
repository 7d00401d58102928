import {loadTrustedKeys} from '../sign/keys.js'
import {resolveArchiveParts} from '../transports/archive/parts.js'
import {readArchive, ArchiveSink, VerifyReport} from '../transports/archive/reader.js'

export type VerifyResult = VerifyReport

/** `airlock verify`: one streaming pass, nothing written anywhere. */
export async function verifyArchive(opts: {archive: string; keys: string[]; allowUnsigned?: boolean; now?: Date; sink?: ArchiveSink}): Promise<VerifyResult> {
  const trustedKeys = await loadTrustedKeys(opts.keys)
  const {head: _head, ...report} = await readArchive(await resolveArchiveParts(opts.archive), {trustedKeys, allowUnsigned: opts.allowUnsigned, now: opts.now, sink: opts.sink})
  return report
}
