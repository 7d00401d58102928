import {Args, Flags} from '@oclif/core'

import {AirlockCommand} from '../cli/base.js'
import {formatBytes, progressFor} from '../cli/progress.js'
import {createBundle, CreateResult} from '../create/create.js'

export default class Create extends AirlockCommand {
  static override summary = 'Build one signed, deduplicated archive from a bundle.yaml'
  static override description = `Resolves every image (tag → digest, per platform), pulls each blob once into a content-addressed cache, and writes a deterministic tar that is at the same time an OCI image layout, a \`docker load\` archive and a signed airlock bundle. Writes bundle.lock.yaml beside bundle.yaml.

Set SOURCE_DATE_EPOCH for reproducible timestamps: the same spec, digests and key then give a byte-identical archive.`

  static override examples = [
    '<%= config.bin %> create bundle.yaml --sign-key release.key.asc -o release.tar',
    'SOURCE_DATE_EPOCH=1700000000 <%= config.bin %> create --locked --sign-key release.key.asc',
    '<%= config.bin %> create examples/quickstart/bundle.yaml --unsigned --json',
  ]

  static override args = {
    file: Args.string({description: 'bundle.yaml to build', default: 'bundle.yaml'}),
  }

  static override flags = {
    output: Flags.string({char: 'o', description: 'archive to write (default NAME-VERSION.tar)'}),
    'sign-key': Flags.string({description: 'OpenPGP private key file to sign with (overrides signing.key); passphrase from AIRLOCK_KEY_PASSPHRASE'}),
    unsigned: Flags.boolean({description: 'write an UNSIGNED bundle (not recommended)', default: false}),
    jobs: Flags.integer({char: 'j', description: 'blobs pulled at once', default: 8, min: 1, max: 64}),
    'cache-dir': Flags.string({description: 'blob cache directory (default $XDG_CACHE_HOME/airlock)', env: 'AIRLOCK_CACHE_DIR'}),
    locked: Flags.boolean({description: 'fail if any image resolves differently than bundle.lock.yaml records', default: false}),
    'docker-platform': Flags.string({description: 'platform manifest.json describes for multi-platform images (default: the first requested)'}),
    'registry-config': Flags.string({description: 'docker config.json (or its directory) with registry credentials'}),
  }

  async run(): Promise<CreateResult> {
    const {args, flags} = await this.parse(Create)
    const json = this.jsonEnabled()
    const result = await createBundle({
      specFile: args.file,
      output: flags.output,
      signKey: flags['sign-key'],
      unsigned: flags.unsigned,
      jobs: flags.jobs,
      cacheDir: flags['cache-dir'],
      locked: flags.locked,
      dockerPlatform: flags['docker-platform'],
      registryConfig: flags['registry-config'],
      progress: progressFor(json),
    })
    if (!json) {
      this.log(`wrote ${result.archive}`)
      this.log(`  ${result.images.length} images, ${result.blobs} unique blobs, ${formatBytes(result.bytesWritten)} (dedupe saved ${formatBytes(result.dedupeSaved)})`)
      this.log(`  sha256 ${result.sha256}`)
      this.log(result.signer ? `  signed by ${result.signer.fingerprint}${result.signer.userId ? ` (${result.signer.userId})` : ''}` : '  UNSIGNED')
      this.log(`  lock file ${result.lockFile}`)
    }
    return result
  }
}
