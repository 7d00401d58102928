/** The starter bundle.yaml written by `airlock init`. */

/**
 * A well-commented starter bundle.yaml. `schemaRef` is the path or URL written into the
 * yaml-language-server modeline (editors then complete keys and flag typos).
 */
export function starterBundle(opts: {name?: string; schemaRef: string}): string {
  const name = opts.name && /^[a-z0-9][a-z0-9._-]*$/.test(opts.name) ? opts.name : 'my-bundle'
  return `# yaml-language-server: $schema=${opts.schemaRef}
#
# An airlock bundle: the images to pack into ONE signed, deduplicated archive.
#   airlock validate            check this file (every problem as FILE:LINE:COL)
#   airlock create              pull the images and write the signed archive
apiVersion: airlock/v1
kind: Bundle

metadata:
  name: ${name}              # lowercase letters, digits, ".", "_", "-"
  version: 1.0.0             # any string; quote plain numbers ("1")
  description: Images for the offline site
  # expires: 90d             # an RFC 3339 date/time (2027-12-31T00:00:00Z) or a duration: 48h, 90d, 12w, 1y

# Default platforms for every image: a list of os/arch[/variant], or \`all\`.
platforms: [linux/amd64]

# Images: a reference string (name:tag, name@sha256:<hex>, name:tag@sha256:<hex>)
# or a mapping with per-image options. Short names are normalised like Docker:
# nginx:1.27 → docker.io/library/nginx:1.27.
images:
  - docker.io/library/nginx:1.27
  - ref: docker.io/library/redis:7
    platforms: [linux/amd64, linux/arm64/v8]     # this image only (or \`all\`)
    # name: registry.internal/cache/redis:7      # the name it carries on the target

# Helm charts: from an OCI registry (oci://…, version = tag), or a classic Helm
# repository (repo + name; version may be a semver range, pinned in bundle.lock.yaml).
# charts:
#   - chart: oci://registry.internal/charts/shop
#     version: 2.4.0
#   - repo: https://charts.bitnami.com/bitnami
#     name: redis
#     version: ^19.0

# Plain files: a path relative to this file (a directory means its tree) or an
# http(s) URL (without sha256 it is pinned in bundle.lock.yaml on the first create).
# \`airlock install --to dir:PATH\` writes them under PATH with their modes.
# files:
#   - source: ./scripts/install.sh
#     dest: bin/install.sh
#     mode: "0755"
#   - source: https://github.com/k3s-io/k3s/releases/download/v1.30.2%2Bk3s1/k3s-airgap-images-amd64.tar.zst
#     dest: k3s/k3s-airgap-images-amd64.tar.zst

# Per-registry options, keyed by host[:port] (also for the hosts of charts and file URLs).
# registries:
#   registry.internal:5000:
#     insecure: false                             # true allows plain HTTP
#     ca: ./certs/ca.pem                          # relative to this file
#     auth: {usernameEnv: REG_USER, passwordEnv: REG_PASS}   # NAMES of env vars, never the secrets
#     mirrors: [mirror.internal:5000]

# The OpenPGP key that signs the archive (one of the two):
# signing:
#   key: ./keys/release.key.asc                   # armored secret key, relative to this file
#   fingerprint: 0123456789ABCDEF0123456789ABCDEF01234567
`
}
