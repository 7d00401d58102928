import {Flags} from '@oclif/core'

import {AirlockCommand} from '../cli/base.js'
import {environment} from '../cli/env.js'
import {archiveArg, keysFlag} from '../cli/flags.js'
import {passphrasePrompt} from '../cli/prompt.js'
import {cosignArchive, CosignResult} from '../create/cosign.js'
import {loadPrivateKey} from '../sign/keys.js'

export default class Sign extends AirlockCommand {
  static override summary = 'Add a signature by another key to a signed archive (co-signing, two-person rule)'
  static override description = `Signs the archive's checksums.sha256 — and through it every byte — with --sign-key, and adds that signature next to the ones already there, in place: only the archive's head is read and its 16 KiB signature slot rewritten, whatever its size. Installers then require several distinct signers with --threshold N (verify, install, serve). Verify the archive first: signing says you approve what it holds. Archives of format 2 (this airlock) only.`

  static override examples = [
    '<%= config.bin %> sign release.tar --sign-key bob.key.asc --key alice.pub.asc',
    '<%= config.bin %> verify release.tar --key alice.pub.asc --key bob.pub.asc --threshold 2',
  ]

  static override args = {
    archive: archiveArg('sign', {stdin: false}),
  }

  static override flags = {
    'sign-key': Flags.string({description: 'OpenPGP private key file of the new signer; passphrase from AIRLOCK_KEY_PASSPHRASE', required: true}),
    key: keysFlag('trusted public key file or directory: the signatures already there must verify against these first (repeatable)'),
    'key-passphrase': Flags.string({description: 'passphrase of the signing key (set the variable: a command line is visible to other users)', env: 'AIRLOCK_KEY_PASSPHRASE', hidden: true}),
  }

  async run(): Promise<CosignResult> {
    const {args, flags} = await this.parse(Sign)
    const signingKey = await loadPrivateKey(flags['sign-key'], {passphrase: flags['key-passphrase'], askPassphrase: passphrasePrompt(environment())})
    const result = await cosignArchive({archive: args.archive, signingKey, keys: flags.key})
    this.log(`signed ${result.archive} by ${result.added.fingerprint}${result.added.userId ? ` (${result.added.userId})` : ''}`)
    this.log(`  ${result.signatures.length} signature(s) now, by key(s) ${result.signatures.join(', ')}`)
    return result
  }
}
