import {Flags} from '@oclif/core'

import {AirlockCommand} from '../cli/base.js'
import {environment, hashThreadsOf} from '../cli/env.js'
import {allowUnsignedFlag, archiveArg, hashThreadsFlag, thresholdFlag, thresholdOf, trustedKeysFlag} from '../cli/flags.js'
import {startServe, ServeStats} from '../serve/server.js'
import type {ServedImage} from '../serve/catalog.js'
import {trustedKeyPaths} from '../sign/keys.js'

export interface ServeResult {
  event: 'stopped'
  archive: string
  address: string
  url: string
  signal: string
  images: ServedImage[]
  stats: ServeStats
}

export default class Serve extends AirlockCommand {
  static override summary = 'Serve a verified archive as a read-only registry (OCI distribution API)'
  static override description = `Verifies the archive once (signature and every byte, like \`airlock verify\`), then serves its images straight from the tar by byte offset — nothing is extracted — until SIGTERM/SIGINT. Each image is served under its name without the registry host: 127.0.0.1:5301/team/app:1 becomes repository team/app, tag 1, so clients pull HOST:PORT/team/app:1. Manifests and blobs are re-hashed as they are served: if the file changes after verification, a changed blob is cut off, never served complete. Writes are refused (405).

Stops on SIGTERM or SIGINT: no new connections, in-flight pulls finish (up to 30 s), exit 0.

With --json, stdout is one JSON object per line: {"event":"ready",…} once listening (address, url, images), then {"event":"stopped",…} with request statistics after shutdown. Errors before listening are the usual {"error":…} line.

Exit codes: 0 stopped by a signal, 3 verification failed, 2 invalid input, 1 other failure (e.g. port in use).`

  static override examples = [
    '<%= config.bin %> serve release.tar --key release.pub.asc',
    '<%= config.bin %> serve release.tar --key release.pub.asc --listen 0.0.0.0:5000 --tls-cert reg.crt --tls-key reg.key',
    '<%= config.bin %> serve release.tar --key release.pub.asc --listen 127.0.0.1:0 --json   # free port, printed in the ready line',
  ]

  static override args = {
    archive: archiveArg('serve', {stdin: false}),
  }

  static override flags = {
    key: trustedKeysFlag,
    listen: Flags.string({char: 'l', description: 'HOST:PORT to listen on (port 0 = any free port)', default: '127.0.0.1:5000'}),
    'tls-cert': Flags.string({description: 'PEM certificate (chain) to serve HTTPS'}),
    'tls-key': Flags.string({description: 'PEM private key for --tls-cert'}),
    'allow-unsigned': allowUnsignedFlag,
    'hash-threads': hashThreadsFlag,
    threshold: thresholdFlag,
  }

  /** One JSON object per line: a long-running command emits several. */
  protected override logJson(json: unknown): void {
    process.stdout.write(JSON.stringify(json) + '\n')
  }

  async run(): Promise<ServeResult> {
    const {args, flags} = await this.parse(Serve)
    const json = this.jsonEnabled()
    const handle = await startServe({
      archive: args.archive,
      keys: trustedKeyPaths(flags.key, environment()),
      hashThreads: hashThreadsOf(flags['hash-threads']),
      threshold: thresholdOf(flags.threshold),
      allowUnsigned: flags['allow-unsigned'],
      listen: flags.listen,
      tlsCert: flags['tls-cert'],
      tlsKey: flags['tls-key'],
    })
    const signal = await new Promise<string>((resolve) => {
      const on = (sig: NodeJS.Signals) => {
        process.off('SIGTERM', on)
        process.off('SIGINT', on)
        // A second signal while draining cuts the remaining connections.
        process.once(sig, () => handle.closeAll())
        resolve(sig)
      }
      process.on('SIGTERM', on)
      process.on('SIGINT', on)
      if (json) {
        this.logJson({event: 'ready', archive: handle.archive, address: handle.address, url: handle.url, bundle: handle.bundle, signed: handle.signed, ...(handle.signer ? {signer: handle.signer} : {}), images: handle.images, warnings: handle.warnings})
      } else {
        this.log(`verified ${handle.archive}: ${handle.bundle.name} ${handle.bundle.version}${handle.signer ? `, signed by ${handle.signer.fingerprint}` : ', UNSIGNED (accepted with --allow-unsigned)'}`)
        this.log(`serving on ${handle.url} (read-only; Ctrl-C or SIGTERM to stop)`)
        for (const img of handle.images) this.log(`  ${handle.address}/${img.repository}${img.tag ? `:${img.tag}` : `@${img.digest}`}  ${img.digest}  ${img.platforms.length > 0 ? `[${img.platforms.join(', ')}]` : 'no runnable image'}`)
      }
    })
    if (!json) this.log(`${signal}: stopping (finishing in-flight requests)`)
    const stats = await handle.close()
    if (!json) this.log(`stopped: ${stats.requests} requests, ${stats.manifestsServed} manifests and ${stats.blobsServed} blobs served${stats.integrityFailures ? `, ${stats.integrityFailures} refused (archive changed)` : ''}`)
    return {event: 'stopped', archive: handle.archive, address: handle.address, url: handle.url, signal, images: handle.images, stats}
  }
}
