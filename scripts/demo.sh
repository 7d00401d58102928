#!/usr/bin/env bash
# The main job, end to end, on examples/quickstart/bundle.yaml against the local testbed:
# testbed up + seed → key → create (signed) → verify → install into the local Docker Engine → run.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
bash scripts/testbed.sh up
bash scripts/testbed.sh seed
eval "$(bash scripts/testbed.sh env)"
work=${AIRLOCK_DEMO_DIR:-/tmp/airlock-demo}
mkdir -p "$work"
airlock() { node bin/run.js "$@"; }
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "validate examples/quickstart/bundle.yaml"
airlock validate examples/quickstart/bundle.yaml

if [ ! -f "$work/release.key.asc" ]; then
  step "generate a signing key"
  airlock key generate --name "airlock demo" --email demo@airlock.invalid --out "$work/release"
fi

step "create the signed bundle"
airlock create examples/quickstart/bundle.yaml \
  --sign-key "$work/release.key.asc" -o "$work/quickstart.tar"

step "inspect (metadata only)"
airlock inspect "$work/quickstart.tar" --key "$work/release.pub.asc"

step "verify (signature + every byte, one pass)"
airlock verify "$work/quickstart.tar" --key "$work/release.pub.asc"

step "install into the local Docker Engine ($DOCKER_HOST)"
airlock install "$work/quickstart.tar" --key "$work/release.pub.asc" --to docker

step "run the installed image with no network"
/usr/bin/docker run --rm --network none 127.0.0.1:5301/testbed/app-a:1
printf '\ndemo OK: archive at %s\n' "$work/quickstart.tar"
