#!/usr/bin/env bash
# airlock for targets without Node, in two forms, both from this machine's Node runtime
# (process.execPath) and local files only (downloads nothing):
#   dist-package/airlock-VERSION-PLATFORM.tar.gz  the runtime, the built CLI and its production
#       node_modules, and an `airlock` launcher (src/package/installer.ts);
#   dist-package/airlock-VERSION-PLATFORM         the single executable (scripts/build-sea.mjs).
# Needs a build: `npm run build` first (`npm run package` does both), and the devDependencies for
# the single executable. Usage: bash scripts/package.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/package/installer.js ] || { echo "error: dist/ is missing or stale: run npm run build first" >&2; exit 1; }
node dist/package/installer.js "${1:-dist-package}"
exec node scripts/build-sea.mjs "${1:-dist-package}"
