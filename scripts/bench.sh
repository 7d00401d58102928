#!/usr/bin/env bash
# npm run bench: airlock vs skopeo / docker save+load / openssl on a generated workload.
# Writes docs/benchmarks.md. Not part of npm test. Env knobs: see scripts/bench/main.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "bench: installing time(1)"; apt-get install -y -qq time >/dev/null; }
for tool in skopeo openssl docker taskset; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done
bash scripts/testbed.sh up >&2
eval "$(bash scripts/testbed.sh env)"
export DOCKER_HOST DOCKER_CONFIG TESTBED_REGISTRY_OPEN TESTBED_REGISTRY_TARGET
[ "${BENCH_NO_BUILD:-}" = 1 ] || npm run build >&2
exec node --import tsx scripts/bench/main.ts
