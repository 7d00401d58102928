import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

/**
 * The flags and argument shared by the commands that read an archive (verify, install, serve),
 * defined once so their names, environment variable and help stay the same everywhere.
 */
export const trustedKeysFlag = Flags.string({
  char: 'k',
  description: 'trusted public key file or directory of keys (repeatable); a key inside the archive is never trusted',
  multiple: true,
  // `--key A --key B ARCHIVE` and `--key A ARCHIVE`: one value per --key, so the archive stays an argument.
  multipleNonGreedy: true,
  env: 'AIRLOCK_TRUSTED_KEYS',
  delimiter: ',',
})

export const allowUnsignedFlag = Flags.boolean({
  description: 'accept an archive without a signature (integrity is still checked)',
  default: false,
})

export function archiveArg(verb: string) {
  return Args.string({description: `archive to ${verb} (a split archive: its first part, or a glob of its parts)`, required: true})
}
