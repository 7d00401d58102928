import {Args, Flags} from '@oclif/core'

import {AirlockCommand} from '../cli/base.js'
import {verifyArchive, VerifyResult} from '../verify/verify.js'

export default class Verify extends AirlockCommand {
  static override summary = 'Check an archive\'s signature and every byte, in one streaming pass'
  static override description = `Checks the detached signature over checksums.sha256 against TRUSTED keys only (never a key inside the archive), then every entry: expected name and type, size, sha256 as signed, nothing missing or extra, and that index.json, manifest.json and airlock.json agree. Also refuses expired bundles.

Exit codes: 0 verified, 3 verification failed, 2 invalid input (e.g. no --key), 1 other failure.`

  static override examples = [
    '<%= config.bin %> verify release.tar --key release.pub.asc',
    '<%= config.bin %> verify release.tar --key /etc/airlock/trusted.d --json',
    '<%= config.bin %> verify unsigned.tar --allow-unsigned',
  ]

  static override args = {
    archive: Args.string({description: 'archive to verify (a split archive: its first part, or a glob of its parts)', required: true}),
  }

  static override flags = {
    key: Flags.string({char: 'k', description: 'trusted public key file or directory of keys (repeatable)', multiple: true, env: 'AIRLOCK_TRUSTED_KEYS', delimiter: ','}),
    'allow-unsigned': Flags.boolean({description: 'accept an archive without a signature (integrity is still checked)', default: false}),
  }

  async run(): Promise<VerifyResult> {
    const {args, flags} = await this.parse(Verify)
    const result = await verifyArchive({archive: args.archive, keys: flags.key ?? [], allowUnsigned: flags['allow-unsigned']})
    if (!this.jsonEnabled()) {
      this.log(`OK ${result.archive}: ${result.bundle.name} ${result.bundle.version}, ${result.images.length} images, ${result.blobs} blobs, ${result.entries} entries verified`)
      this.log(result.signer ? `  signed by ${result.signer.fingerprint}${result.signer.userId ? ` (${result.signer.userId})` : ''} on ${result.signer.signed}` : '  UNSIGNED (accepted with --allow-unsigned)')
      for (const img of result.images) this.log(`  ${img.name}  ${img.digest}  [${img.platforms.join(', ')}]`)
    }
    return result
  }
}
