import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

/**
 * The flags and argument shared by the commands that read an archive (verify, install, serve,
 * inspect), defined once so their names, environment variable and help stay the same everywhere.
 */

/**
 * A repeatable key-file flag. One value per `--key` (`--key A --key B ARCHIVE`), so that the
 * archive after it stays the argument.
 */
export function keysFlag(description: string, env?: string) {
  return Flags.string({char: 'k', description, multiple: true, multipleNonGreedy: true, ...(env ? {env, delimiter: ','} : {})})
}

export const trustedKeysFlag = keysFlag('trusted public key file or directory of keys (repeatable); a key inside the archive is never trusted', 'AIRLOCK_TRUSTED_KEYS')

export const allowUnsignedFlag = Flags.boolean({
  description: 'accept an archive without a signature (integrity is still checked)',
  default: false,
})

export function archiveArg(verb: string) {
  return Args.string({description: `archive to ${verb} (a split archive: its first part, or a glob of its parts)`, required: true})
}
