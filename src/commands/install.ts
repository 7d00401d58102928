import {Flags, Interfaces} from '@oclif/core'

import {AirlockCommand} from '../cli/base.js'
import {environment, hashThreadsOf} from '../cli/env.js'
import {allowUnsignedFlag, archiveArg, hashThreadsFlag, thresholdFlag, thresholdOf, trustedKeysFlag} from '../cli/flags.js'
import {countsText, installArchive, InstallOptions, InstallResult} from '../install/install.js'
import {defaultStateFile} from '../install/state.js'
import {mirrorConfigHint} from '../mirror/mirror-config.js'
import {trustedKeyPaths} from '../sign/keys.js'

export default class Install extends AirlockCommand {
  static override summary = 'Verify an archive and load its images into a target, in one pass'
  static override description = `Targets: docker (Docker Engine API over DOCKER_HOST), podman, containerd (ctr, CONTAINERD_ADDRESS), registry://HOST[:PORT][/PREFIX] (push), oci:DIR (OCI image layout, merged), dir:PATH (the bundle's files with their modes, and its charts as a Helm chart repository: NAME-VERSION.tgz + index.yaml; images are left out).

Verification is part of the install: the signature is checked against the trusted keys first, every byte is checked as it streams to the target, and nothing becomes visible there (no image, no tag) unless everything verified. After loading, each image's digest / image ID is confirmed on the target.`

  static override examples = [
    '<%= config.bin %> install release.tar --key release.pub.asc --to docker',
    '<%= config.bin %> install release.tar --key release.pub.asc --to registry://registry.local:5000/mirror',
    '<%= config.bin %> install release.tar --key release.pub.asc --to containerd --namespace k8s.io',
    '<%= config.bin %> install release.tar --key release.pub.asc --to oci:/srv/images --only app-a:1',
    '<%= config.bin %> install release.tar --key release.pub.asc --to podman --dry-run',
    'ssh host <%= config.bin %> install - --key release.pub.asc --to docker < release.tar',
  ]

  static override args = {
    archive: archiveArg('install'),
  }

  static override flags = {
    key: trustedKeysFlag,
    to: Flags.string({char: 't', description: 'target: docker | podman | containerd | registry://HOST[:PORT][/PREFIX] | oci:DIR | dir:PATH', required: true}),
    only: Flags.string({description: 'install only these images (name, or a unique suffix like app:1); repeatable', multiple: true}),
    'dry-run': Flags.boolean({description: 'verify and show what would be installed, change nothing', default: false}),
    'allow-unsigned': allowUnsignedFlag,
    'registry-config': Flags.string({description: 'docker config.json (or its directory) with credentials for registry targets'}),
    base: Flags.string({description: 'for a differential bundle: the base bundle archive to stream the left-out layers from'}),
    insecure: Flags.boolean({description: 'plain HTTP to a non-loopback registry target', default: false}),
    'ca-file': Flags.string({description: 'PEM CA file for a registry target'}),
    'docker-host': Flags.string({description: 'Docker Engine socket for --to docker, unix:///PATH (default unix:///var/run/docker.sock)', env: 'DOCKER_HOST'}),
    'containerd-address': Flags.string({description: 'containerd socket for --to containerd (default: ctr\'s)', env: 'CONTAINERD_ADDRESS'}),
    namespace: Flags.string({description: 'containerd namespace', env: 'CONTAINERD_NAMESPACE', default: 'default'}),
    jobs: Flags.integer({char: 'j', description: 'parallel uploads to a registry', default: 8, min: 1, max: 64}),
    'allow-downgrade': Flags.boolean({description: 'install even if a newer version of this bundle was installed before (see --state-file)', default: false}),
    'state-file': Flags.string({description: 'record of installed bundle versions (default $XDG_STATE_HOME/airlock/installed.json)', env: 'AIRLOCK_STATE_FILE'}),
    retries: Flags.integer({description: 'retries per registry request', env: 'AIRLOCK_RETRIES', min: 0, max: 20, hidden: true}),
    'retry-base-delay-ms': Flags.integer({description: 'first retry delay in ms (doubles per attempt, with jitter)', env: 'AIRLOCK_RETRY_BASE_DELAY_MS', min: 0, hidden: true}),
    'hash-threads': hashThreadsFlag,
    threshold: thresholdFlag,
    'docker-layers': Flags.string({description: '`gzip`: send gzip layers to docker as they are, not inflated', env: 'AIRLOCK_DOCKER_LAYERS', hidden: true}),
    podman: Flags.string({description: 'podman executable (default podman on PATH)', env: 'AIRLOCK_PODMAN', hidden: true}),
    ctr: Flags.string({description: 'ctr executable (default ctr on PATH)', env: 'AIRLOCK_CTR', hidden: true}),
  }

  async run(): Promise<InstallResult> {
    const {args, flags} = await this.parse(Install)
    const result = await installArchive(installOptions(args.archive, flags, environment(), this.progress()))
    if (!this.jsonEnabled()) {
      this.log(`${result.dryRun ? 'verified (dry run, nothing installed)' : 'installed'}: ${result.bundle.name} ${result.bundle.version} → ${result.target}`)
      if (result.signer) this.log(`  signed by ${result.signer.fingerprint}${result.signer.userId ? ` (${result.signer.userId})` : ''}`)
      for (const img of result.images) this.log(`  ${img.name}  ${img.digest}${img.confirmed ? `  (confirmed ${img.confirmed})` : ''}`)
      for (const s of result.skipped ?? []) this.log(`  left out ${s.name}  ${s.digest}  (${s.kind}: ${s.reason})`)
      for (const m of result.leftOut ?? []) this.log(`  ${m.name}: left out ${countsText(m.counts)}`)
      if (!result.dryRun && flags.to.startsWith('registry://')) this.log(`  ${mirrorConfigHint(args.archive, flags.to, flags.insecure)}`)
    }
    return result
  }
}

type InstallFlags = Interfaces.InferredFlags<typeof Install.flags>

/** What `install` passes to installArchive: its flags (each with its environment variable, src/cli/env.ts), and the defaults built from the environment. */
export function installOptions(archive: string, flags: InstallFlags, env: ReturnType<typeof environment>, progress: InstallOptions['progress']): InstallOptions {
  return {
    archive,
    keys: trustedKeyPaths(flags.key, env),
    allowUnsigned: flags['allow-unsigned'],
    to: flags.to,
    only: flags.only,
    dryRun: flags['dry-run'],
    registryConfig: flags['registry-config'],
    base: flags.base,
    insecure: flags.insecure,
    caFile: flags['ca-file'],
    dockerHost: flags['docker-host'],
    dockerInflate: flags['docker-layers'] === 'gzip' ? false : undefined,
    podman: flags.podman,
    ctr: flags.ctr,
    containerdAddress: flags['containerd-address'],
    namespace: flags.namespace,
    jobs: flags.jobs,
    hashThreads: hashThreadsOf(flags['hash-threads']),
    threshold: thresholdOf(flags.threshold),
    allowDowngrade: flags['allow-downgrade'],
    stateFile: flags['state-file'] ?? defaultStateFile(env),
    retries: flags.retries,
    retryBaseDelayMs: flags['retry-base-delay-ms'],
    progress,
  }
}
