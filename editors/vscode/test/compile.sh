#!/usr/bin/env bash
# Checks the VS Code extension without VS Code: installs the locked dependencies (`npm ci`, from
# the npm registry through npm), type-checks and compiles it with the TypeScript compiler into a
# scratch folder, then runs its unit tests (test/*.test.js, Node's test runner) against that
# build, with a stand-in for the `vscode` module that only VS Code provides. VS Code itself
# cannot run here, so the extension has never been started inside it.
#
# Closes with `vscode: N passed, M failed` (the compile counts as one); exits non-zero on failure.
set -uo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$dir" || exit 2

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "vscode: node and npm not found; install Node.js 18 or newer with npm. This script installs nothing else." >&2
  exit 2
fi

start=$SECONDS
if ! npm ci --no-audit --no-fund --loglevel=error; then
  echo "vscode: npm ci failed" >&2
  echo "vscode: 0 passed, 1 failed"
  exit 1
fi
out="$(mktemp -d "${TMPDIR:-/tmp}/conductor-vscode-out.XXXXXX")"
trap 'rm -rf "$out"' EXIT
if ! npx --no-install tsc -p . --outDir "$out"; then
  echo "not ok vscode: the extension compiles"
  echo "vscode: 0 passed, 1 failed"
  exit 1
fi
echo "ok vscode: the extension compiles"

report="$out/unit.tap"
CONDUCTOR_VSCODE_OUT="$out" NODE_PATH="$dir/test/fake-vscode:$dir/node_modules" \
  node --test --test-reporter=tap test/*.test.js >"$report" 2>&1
unit_status=$?
unit_passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$report" | tail -n 1)
unit_failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$report" | tail -n 1)
grep -E '^(not )?ok ' "$report" | sed 's/^/unit: /'
if [[ -z "$unit_passed" || -z "$unit_failed" ]] || ((unit_status != 0 && unit_failed == 0)); then
  sed 's/^/    /' "$report" >&2
  echo "vscode: 1 passed, 1 failed"
  exit 1
fi
if ((unit_failed > 0)); then
  sed 's/^/    /' "$report" >&2
fi
echo "($((SECONDS - start)) s)"
echo "vscode: $((1 + unit_passed)) passed, $unit_failed failed"
((unit_failed == 0))
