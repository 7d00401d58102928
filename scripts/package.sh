#!/usr/bin/env bash
# Self-contained installer for targets without Node: dist-package/airlock-VERSION-PLATFORM.tar.gz holds
# this machine's Node runtime (process.execPath), the built CLI and its production node_modules, and an
# `airlock` launcher. Copies only local files (downloads nothing). Needs a build: `npm run build` first
# (`npm run package` does both). Usage: bash scripts/package.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/package/installer.js ] || { echo "error: dist/ is missing or stale: run npm run build first" >&2; exit 1; }
exec node dist/package/installer.js "${1:-dist-package}"
