import {AirlockCommand} from '../cli/base.js'
import {environment, hashThreadsOf} from '../cli/env.js'
import {VERIFY_FLAGS} from '../cli/flag-table.js'
import {archiveArg, oclifFlags, thresholdOf} from '../cli/flags.js'
import {trustedKeyPaths} from '../sign/keys.js'
import {verifyArchive, verifyLines, VerifyResult} from '../verify/verify.js'

export default class Verify extends AirlockCommand {
  static override summary = 'Check an archive\'s signature and every byte, in one streaming pass'
  static override description = `Checks the detached signature over checksums.sha256 against TRUSTED keys only (never a key inside the archive), then every entry: expected name and type, size, sha256 as signed, nothing missing or extra, and that index.json, manifest.json and airlock.json agree. Also refuses expired bundles.

Exit codes: 0 verified, 3 verification failed, 2 invalid input (e.g. no --key), 1 other failure.`

  static override examples = [
    '<%= config.bin %> verify release.tar --key release.pub.asc',
    '<%= config.bin %> verify release.tar --key /etc/airlock/trusted.d --json',
    '<%= config.bin %> verify unsigned.tar --allow-unsigned',
    '<%= config.bin %> verify release.tar --key alice.pub.asc --key bob.pub.asc --threshold 2',
    'curl -fsS https://example.com/release.tar | <%= config.bin %> verify - --key release.pub.asc',
    '<%= config.bin %> verify release.tar --key release.pub.asc --cosign-key upstream-cosign.pub',
  ]

  static override args = {
    archive: archiveArg('verify'),
  }

  /** From the table the fast path parses with (src/cli/fast.ts). */
  static override flags = oclifFlags(VERIFY_FLAGS)

  async run(): Promise<VerifyResult> {
    const {args, flags} = await this.parse(Verify)
    const result = await verifyArchive({
      archive: args.archive, keys: trustedKeyPaths(flags.key, environment()), allowUnsigned: flags['allow-unsigned'], hashThreads: hashThreadsOf(flags['hash-threads']),
      threshold: thresholdOf(flags.threshold), cosignKeys: flags['cosign-key'],
    })
    for (const line of verifyLines(result)) this.log(line)
    return result
  }
}
