/**
 * `create --with-installer DIR`: complete installation media in one folder — the archive (all
 * parts), airlock for a target without Node, the public key, the signer's fingerprint,
 * SHA256SUMS and an INSTALL.txt with the exact commands. airlock comes as the single executable
 * when create runs as one (it copies itself: the tarball form cannot be built without the
 * node_modules it holds, nor is it needed), else as the self-contained tarball (installer.ts).
 */
import {createReadStream} from 'node:fs'
import {chmod, copyFile, mkdir, realpath, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {READ_CHUNK} from '../blob/sizes.js'
import {digestChunks} from '../blob/verified.js'
import {InputError} from '../core/errors.js'
import {findSigningKey, SigningKeyOptions} from '../sign/find.js'
import {describeKey} from '../sign/keys.js'
import {loadBundleSpec} from '../spec/load.js'
import {describeLibc, libcRequirement, runningExecutable} from './executable.js'
import {buildInstaller} from './installer.js'

export interface MediaResult {
  dir: string
  /** the file the target runs (`executable`) or unpacks first (`tarball`) */
  installer: string
  installerForm: 'executable' | 'tarball'
  archive: string[]
  publicKey?: string
  fingerprint?: string
  instructions: string
}

/** The name of the single executable on the media: INSTALL.txt's commands start with `./airlock`. */
export const EXECUTABLE_NAME = 'airlock'

interface MediaInstaller {
  file: string
  form: MediaResult['installerForm']
  /** how the commands run it, relative to the media folder */
  run: string
  /** its line in INSTALL.txt's list of files */
  description: string
  /** the step before `verify` */
  firstStep: string
}

/** This single executable copied onto the media, else the tarball form built from this installation. */
async function writeInstaller(dir: string): Promise<MediaInstaller> {
  const self = await runningExecutable()
  const libc = describeLibc(await libcRequirement(self ?? process.execPath))
  const needs = `the target needs no Node${libc ? `, only ${libc}` : ''}`
  if (self) {
    const dest = path.join(dir, EXECUTABLE_NAME)
    if ((await realpath(self)) !== path.join(await realpath(dir), EXECUTABLE_NAME)) await copyFile(self, dest)
    await chmod(dest, 0o755)
    return {
      file: EXECUTABLE_NAME, form: 'executable', run: `./${EXECUTABLE_NAME}`,
      description: `airlock as one executable file, Node ${process.version} inside (${process.platform}-${process.arch}); ${needs}`,
      firstStep: `chmod +x ${EXECUTABLE_NAME}    # a copy may have lost the execute bit`,
    }
  }
  const inst = await buildInstaller({outDir: dir})
  const file = path.basename(inst.file)
  return {
    file, form: 'tarball', run: `./${inst.launcher}`,
    description: `airlock with its own Node ${inst.nodeVersion} runtime (${inst.platform}); ${needs}`,
    firstStep: `tar -xzf ${file}`,
  }
}

async function sha256File(file: string): Promise<string> {
  return (await digestChunks(createReadStream(file, {highWaterMark: READ_CHUNK}))).digest.slice('sha256:'.length)
}

/** `ABCD 1234 …`: the fingerprint in groups of four, as people read it aloud. */
export function groupFingerprint(f: string): string {
  return f.replace(/(.{4})/g, '$1 ').trim()
}

export async function writeInstallMedia(opts: {
  dir: string
  /** archive files written by create (one, or the parts of a split archive) */
  files: string[]
  bundle: {name: string; version: string}
  signer?: {fingerprint: string; userId?: string}
  /** how create found the signing key, to write its PUBLIC half */
  specFile: string
  signKey?: string
  signing?: SigningKeyOptions
}): Promise<MediaResult> {
  const dir = path.resolve(opts.dir)
  await mkdir(dir, {recursive: true})
  const archive: string[] = []
  for (const f of opts.files) {
    const dest = path.join(dir, path.basename(f))
    if ((await realpath(f)) !== path.join(await realpath(dir), path.basename(f))) await copyFile(f, dest)
    archive.push(path.basename(f))
  }
  let publicKey: string | undefined
  if (opts.signer) {
    const spec = await loadBundleSpec(opts.specFile)
    const key = await findSigningKey({...opts.signing, path: opts.signKey ?? spec.signing?.key, fingerprint: opts.signKey ? undefined : spec.signing?.fingerprint})
    if (!key || describeKey(key).fingerprint !== opts.signer.fingerprint) {
      throw new InputError('media.key', 'cannot find the signing key again to write its public half into the media')
    }
    publicKey = 'airlock.pub.asc'
    await writeFile(path.join(dir, publicKey), key.toPublic().armor())
    await writeFile(path.join(dir, 'FINGERPRINT.txt'), `${opts.signer.fingerprint}${opts.signer.userId ? `  ${opts.signer.userId}` : ''}\n`)
  }
  const inst = await writeInstaller(dir)
  const installer = inst.file
  const sums = []
  for (const f of [installer, ...archive, ...(publicKey ? [publicKey] : [])]) {
    sums.push(`${await sha256File(path.join(dir, f))}  ${f}`)
  }
  await writeFile(path.join(dir, 'SHA256SUMS'), sums.join('\n') + '\n')

  const a = archive[0]
  const keyArg = publicKey ? `--key ${publicKey}` : '--allow-unsigned'
  const run = inst.run
  const text = [
    `airlock installation media: bundle ${opts.bundle.name} ${opts.bundle.version}`,
    '',
    'Files',
    `  ${installer}  ${inst.description}`,
    ...archive.map((f) => `  ${f}  the signed image archive${archive.length > 1 ? ' (part; pass the first one, the rest are found)' : ''}`),
    ...(publicKey ? [`  ${publicKey}  the public key the archive is signed with`, '  FINGERPRINT.txt  that key\'s fingerprint'] : []),
    '  SHA256SUMS  checksums of the files above (against accidental damage only)',
    '',
    ...(opts.signer
      ? [
        'Signing key fingerprint (compare it with the one you received OUT OF BAND — by phone, on paper —',
        'never only with this file: whoever could change the archive on this media could change this file too):',
        '',
        `    ${groupFingerprint(opts.signer.fingerprint)}${opts.signer.userId ? `   (${opts.signer.userId})` : ''}`,
        '',
      ]
      : ['WARNING: this bundle is UNSIGNED: nothing proves where it came from.', '']),
    'On the target, in this folder:',
    '',
    `  1. ${inst.firstStep}`,
    `  2. ${run} verify ${a} ${keyArg}`,
    ...(opts.signer ? ['     It prints "signed by <FINGERPRINT>": it must equal the fingerprint you got out of band.'] : []),
    '  3. install, for example one of:',
    `     ${run} install ${a} ${keyArg} --to docker`,
    `     ${run} install ${a} ${keyArg} --to podman`,
    `     ${run} install ${a} ${keyArg} --to containerd --namespace k8s.io`,
    `     ${run} install ${a} ${keyArg} --to registry://registry.local:5000`,
    '     or serve it as a read-only registry until Ctrl-C:',
    `     ${run} serve ${a} ${keyArg} --listen 0.0.0.0:5000`,
    '',
    `  ${run} inspect ${a} ${keyArg} shows what the archive holds; every command has --help.`,
    '',
  ].join('\n')
  await writeFile(path.join(dir, 'INSTALL.txt'), text)
  return {dir, installer, installerForm: inst.form, archive, ...(publicKey ? {publicKey, fingerprint: opts.signer!.fingerprint} : {}), instructions: 'INSTALL.txt'}
}
