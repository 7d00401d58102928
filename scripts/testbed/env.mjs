// Prints the testbed environment. stdin: K=V lines from testbed.sh; argv: FORMAT (shell|json) SEED_JSON.
import {readFileSync} from 'node:fs'

const [format, seedPath] = process.argv.slice(2)
const env = {}
for (const line of readFileSync(0, 'utf8').split('\n')) {
  const i = line.indexOf('=')
  if (i > 0) env[line.slice(0, i)] = line.slice(i + 1)
}
let seed = null
try {
  seed = JSON.parse(readFileSync(seedPath, 'utf8'))
} catch {
  seed = null
}
const images = seed?.images ?? {}

if (format === 'json') {
  const out = {
    stateDir: env.AIRLOCK_TESTBED_DIR,
    registries: {open: env.TESTBED_REGISTRY_OPEN, auth: env.TESTBED_REGISTRY_AUTH, target: env.TESTBED_REGISTRY_TARGET},
    auth: {registry: env.TESTBED_REGISTRY_AUTH, username: env.TESTBED_AUTH_USER, password: env.TESTBED_AUTH_PASSWORD},
    dockerHost: env.DOCKER_HOST,
    dockerConfig: env.DOCKER_CONFIG,
    containerdAddress: env.CONTAINERD_ADDRESS,
    containerdNamespace: env.CONTAINERD_NAMESPACE,
    containersStorageConf: env.CONTAINERS_STORAGE_CONF,
    containersRegistriesConf: env.CONTAINERS_REGISTRIES_CONF,
    containersConf: env.CONTAINERS_CONF,
    registryAuthFile: env.REGISTRY_AUTH_FILE,
    env,
    seeded: seed !== null,
    layers: seed?.layers ?? {},
    images,
  }
  process.stdout.write(JSON.stringify(out, null, 2) + '\n')
} else {
  const q = (v) => (/^[A-Za-z0-9_@%+=:,./-]*$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`)
  const lines = Object.entries(env).map(([k, v]) => `export ${k}=${q(v)}`)
  for (const [name, img] of Object.entries(images)) {
    const key = 'TESTBED_IMAGE_' + name.toUpperCase().replace(/[^A-Z0-9]/g, '_')
    lines.push(`export ${key}=${q(img.ref)}`, `export ${key}_DIGEST=${q(img.digest)}`)
  }
  process.stdout.write(lines.join('\n') + '\n')
}
