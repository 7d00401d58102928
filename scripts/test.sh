#!/usr/bin/env bash
# The whole test suite: build, bring up the real-service testbed (installing what it needs),
# seed it, run every test against it, and take the testbed down again.
# AIRLOCK_KEEP_TESTBED=1 leaves it running for the next run (faster local iterations).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent lint  # fail fast: needs neither the build nor the testbed (ESLint + import rules)
npm run --silent build
# Type-check the tests and scripts too (the build covers src/ only).
node node_modules/typescript/bin/tsc -p test/tsconfig.json
bash scripts/testbed.sh up
if [ "${AIRLOCK_KEEP_TESTBED:-0}" != 1 ]; then trap 'bash scripts/testbed.sh down >/dev/null 2>&1 || true' EXIT; fi
bash scripts/testbed.sh seed
# install records versions for rollback protection: keep the tests' records out of ~/.local/state
export AIRLOCK_STATE_FILE="${AIRLOCK_STATE_FILE:-$(mktemp -d)/installed.json}"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(test/*.test.ts)
log=$(mktemp)
set +e
node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
pass=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$log" | tail -1)
fail=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$log" | tail -1)
cancelled=$(sed -n 's/^ℹ cancelled \([0-9]*\)$/\1/p' "$log" | tail -1)
rm -f "$log"
# A test that timed out or hung counts as cancelled, not failed: say so.
echo "${pass:-0} passed, ${fail:-0} failed$([ "${cancelled:-0}" = 0 ] || echo ", ${cancelled} cancelled (timed out)")"
exit "$rc"
