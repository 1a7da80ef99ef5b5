#!/usr/bin/env bash
# End-to-end check of the real `conductor` binary under Neovim's built-in LSP client.
#
# Runs tests/editors/neovim/e2e.lua in headless Neovim, one scenario per Neovim process, on a
# scratch copy of examples/ (or a small crate made here when examples/ is absent), then checks
# from outside that no server process outlives its editor. Installs nothing: it needs `nvim`
# (or NVIM=/path/to/nvim) and builds the conductor binary with cargo unless CONDUCTOR_BIN is set.
#
# CONDUCTOR_E2E_SCENARIOS picks scenarios (default: all); CONDUCTOR_E2E_KEEP=1 keeps the scratch
# folder (Neovim's and the server's logs) for a look after a failure.
#
# Prints one line per check and closes with `neovim: N passed, M failed` (`, K skipped` follows
# when the server does not announce a capability a check needs); exits non-zero when
# anything failed or could not run.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
nvim="${NVIM:-nvim}"

if ! command -v "$nvim" >/dev/null 2>&1; then
  echo "neovim: '$nvim' not found. Install Neovim 0.7.2 or newer (Debian: apt-get install -y neovim)" >&2
  echo "or point NVIM at a binary. This script installs nothing by itself." >&2
  exit 2
fi
# Absolute, since each scenario runs Neovim from inside its workspace.
nvim="$(cd "$(dirname "$(command -v "$nvim")")" && pwd)/$(basename "$(command -v "$nvim")")"
nvim_version="$("$nvim" --version | head -n 1)"
if ! "$nvim" --headless -u NONE -i NONE -n -c 'if !has("nvim-0.7") | cquit 3 | endif' -c 'qa!' </dev/null >/dev/null 2>&1; then
  echo "neovim: $nvim_version is too old; the plugin and this test need Neovim 0.7 or newer" >&2
  exit 2
fi

label=neovim
# shellcheck source=tests/editors/common.sh
source "$repo/tests/editors/common.sh"
bin="$(conductor_binary)" || exit 2

scratch="$(mktemp -d "${TMPDIR:-/tmp}/conductor-nvim-e2e.XXXXXX")"
cleanup() {
  stop_model_server
  # Only our own processes: the Neovim we started in the background, if it is still there.
  if [[ -n "${bg_nvim:-}" ]] && kill -0 "$bg_nvim" 2>/dev/null; then
    kill -9 "$bg_nvim" 2>/dev/null
  fi
  if [[ -n "${CONDUCTOR_E2E_KEEP:-}" ]]; then
    echo "neovim: scratch files kept in $scratch" >&2
  else
    rm -rf "$scratch"
  fi
}
trap cleanup EXIT

results="$scratch/results"
: >"$results"
passed=0
failed=0
skipped=0

# Records a check made here in the shell, in the same format as e2e.lua's.
record() { # ok|fail scenario name [why]
  if [[ "$1" == ok ]]; then
    echo "ok $2: $3" >>"$results"
  else
    echo "not ok $2: $3: ${4:-}" >>"$results"
  fi
}

pid_gone_within() { # pid seconds
  local pid="$1" tries=$(($2 * 10))
  while ((tries > 0)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
    tries=$((tries - 1))
  done
  return 1
}

# Runs one scenario in a fresh Neovim; `orphan*` ones are killed from here instead of quitting.
run_scenario() { # scenario
  local scenario="$1"
  local home="$scratch/$scenario"
  local ws="$home/workspace"
  make_workspace "$ws"
  local ws_real
  ws_real="$(cd "$ws" && pwd -P)"
  local rel
  rel="$(rust_file "$ws_real")"
  if [[ -z "$rel" ]]; then
    record fail "$scenario" "the workspace has a Rust file" "none found under $ws_real"
    return
  fi
  if [[ "$scenario" == crlf ]]; then
    sed -i 's/$/\r/' "$ws_real/$rel"
  fi
  if [[ "$scenario" == security ]]; then
    # A file with one known finding (rust/tls-verification-disabled, CWE-295, line 5) and a
    # mechanical quick fix; its neighbours in the crate keep their own findings elsewhere.
    rel="src/e2e_tls.rs"
    mkdir -p "$ws_real/src"
    cat >"$ws_real/$rel" <<'RS'
//! A client for a partner whose certificate is self-signed.

pub fn partner_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
}
RS
  fi
  model_url=""
  if [[ "$scenario" == run || "$scenario" == cancel || "$scenario" == security ]]; then
    if [[ "$scenario" != security ]]; then
      rel="src/e2e_run.rs"
      mkdir -p "$ws_real/src"
      printf 'pub fn answer() -> u32 {\n    41\n}\n' >"$ws_real/$rel"
    fi
    start_model_server "$scenario" "$rel" "$home" || {
      record fail "$scenario" "the scripted model server starts" "see $home/model.err"
      cat "$home/model.err" >&2
      return
    }
  fi
  local pidfile="$home/pids"
  : >"$pidfile"
  local -a cmd=(
    "$nvim" --headless -u NONE -i NONE -n
    --cmd "set runtimepath^=$repo/editors/neovim"
    -c "luafile $repo/tests/editors/neovim/e2e.lua"
  )
  local -a vars=(
    XDG_CONFIG_HOME="$home/config" XDG_DATA_HOME="$home/data"
    XDG_STATE_HOME="$home/state" XDG_CACHE_HOME="$home/cache"
    CONDUCTOR_E2E_SCENARIO="$scenario" CONDUCTOR_E2E_BIN="$bin"
    CONDUCTOR_E2E_WORKSPACE="$ws_real" CONDUCTOR_E2E_FILE="$ws_real/$rel"
    CONDUCTOR_E2E_RESULTS="$results" CONDUCTOR_E2E_PIDFILE="$pidfile"
    CONDUCTOR_E2E_MODEL_URL="$model_url"
  )
  local log="$home/nvim.log"
  local before
  before="$(wc -l <"$results")"

  if [[ "$scenario" == orphan* ]]; then
    (cd "$ws_real" && exec env "${vars[@]}" "${cmd[@]}" </dev/null >"$log" 2>&1) &
    bg_nvim=$!
    local tries=200
    while [[ ! -s "$pidfile" ]] && ((tries > 0)) && kill -0 "$bg_nvim" 2>/dev/null; do
      sleep 0.1
      tries=$((tries - 1))
    done
    local server_pid
    server_pid="$(head -n 1 "$pidfile")"
    kill -9 "$bg_nvim" 2>/dev/null
    wait "$bg_nvim" 2>/dev/null
    bg_nvim=""
    if [[ -z "$server_pid" ]]; then
      record fail "$scenario" "the server exits when its editor is killed" "the server never started; see below"
      sed 's/^/    /' "$log" >&2
    elif pid_gone_within "$server_pid" 5; then
      record ok "$scenario" "the server exits within 5 s when its editor is killed (stdin closed)"
    else
      record fail "$scenario" "the server exits within 5 s when its editor is killed (stdin closed)" \
        "pid $server_pid still running"
      kill -9 "$server_pid" 2>/dev/null
    fi
    return
  fi

  local status=0
  (cd "$ws_real" && exec timeout 180 env "${vars[@]}" "${cmd[@]}" </dev/null >"$log" 2>&1) || status=$?
  local after
  after="$(wc -l <"$results")"
  if ((status != 0)) && ! grep -q '^not ok' <(tail -n +"$((before + 1))" "$results"); then
    record fail "$scenario" "Neovim ran the scenario to the end" "exit status $status; see below"
  fi
  if ((after == before)); then
    record fail "$scenario" "the scenario reported any result" "none; see below"
  fi
  if grep -q '^not ok' <(tail -n +"$((before + 1))" "$results") || ((status != 0)); then
    sed 's/^/    /' "$log" >&2
  fi
  local pid all_gone=1
  while read -r pid; do
    [[ -z "$pid" ]] && continue
    if ! pid_gone_within "$pid" 5; then
      all_gone=0
      record fail "$scenario" "no server process outlives :qa" "pid $pid still running"
      kill -9 "$pid" 2>/dev/null
    fi
  done <"$pidfile"
  if ((all_gone)) && [[ -s "$pidfile" ]]; then
    record ok "$scenario" "no server process outlives :qa ($(grep -c . "$pidfile") started)"
  fi
}

echo "neovim: $nvim_version, server $bin"
start=$SECONDS
# `enable`: Neovim 0.11+'s `vim.lsp.enable('conductor')` with editors/neovim/lsp/conductor.lua.
# `security`: a finding's diagnostic, hover and quick fix, and Fix with agents.
# `run` / `cancel`: a run from :ConductorGoal against the scripted model server, applied, or
# cancelled mid-way.
# `orphan-pending`: the editor dies while the server awaits its answer to a request; the
# server must still exit.
for scenario in ${CONDUCTOR_E2E_SCENARIOS:-utf8 utf16 noencoding crlf native enable security run cancel orphan orphan-pending}; do
  run_scenario "$scenario"
  stop_model_server
done

while read -r line; do
  echo "$line"
  case "$line" in
    "ok "*) passed=$((passed + 1)) ;;
    "not ok "*) failed=$((failed + 1)) ;;
    "skip "*) skipped=$((skipped + 1)) ;;
  esac
done <"$results"
echo "($((SECONDS - start)) s)"
if ((skipped > 0)); then
  echo "neovim: $passed passed, $failed failed, $skipped skipped"
else
  echo "neovim: $passed passed, $failed failed"
fi
if ((failed > 0 || passed == 0)); then
  exit 1
fi
