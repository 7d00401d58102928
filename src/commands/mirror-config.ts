import {Flags} from '@oclif/core'

import {AirlockCommand} from '../cli/base.js'
import {environment} from '../cli/env.js'
import {allowUnsignedFlag, archiveArg, trustedKeysFlag} from '../cli/flags.js'
import {MIRROR_FORMATS, mirrorConfig, MirrorConfigResult} from '../mirror/mirror-config.js'
import {trustedKeyPaths} from '../sign/keys.js'

export default class MirrorConfig extends AirlockCommand {
  static override summary = 'Write the runtime configuration that pulls a bundle\'s images by their original names from the registry it was installed into'
  static override description = `After \`airlock install ARCHIVE --to registry://HOST[:PORT][/PREFIX]\`, the nodes still pull docker.io/…, ghcr.io/… by their original names. This writes what each runtime needs to pull those names from HOST/PREFIX instead (the same paths install used), reading only the archive's signed metadata:
  containerd       HOST/hosts.toml per upstream host, for containerd's config_path (/etc/containerd/certs.d) or ctr --hosts-dir
  registries.conf  a containers-registries.conf(5) drop-in for /etc/containers/registries.conf.d (podman, CRI-O, skopeo)
  k3s              registries.yaml for /etc/rancher/k3s (or /etc/rancher/rke2)
  docker           nothing: Docker Engine cannot do it (says why, and the alternative)

Without -o the files are printed (each after a "# ==> PATH <==" line); with -o DIR they are written under DIR, each atomically. The signature is checked as verify checks it (--key, or --allow-unsigned).`

  static override examples = [
    '<%= config.bin %> mirror-config release.tar --key release.pub.asc --registry registry.local:5000/mirror --format containerd -o /etc/containerd/certs.d',
    '<%= config.bin %> mirror-config release.tar --key release.pub.asc --registry registry.local:5000/mirror --format registries.conf -o /etc/containers/registries.conf.d',
    '<%= config.bin %> mirror-config release.tar --key release.pub.asc --registry registry.local:5000/mirror --format k3s --ca-file /etc/ssl/mirror-ca.pem',
  ]

  static override args = {
    archive: archiveArg('read'),
  }

  static override flags = {
    key: trustedKeysFlag,
    'allow-unsigned': allowUnsignedFlag,
    registry: Flags.string({char: 'r', description: 'the registry the bundle was installed into: HOST[:PORT][/PREFIX], as in install --to registry://…', required: true}),
    format: Flags.string({char: 'f', description: 'the runtime to configure', options: [...MIRROR_FORMATS], required: true}),
    output: Flags.string({char: 'o', description: 'write the files under this directory (default: print them)'}),
    'ca-file': Flags.string({description: 'absolute path of the mirror\'s PEM CA file on the nodes'}),
    insecure: Flags.boolean({description: 'the mirror speaks plain HTTP (as install --insecure; loopback hosts always do)', default: false}),
  }

  async run(): Promise<MirrorConfigResult> {
    const {args, flags} = await this.parse(MirrorConfig)
    const r = await mirrorConfig({
      archive: args.archive, registry: flags.registry, format: flags.format, outDir: flags.output, caFile: flags['ca-file'], insecure: flags.insecure,
      keys: trustedKeyPaths(flags.key, environment()), allowUnsigned: flags['allow-unsigned'],
    })
    if (this.jsonEnabled()) return r
    if (r.format === 'docker') {
      // Nothing to write: the explanation is the result.
      for (const n of r.notes) this.log(n)
      return r
    }
    if (r.written.length > 0) {
      for (const f of r.written) this.log(`wrote ${f}`)
    } else {
      // stdout holds only the files (a single one as it is, to redirect); the rest goes to stderr.
      const headed = r.files.length > 1 || r.format === 'containerd'
      r.files.forEach((f, i) => this.log(`${i > 0 ? '\n' : ''}${headed ? `# ==> ${f.path} <==\n` : ''}${f.content.replace(/\n$/, '')}`))
      if (r.directory && r.files.length > 0) process.stderr.write(`put ${r.files.length > 1 ? 'these files' : 'this file'} under ${r.directory} on each node (or pass -o DIR)\n`)
    }
    for (const n of r.notes) process.stderr.write(`note: ${n}\n`)
    return r
  }
}
