import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {TRUSTED_KEYS_ENV} from '../sign/keys.js'

/**
 * The flags and argument shared by the commands that read an archive (verify, install, serve,
 * inspect), defined once so their names, environment variable and help stay the same everywhere.
 */

/**
 * A repeatable key-file flag. One value per `--key` (`--key A --key B ARCHIVE`), so that the
 * archive after it stays the argument.
 */
export function keysFlag(description: string) {
  return Flags.string({char: 'k', description, multiple: true, multipleNonGreedy: true})
}

/**
 * Trusted keys: `--key` (repeatable), else AIRLOCK_TRUSTED_KEYS, read by trustedKeyPaths() and
 * not by the parser (which would hand a multiple flag its environment value as one string).
 */
export const trustedKeysFlag = keysFlag(`trusted public key file or directory of keys (repeatable); a key inside the archive is never trusted [env: ${TRUSTED_KEYS_ENV}, comma-separated]`)

export const allowUnsignedFlag = Flags.boolean({
  description: 'accept an archive without a signature (integrity is still checked)',
  default: false,
})

export function archiveArg(verb: string) {
  return Args.string({description: `archive to ${verb} (a split archive: its first part, or a glob of its parts)`, required: true})
}
