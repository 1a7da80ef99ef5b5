#!/usr/bin/env bash
# Packages the VS Code extension the way a release would and checks the package: `vsce package`
# (the locked @vscode/vsce; its prepublish step type-checks and bundles the extension with
# esbuild into dist/extension.js) builds conductor-<version>.vsix, then `vsce ls` and the
# archive's own table of contents must hold the bundle, package.json, the README and the
# licence, and nothing else (no node_modules, sources, tests or source maps). Finally the
# bundle is loaded under Node with the `vscode` stand-in, to show that esbuild inlined the
# language client and nothing is missing at run time.
#
# Installs the locked dependencies with `npm ci` when they are not there yet. Writes the .vsix
# to $CONDUCTOR_VSIX_DIR (default: a scratch folder, removed at the end).
# Closes with `vscode-package: N passed, M failed`; exits non-zero on failure.
set -uo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$dir" || exit 2

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "vscode-package: node and npm not found; install Node.js 20 or newer with npm." >&2
  exit 2
fi

start=$SECONDS
passed=0
failed=0
ok() { echo "ok vscode-package: $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok vscode-package: $1: $2"; failed=$((failed + 1)); }
finish() {
  echo "($((SECONDS - start)) s)"
  echo "vscode-package: $passed passed, $failed failed"
  ((failed == 0))
  exit $?
}

if [[ ! -x node_modules/.bin/vsce || ! -x node_modules/.bin/esbuild ]]; then
  if ! npm ci --no-audit --no-fund --loglevel=error; then
    not_ok "the locked dependencies install" "npm ci failed"
    finish
  fi
fi

version="$(node -p 'require("./package.json").version')"
name="$(node -p 'require("./package.json").name')"
out="${CONDUCTOR_VSIX_DIR:-}"
if [[ -z "$out" ]]; then
  out="$(mktemp -d "${TMPDIR:-/tmp}/conductor-vsix.XXXXXX")"
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"
vsix="$out/$name-$version.vsix"

# No repository field: the extension is not published from a public repository; the README
# has no relative links that would need one. Standard input is closed so that vsce can never
# wait on a question.
if npx --no-install vsce package --no-dependencies --allow-missing-repository -o "$vsix" </dev/null >"$out/package.log" 2>&1 &&
  [[ -s "$vsix" ]]; then
  ok "vsce package builds $(basename "$vsix") ($(($(stat -c %s "$vsix") / 1024)) KiB)"
else
  sed 's/^/    /' "$out/package.log" >&2
  not_ok "vsce package builds $(basename "$vsix")" "see the log above"
  finish
fi

# What the package holds, by two independent readings: vsce's list, and the archive itself.
expected=$'LICENSE\nLICENSE-APACHE\nREADME.md\ndist/extension.js\npackage.json'
listed="$(npx --no-install vsce ls --no-dependencies </dev/null 2>"$out/ls.log" | LC_ALL=C sort)"
if [[ "$listed" == "$expected" ]]; then
  ok "vsce ls lists the bundle, package.json, README and licences, nothing else"
else
  not_ok "vsce ls lists the bundle, package.json, README and licences, nothing else" \
    "got: $(echo "$listed" | tr '\n' ' ')"
fi
archived="$(python3 - "$vsix" <<'PY' 2>&1
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
print("\n".join(sorted(names)))
PY
)"
junk="$(echo "$archived" | grep -E '(^|/)(node_modules|src|test|out)/|\.map$|\.ts$|tsconfig|package-lock' || true)"
if echo "$archived" | grep -qx 'extension/dist/extension.js' &&
  echo "$archived" | grep -qix 'extension/LICENSE.txt' &&
  echo "$archived" | grep -qix 'extension/readme.md' && [[ -z "$junk" ]]; then
  ok "the .vsix holds extension/dist/extension.js, the README and the licence, and no junk"
else
  not_ok "the .vsix holds extension/dist/extension.js, the README and the licence, and no junk" \
    "contents: $(echo "$archived" | tr '\n' ' ')"
fi

# The bundle must run without node_modules: load it from a folder that has none.
bundle_dir="$out/bundle"
mkdir -p "$bundle_dir"
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$vsix" "$bundle_dir"
if loaded="$(cd "$bundle_dir" && NODE_PATH="$dir/test/fake-vscode" node -e '
  const ext = require("./extension/dist/extension.js");
  if (typeof ext.activate !== "function" || typeof ext.deactivate !== "function") {
    throw new Error("the bundle exports no activate/deactivate");
  }
  console.log("exports: " + Object.keys(ext).sort().join(", "));
' 2>&1)"; then
  ok "the packaged bundle loads without node_modules ($loaded)"
else
  not_ok "the packaged bundle loads without node_modules" "$loaded"
fi
finish
