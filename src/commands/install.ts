import {Args, Flags} from '@oclif/core'

import {AirlockCommand} from '../cli/base.js'
import {progressFor} from '../cli/progress.js'
import {installArchive, InstallResult} from '../install/install.js'

export default class Install extends AirlockCommand {
  static override summary = 'Verify an archive and load its images into a target, in one pass'
  static override description = `Targets: docker (Docker Engine API over DOCKER_HOST), podman, containerd (ctr, CONTAINERD_ADDRESS), registry://HOST[:PORT][/PREFIX] (push), oci:DIR (OCI image layout, merged).

Verification is part of the install: the signature is checked against the trusted keys first, every byte is checked as it streams to the target, and nothing becomes visible there (no image, no tag) unless everything verified. After loading, each image's digest / image ID is confirmed on the target.`

  static override examples = [
    '<%= config.bin %> install release.tar --key release.pub.asc --to docker',
    '<%= config.bin %> install release.tar --key release.pub.asc --to registry://registry.local:5000/mirror',
    '<%= config.bin %> install release.tar --key release.pub.asc --to containerd --namespace k8s.io',
    '<%= config.bin %> install release.tar --key release.pub.asc --to oci:/srv/images --only app-a:1',
    '<%= config.bin %> install release.tar --key release.pub.asc --to podman --dry-run',
  ]

  static override args = {
    archive: Args.string({description: 'archive to install', required: true}),
  }

  static override flags = {
    key: Flags.string({char: 'k', description: 'trusted public key file or directory (repeatable)', multiple: true, env: 'AIRLOCK_TRUSTED_KEYS', delimiter: ','}),
    to: Flags.string({char: 't', description: 'target: docker | podman | containerd | registry://HOST[:PORT][/PREFIX] | oci:DIR', required: true}),
    only: Flags.string({description: 'install only these images (name, or a unique suffix like app:1); repeatable', multiple: true}),
    'dry-run': Flags.boolean({description: 'verify and show what would be installed, change nothing', default: false}),
    'allow-unsigned': Flags.boolean({description: 'accept an archive without a signature', default: false}),
    'registry-config': Flags.string({description: 'docker config.json (or its directory) with credentials for registry targets'}),
    insecure: Flags.boolean({description: 'plain HTTP to a non-loopback registry target', default: false}),
    'ca-file': Flags.string({description: 'PEM CA file for a registry target'}),
    namespace: Flags.string({description: 'containerd namespace', default: 'default'}),
    jobs: Flags.integer({char: 'j', description: 'parallel uploads to a registry', default: 8, min: 1, max: 64}),
  }

  async run(): Promise<InstallResult> {
    const {args, flags} = await this.parse(Install)
    const result = await installArchive({
      archive: args.archive,
      keys: flags.key ?? [],
      allowUnsigned: flags['allow-unsigned'],
      to: flags.to,
      only: flags.only,
      dryRun: flags['dry-run'],
      registryConfig: flags['registry-config'],
      insecure: flags.insecure,
      caFile: flags['ca-file'],
      namespace: flags.namespace,
      jobs: flags.jobs,
      progress: progressFor(this.jsonEnabled()),
    })
    if (!this.jsonEnabled()) {
      this.log(`${result.dryRun ? 'verified (dry run, nothing installed)' : 'installed'}: ${result.bundle.name} ${result.bundle.version} → ${result.target}`)
      if (result.signer) this.log(`  signed by ${result.signer.fingerprint}${result.signer.userId ? ` (${result.signer.userId})` : ''}`)
      for (const img of result.images) this.log(`  ${img.name}  ${img.digest}${img.confirmed ? `  (confirmed ${img.confirmed})` : ''}`)
    }
    return result
  }
}
