#!/usr/bin/env bash
# The whole test suite, with one summary line for the whole run:
#   0. the linter (npm run lint: ESLint and the import rules);
#   1. the unit tests (test/unit: no root, no services, no build);
#   2. build, bring up the real-service testbed (installing what it needs), seed it, run the
#      integration tests (test/integration) against it, and take the testbed down again.
#   scripts/test.sh --unit    the unit tests only (npm run test:unit)
#   scripts/test.sh FILE...   just these files (the build and the testbed only for integration files)
# AIRLOCK_KEEP_TESTBED=1 leaves the testbed running for the next run (faster local iterations).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
# install records versions for rollback protection: keep the tests' records out of ~/.local/state
export AIRLOCK_STATE_FILE="${AIRLOCK_STATE_FILE:-$(mktemp -d)/installed.json}"

unit=() integration=()
if [ "${1:-}" = --unit ]; then
  mapfile -t unit < <(find test/unit -name '*.test.ts' | sort)
elif [ $# -gt 0 ]; then
  for f in "$@"; do case $f in test/unit/*) unit+=("$f") ;; *) integration+=("$f") ;; esac; done
else
  npm run --silent lint  # the whole run: fail fast, before any test (ESLint + import rules)
  mapfile -t unit < <(find test/unit -name '*.test.ts' | sort)
  mapfile -t integration < <(find test/integration -name '*.test.ts' | sort)
fi

passed=0 failed=0 cancelled=0 rc=0
count() { sed -n "s/^ℹ $1 \([0-9]*\)$/\1/p" "$2" | tail -1 | grep . || echo 0; }
# Run test files (spec output as it goes) and add their counts to the totals.
run_tests() {
  local log
  log=$(mktemp)
  set +e
  node --import tsx --test --test-concurrency=1 --test-reporter=spec "$@" 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
  set -e
  passed=$((passed + $(count pass "$log")))
  failed=$((failed + $(count fail "$log")))
  cancelled=$((cancelled + $(count cancelled "$log")))
  rm -f "$log"
}
# A test that timed out or hung counts as cancelled, not failed: say so.
summary() {
  echo "${passed} passed, ${failed} failed$([ "$cancelled" = 0 ] || echo ", ${cancelled} cancelled (timed out)")"
  [ "$failed" = 0 ] && [ "$cancelled" = 0 ] || rc=1
  exit "$rc"
}

[ ${#unit[@]} -eq 0 ] || run_tests "${unit[@]}"
[ ${#integration[@]} -gt 0 ] || summary
npm run --silent build
# Type-check the tests and scripts too (the build covers src/ only).
node node_modules/typescript/bin/tsc -p test/tsconfig.json
bash scripts/testbed.sh up
if [ "${AIRLOCK_KEEP_TESTBED:-0}" != 1 ]; then trap 'bash scripts/testbed.sh down >/dev/null 2>&1 || true' EXIT; fi
bash scripts/testbed.sh seed
run_tests "${integration[@]}"
summary
