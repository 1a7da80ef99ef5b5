#!/usr/bin/env bash
# Type-checks the VS Code extension: installs the locked dependencies (`npm ci`, from the npm
# registry through npm) and compiles with the TypeScript compiler without writing output.
# VS Code itself cannot run here; this proves the extension compiles against the
# vscode-languageclient and VS Code API versions it declares.
#
# Closes with `vscode: 1 passed, 0 failed` (or `0 passed, 1 failed`); exits non-zero on failure.
set -uo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$dir" || exit 2

if ! command -v npm >/dev/null 2>&1; then
  echo "vscode: npm not found; install Node.js 18 or newer with npm. This script installs nothing else." >&2
  exit 2
fi

start=$SECONDS
if ! npm ci --no-audit --no-fund --loglevel=error; then
  echo "vscode: npm ci failed" >&2
  echo "vscode: 0 passed, 1 failed"
  exit 1
fi
if ! npx --no-install tsc -p . --noEmit; then
  echo "vscode: the extension does not compile" >&2
  echo "vscode: 0 passed, 1 failed"
  exit 1
fi
echo "ok vscode: the extension compiles ($((SECONDS - start)) s)"
echo "vscode: 1 passed, 0 failed"
