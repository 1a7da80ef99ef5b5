#!/usr/bin/env bash
# End-to-end check of the real `conductor` binary under Emacs's eglot client.
#
# Runs tests/editors/emacs/e2e.el in `emacs --batch` on a scratch crate (a copy of examples/
# when the repository has one). Installs nothing: it needs `emacs` 28+ with eglot (Debian:
# apt-get install -y emacs-nox elpa-eglot; built in from Emacs 29), and builds the conductor
# binary with cargo unless CONDUCTOR_BIN is set. CONDUCTOR_E2E_KEEP=1 keeps the scratch folder.
#
# Prints one line per check and closes with `emacs: N passed, M failed`; exits non-zero when
# anything failed or could not run.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
emacs="${EMACS:-emacs}"

if ! command -v "$emacs" >/dev/null 2>&1; then
  echo "emacs: '$emacs' not found. Install Emacs 28+ with eglot (Debian: apt-get install -y emacs-nox elpa-eglot)" >&2
  echo "or point EMACS at a binary. This script installs nothing by itself." >&2
  exit 2
fi
probe='(progn (dolist (d (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa/*")) (add-to-list (quote load-path) d)) (require (quote eglot)))'
if ! "$emacs" --batch -Q --eval "$probe" >/dev/null 2>&1; then
  echo "emacs: $("$emacs" --version | head -n 1) has no eglot (Debian: apt-get install -y elpa-eglot)" >&2
  exit 2
fi
emacs_version="$("$emacs" --version | head -n 1)"

label=emacs
# shellcheck source=tests/editors/common.sh
source "$repo/tests/editors/common.sh"
bin="$(conductor_binary)" || exit 2

scratch="$(mktemp -d "${TMPDIR:-/tmp}/conductor-emacs-e2e.XXXXXX")"
cleanup() {
  stop_model_server
  if [[ -n "${CONDUCTOR_E2E_KEEP:-}" ]]; then
    echo "emacs: scratch files kept in $scratch" >&2
  else
    rm -rf "$scratch"
  fi
}
trap cleanup EXIT

ws="$scratch/workspace"
make_workspace "$ws"
rel="$(rust_file "$ws")"
results="$scratch/results"
: >"$results"
# The run check: a file whose `41` the scripted model server's coder turns into `42`.
run_rel="src/e2e_run.rs"
mkdir -p "$ws/src"
printf 'pub fn answer() -> u32 {\n    41\n}\n' >"$ws/$run_rel"
model_url=""
if ! start_model_server run "$run_rel" "$scratch"; then
  echo "emacs: the scripted model server did not start; the run check will fail" >&2
  cat "$scratch/model.err" >&2
fi

echo "emacs: $emacs_version, server $bin"
start=$SECONDS
status=0
(cd "$ws" && HOME="$scratch/home" CONDUCTOR_E2E_BIN="$bin" CONDUCTOR_E2E_FILE="$ws/$rel" \
  CONDUCTOR_E2E_RESULTS="$results" CONDUCTOR_E2E_RUN_FILE="$ws/$run_rel" \
  CONDUCTOR_E2E_MODEL_URL="$model_url" timeout 180 "$emacs" --batch -Q \
  -l "$repo/tests/editors/emacs/e2e.el" </dev/null >"$scratch/emacs.log" 2>&1) || status=$?

stop_model_server
passed=$(grep -c '^ok ' "$results")
failed=$(grep -c '^not ok ' "$results")
skipped=$(grep -c '^skip ' "$results")
if ((status != 0 && failed == 0)); then
  echo "not ok emacs: Emacs ran the test to the end: exit status $status" >>"$results"
  failed=$((failed + 1))
fi
cat "$results"
if ((failed > 0)); then
  sed 's/^/    /' "$scratch/emacs.log" >&2
fi
echo "($((SECONDS - start)) s)"
if ((skipped > 0)); then
  echo "emacs: $passed passed, $failed failed, $skipped skipped"
else
  echo "emacs: $passed passed, $failed failed"
fi
((failed == 0 && passed > 0))
