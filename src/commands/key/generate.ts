import {writeFile, mkdir} from 'node:fs/promises'
import path from 'node:path'

import {Flags} from '@oclif/core'

import {AirlockCommand} from '../../cli/base.js'
import {InputError} from '../../core/errors.js'
import {generateKeyPair} from '../../sign/keys.js'
import {environment} from '../../cli/env.js'
import {canPrompt, promptSecret} from '../../cli/prompt.js'
import {pathExists as exists} from '../../core/fs.js'

export interface KeyGenerateResult {
  fingerprint: string
  userId: string
  publicKey: string
  privateKey: string
  encrypted: boolean
}

export default class KeyGenerate extends AirlockCommand {
  static override summary = 'Generate an Ed25519 OpenPGP signing key pair (gpg-compatible)'
  static override description = 'Writes PREFIX.key.asc (private, mode 0600) and PREFIX.pub.asc (public, to give to installers). The private key is passphrase-protected with AIRLOCK_KEY_PASSPHRASE, or, on a terminal with that variable unset, with a passphrase you are asked for (empty for none).'
  static override examples = [
    '<%= config.bin %> key generate --name "Release Team" --email release@example.com',
    'AIRLOCK_KEY_PASSPHRASE=… <%= config.bin %> key generate --name CI --out keys/ci',
  ]

  static override flags = {
    name: Flags.string({description: 'user id name', required: true}),
    email: Flags.string({description: 'user id email'}),
    out: Flags.string({description: 'output path prefix', default: 'airlock'}),
    force: Flags.boolean({description: 'overwrite existing key files', default: false}),
    'key-passphrase': Flags.string({description: 'passphrase for the private key (set the variable: a command line is visible to other users)', env: 'AIRLOCK_KEY_PASSPHRASE', hidden: true}),
  }

  async run(): Promise<KeyGenerateResult> {
    const {flags} = await this.parse(KeyGenerate)
    const priv = `${flags.out}.key.asc`
    const pub = `${flags.out}.pub.asc`
    if (!flags.force) {
      for (const f of [priv, pub]) if (await exists(f)) throw new InputError('key.exists', `${f} exists (use --force to overwrite)`)
    }
    await mkdir(path.dirname(path.resolve(priv)), {recursive: true})
    const env = environment()
    let passphrase = flags['key-passphrase'] || undefined
    // Set but empty: no passphrase, and no question either.
    if (passphrase === undefined && env.AIRLOCK_KEY_PASSPHRASE === undefined && canPrompt(env)) {
      const first = await promptSecret('Passphrase for the private key (empty for none): ')
      if (first) {
        if ((await promptSecret('Repeat the passphrase: ')) !== first) throw new InputError('key.passphrase_mismatch', 'the passphrases do not match')
        passphrase = first
      }
    }
    const kp = await generateKeyPair({name: flags.name, email: flags.email, passphrase})
    await writeFile(priv, kp.privateKeyArmored, {mode: 0o600})
    await writeFile(pub, kp.publicKeyArmored, {mode: 0o644})
    if (!this.jsonEnabled()) {
      this.log(`fingerprint ${kp.fingerprint}`)
      this.log(`private key ${priv}${kp.encrypted ? ' (passphrase-protected)' : ' (NOT passphrase-protected: set AIRLOCK_KEY_PASSPHRASE to protect it)'}`)
      this.log(`public key  ${pub}`)
    }
    return {fingerprint: kp.fingerprint, userId: kp.userIds[0], publicKey: path.resolve(pub), privateKey: path.resolve(priv), encrypted: kp.encrypted}
  }
}
