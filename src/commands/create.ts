import {Args, Flags} from '@oclif/core'

import {AirlockCommand} from '../cli/base.js'
import {environment} from '../cli/env.js'
import {formatBytes} from '../cli/progress.js'
import {passphrasePrompt} from '../cli/prompt.js'
import {createBundle, CreateResult, epochFromEnv, parseSize} from '../create/create.js'
import {MediaResult, writeInstallMedia} from '../package/media.js'
import {defaultKeysDir, SigningKeyOptions} from '../sign/find.js'

export default class Create extends AirlockCommand {
  static override summary = 'Build one signed, deduplicated archive from a bundle.yaml'
  static override description = `Resolves every image (tag → digest, per platform), pulls each blob once, straight to its place in the archive, and writes a deterministic tar that is at the same time an OCI image layout, a \`docker load\` archive and a signed airlock bundle. Writes bundle.lock.yaml beside bundle.yaml.

An interrupted create (killed, machine off) resumes when run again with the same -o: the blobs already in OUT.partial are re-hashed and kept. With --cache-dir, pulled blobs are also kept in a blob cache for later creates (each blob is then written twice).

Set SOURCE_DATE_EPOCH for reproducible timestamps: the same spec, digests and key then give a byte-identical archive.`

  static override examples = [
    '<%= config.bin %> create bundle.yaml --sign-key release.key.asc -o release.tar',
    'SOURCE_DATE_EPOCH=1700000000 <%= config.bin %> create --locked --sign-key release.key.asc',
    '<%= config.bin %> create examples/quickstart/bundle.yaml --unsigned --json',
    '<%= config.bin %> create bundle.yaml --sign-key release.key.asc -o release.tar --split 4095M',
    '<%= config.bin %> create bundle.yaml --sign-key release.key.asc -o release-2.tar --since release-1.tar',
  ]

  static override args = {
    file: Args.string({description: 'bundle.yaml to build', default: 'bundle.yaml'}),
  }

  static override flags = {
    output: Flags.string({char: 'o', description: 'archive to write (default NAME-VERSION.tar)'}),
    'sign-key': Flags.string({description: 'OpenPGP private key file to sign with (overrides signing.key); passphrase from AIRLOCK_KEY_PASSPHRASE'}),
    'keys-dir': Flags.string({description: 'private keys looked up by signing.fingerprint (default $XDG_CONFIG_HOME/airlock/keys)', env: 'AIRLOCK_KEYS_DIR'}),
    'key-passphrase': Flags.string({description: 'passphrase of the signing key (set the variable: a command line is visible to other users)', env: 'AIRLOCK_KEY_PASSPHRASE', hidden: true}),
    unsigned: Flags.boolean({description: 'write an UNSIGNED bundle (not recommended)', default: false}),
    jobs: Flags.integer({char: 'j', description: 'blobs pulled at once', default: 8, min: 1, max: 64}),
    'cache-dir': Flags.string({description: 'also keep pulled blobs in this blob cache, and take blobs from it (default: no cache)', env: 'AIRLOCK_CACHE_DIR'}),
    locked: Flags.boolean({description: 'fail if any image resolves differently than bundle.lock.yaml records', default: false}),
    'docker-platform': Flags.string({description: 'platform manifest.json describes for multi-platform images (default: the first requested)'}),
    'registry-config': Flags.string({description: 'docker config.json (or its directory) with registry credentials'}),
    'with-installer': Flags.string({description: 'also write complete installation media into DIR: the archive, a Node-free airlock installer, the public key, its fingerprint and INSTALL.txt'}),
    split: Flags.string({description: 'write parts of at most SIZE (e.g. 700M, 4480M, 4G; powers of 1024): OUT.000, OUT.001, …; `cat` of the parts is the archive'}),
    since: Flags.string({description: 'previous bundle (archive, first part or glob): write a differential bundle without the layers it shipped'}),
    'source-date-epoch': Flags.string({description: 'seconds since 1970 for every timestamp in the archive (reproducible archives; default 0)', env: 'SOURCE_DATE_EPOCH'}),
    'keep-going': Flags.boolean({description: 'write an archive of the images that could be fetched; list the others as failed (exit 0, warnings on stderr, "failed" in --json)', default: false}),
    retries: Flags.integer({description: 'retries per registry request', env: 'AIRLOCK_RETRIES', min: 0, max: 20, hidden: true}),
    'retry-base-delay-ms': Flags.integer({description: 'first retry delay in ms (doubles per attempt, with jitter)', env: 'AIRLOCK_RETRY_BASE_DELAY_MS', min: 0, hidden: true}),
  }

  async run(): Promise<CreateResult & {media?: MediaResult}> {
    const {args, flags} = await this.parse(Create)
    const json = this.jsonEnabled()
    const env = environment()
    const signing: SigningKeyOptions = {keysDir: flags['keys-dir'] ?? defaultKeysDir(env), passphrase: flags['key-passphrase'], askPassphrase: passphrasePrompt(env)}
    const epoch = flags['source-date-epoch']
    const result = await createBundle({
      specFile: args.file,
      output: flags.output,
      signKey: flags['sign-key'],
      signing,
      ...(epoch === undefined ? {} : {epoch: epochFromEnv({SOURCE_DATE_EPOCH: epoch})}),
      unsigned: flags.unsigned,
      jobs: flags.jobs,
      cacheDir: flags['cache-dir'],
      locked: flags.locked,
      dockerPlatform: flags['docker-platform'],
      registryConfig: flags['registry-config'],
      splitSize: flags.split === undefined ? undefined : parseSize(flags.split),
      since: flags.since,
      keepGoing: flags['keep-going'],
      retries: flags.retries,
      retryBaseDelayMs: flags['retry-base-delay-ms'],
      progress: this.progress(),
    })
    if (!json) {
      this.log(result.files.length > 1 ? `wrote ${result.files.length} parts: ${result.files.join(', ')}` : `wrote ${result.archive}`)
      if (result.base) this.log(`  differential against ${result.base.name} ${result.base.version}: ${result.base.blobsLeftOut} layer(s), ${formatBytes(result.base.bytesLeftOut)} left out`)
      this.log(`  ${result.images.length} images, ${result.blobs} unique blobs, ${formatBytes(result.bytesWritten)} (dedupe saved ${formatBytes(result.dedupeSaved)})`)
      this.log(result.signer ? `  signed by ${result.signer.fingerprint}${result.signer.userId ? ` (${result.signer.userId})` : ''}` : '  UNSIGNED')
      for (const img of result.images.filter((i) => i.omitted)) {
        const left = img.omitted!.map((o) => (o.kind === 'image' ? o.platform : o.kind))
        this.log(`  NOTE: ${img.name}: a platform subset; the source index ${img.sourceDigest} became ${img.digest} (left out: ${left.join(', ')})`)
      }
      this.log(`  lock file ${result.lockFile}`)
      if (result.failed?.length) {
        this.log(`  WARNING: ${result.failed.length} image(s) NOT in the archive (lock file not updated):`)
        for (const f of result.failed) this.log(`    ${f.ref}: ${f.error}`)
      }
    }
    if (flags['with-installer']) {
      const media = await writeInstallMedia({dir: flags['with-installer'], files: result.files ?? [result.archive], bundle: result.bundle, signer: result.signer, specFile: args.file, signKey: flags['sign-key'], signing})
      if (!json) this.log(`  installation media in ${media.dir}: ${media.installer}, ${media.archive.join(', ')}${media.publicKey ? `, ${media.publicKey}` : ''}, INSTALL.txt`)
      return {...result, media}
    }
    return result
  }
}
