/**
 * Access to the real-service testbed (scripts/testbed.sh): three docker-registry instances, a
 * dockerd, a containerd and a daemonless podman configuration, all on 127.0.0.1, plus seeded images.
 *
 *   const tb = await testbed()
 *   await execFileP('docker', ['pull', tb.images['app-a'].ref], {env: tb.processEnv})
 *
 * `testbed()` brings the testbed up and seeds it when `testbed.sh status` fails (the full suite does
 * that once beforehand), then returns the parsed `testbed.sh env --json`. Cached per process.
 */
import {execFile} from 'node:child_process'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

const execFileP = promisify(execFile)

export const TESTBED_SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/testbed.sh')

/** One platform manifest of a seeded image, as the registry serves it. */
export interface TestbedManifest {
  /** e.g. 'linux/amd64', 'linux/arm64/v8' */
  platform: string
  digest: string
  mediaType: string
  size: number
  /** config blob digest */
  config: string
  /** layer digests, bottom first */
  layers: string[]
  layerSizes: number[]
}

/** A seeded image. */
export interface TestbedImage {
  /** 'base' | 'app-a' | 'app-b' | 'app-c' | 'multi' | 'secret' */
  name: string
  /** full reference, e.g. '127.0.0.1:5301/testbed/app-a:1' */
  ref: string
  /** 'host:port' */
  registry: string
  /** e.g. 'testbed/app-a' */
  repository: string
  tag: string
  /** media type of the tag's top-level manifest (OCI/Docker manifest or OCI index) */
  mediaType: string
  /** registry digest of the tag */
  digest: string
  size: number
  /** trimmed stdout of `docker run --network none REF` on linux/amd64 */
  output: string | null
  /** true for the image on the htpasswd registry */
  requiresAuth: boolean
  platforms: string[]
  manifests: TestbedManifest[]
  /** digest of the locally built OCI artifact (equals `digest` unless converted to Docker schema2) */
  sourceDigest: string
}

export interface Testbed {
  /** the state dir everything lives in */
  stateDir: string
  /** 'host:port' of each registry: open (seeded), auth (htpasswd, seeded), target (empty install target) */
  registries: {open: string; auth: string; target: string}
  /** credentials of the auth registry */
  auth: {registry: string; username: string; password: string}
  /** 'unix:///…/docker.sock' */
  dockerHost: string
  /** a private DOCKER_CONFIG dir (so `docker login` does not touch ~/.docker) */
  dockerConfig: string
  /** containerd grpc socket path (ctr -a / CONTAINERD_ADDRESS) */
  containerdAddress: string
  containerdNamespace: string
  containersStorageConf: string
  containersRegistriesConf: string
  containersConf: string
  /** podman/skopeo auth file (REGISTRY_AUTH_FILE) */
  registryAuthFile: string
  /** the same as `eval "$(testbed.sh env)"` exports (without the image variables) */
  env: Record<string, string>
  /** process.env merged with `env`: pass as `{env: tb.processEnv}` to docker/ctr/podman/skopeo children */
  processEnv: NodeJS.ProcessEnv
  seeded: boolean
  /** digests of the layers app-b and app-c share (the busybox base layer and the "middle" layer) */
  layers: {base: string; middle: string}
  images: Record<'base' | 'app-a' | 'app-b' | 'app-c' | 'multi' | 'secret', TestbedImage> & Record<string, TestbedImage>
}

/** Run scripts/testbed.sh with arguments; returns stdout. */
export async function testbedScript(...args: string[]): Promise<string> {
  const {stdout} = await execFileP('bash', [TESTBED_SCRIPT, ...args], {maxBuffer: 16 * 1024 * 1024, timeout: 600_000})
  return stdout
}

let cached: Promise<Testbed> | undefined

async function load(): Promise<Testbed> {
  let ready = true
  try {
    await testbedScript('status')
  } catch {
    ready = false
  }
  try {
    if (!ready) await testbedScript('up')
    // Seeding is idempotent and fast when the tags are already there; run it when status found the
    // services down or the images were never seeded.
    const first = JSON.parse(await testbedScript('env', '--json')) as Omit<Testbed, 'processEnv'>
    if (!ready || !first.seeded) await testbedScript('seed')
  } catch (err) {
    const e = err as {stderr?: string; message: string}
    throw new Error(`testbed could not be brought up: ${(e.stderr ?? '').trim() || e.message}`)
  }
  const tb = JSON.parse(await testbedScript('env', '--json')) as Omit<Testbed, 'processEnv'>
  return {...tb, processEnv: {...process.env, ...tb.env}}
}

/** The running, seeded testbed (brought up on first use). Cached per process. */
export function testbed(): Promise<Testbed> {
  cached ??= load().catch((err: unknown) => {
    cached = undefined
    throw err
  })
  return cached
}
