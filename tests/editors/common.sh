# Shared by the editor end-to-end scripts (run-neovim.sh, run-emacs.sh): finding or building the
# conductor binary, making a scratch workspace, and the scripted model server for runs. Source
# it after setting `repo` (the repository root) and `label` (the editor's name, which prefixes
# every message).

# Prints the absolute path of the conductor binary: $CONDUCTOR_BIN, or a debug build made now.
# Returns 2 when there is none to be had (call it as `bin="$(conductor_binary)" || exit 2`).
conductor_binary() {
  local bin="${CONDUCTOR_BIN:-}"
  if [[ -z "$bin" ]]; then
    if ! (cd "$repo" && cargo build --quiet --locked --bin conductor >&2); then
      echo "$label: building the conductor binary failed" >&2
      return 2
    fi
    bin="${CARGO_TARGET_DIR:-$repo/target}/debug/conductor"
  fi
  if [[ ! -x "$bin" ]]; then
    echo "$label: conductor binary '$bin' is not executable" >&2
    return 2
  fi
  echo "$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
}

# A fresh workspace in DIR: a copy of examples/ when the repository has one, else a small crate.
# It is made its own version-control root, so clients that look for one stop there rather
# than at an outer repository.
make_workspace() { # dir
  local dir="$1"
  if [[ -d "$repo/examples" ]] && compgen -G "$repo/examples/*" >/dev/null; then
    mkdir -p "$dir"
    cp -R "$repo/examples/." "$dir/"
  else
    mkdir -p "$dir/src"
    cat >"$dir/Cargo.toml" <<'TOML'
[package]
name = "e2e-crate"
version = "0.1.0"
edition = "2021"
TOML
    cat >"$dir/src/lib.rs" <<'RS'
//! A crate made by the editor end-to-end tests.

/// Greets someone, in more than one script: "héllo", "你好", "👋".
pub fn greet(name: &str) -> String {
    format!("héllo 你好 👋 {name}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn greets() {
        assert!(super::greet("ö").ends_with('ö'));
    }
}
RS
  fi
  git -C "$dir" init -q 2>/dev/null || mkdir -p "$dir/.git"
}

# The Rust file to edit: the first source file of the workspace DIR, in a stable order.
rust_file() { # dir
  (cd "$1" && find . -name '*.rs' -not -path './target/*' | LC_ALL=C sort | head -n 1 | sed 's|^\./||')
}

# The scripted model server of the run checks (server/examples/model_server.rs): a planner
# reply targeting FILE and a coder reply turning `41` into `42` with its decision; with the
# scenario `cancel` the planner answers only after 60 s, so the run is still planning when
# it is cancelled; with `security` the coder removes the `danger_accept_invalid_certs(true)`
# call of FILE (Fix with agents).
# Sets `model_url` to its base URL; it runs until stop_model_server closes its input. Not to be
# called in a subshell: the server's input is a descriptor of this shell.
model_server_bin=""
start_model_server() { # scenario file home
  local scenario="$1" file="$2" home="$3"
  if [[ -z "$model_server_bin" ]]; then
    model_server_bin="${CONDUCTOR_MODEL_SERVER:-}"
    if [[ -z "$model_server_bin" ]]; then
      (cd "$repo" && cargo build --quiet --locked --example model_server >&2) || return 1
      model_server_bin="${CARGO_TARGET_DIR:-$repo/target}/debug/examples/model_server"
    fi
  fi
  local latency=0
  [[ "$scenario" == cancel ]] && latency=60000
  python3 - "$file" "$latency" "$scenario" >"$home/model.json" <<'PY' || return 1
import json, sys
file, latency, scenario = sys.argv[1], int(sys.argv[2]), sys.argv[3]
plan = {"summary": "Return 42.", "steps": [{"id": "s1", "title": "Return 42", "agent": "coder",
        "targets": [file], "depends_on": []}], "risks": [], "tradeoffs": []}
decisions = {"decisions": [{"block": 1, "summary": "return 42", "rationale": "the goal asks for 42",
             "alternatives": ["a named constant"], "tradeoffs": ["a literal explains less"]}]}
coder = f"{file}\n<<<<<<< SEARCH\n    41\n=======\n    42\n>>>>>>> REPLACE\n```json\n{json.dumps(decisions)}\n```\n"
if scenario == "security":
    # Fix with agents: no plan, the coder removes the call that disables verification.
    decisions["decisions"][0].update(summary="remove the call", rationale="verification must stay on")
    coder = (f"{file}\n<<<<<<< SEARCH\n        .danger_accept_invalid_certs(true)\n        .build()\n"
             f"=======\n        .build()\n>>>>>>> REPLACE\n```json\n{json.dumps(decisions)}\n```\n")
print(json.dumps({"replies": [
    {"agent": "planner", "text": f"```json\n{json.dumps(plan)}\n```\n", "latency_ms": latency},
    {"agent": "coder", "text": coder},
]}))
PY
  rm -f "$home/model.in"
  mkfifo "$home/model.in" || return 1
  "$model_server_bin" "$home/model.json" <"$home/model.in" >"$home/model.out" 2>"$home/model.err" &
  model_server_pid=$!
  # Holding the fifo open for writing keeps the server's input open until we close it.
  exec {model_server_fd}>"$home/model.in"
  local tries=100
  while [[ ! -s "$home/model.out" ]] && ((tries > 0)) && kill -0 "$model_server_pid" 2>/dev/null; do
    sleep 0.1
    tries=$((tries - 1))
  done
  [[ -s "$home/model.out" ]] || return 1
  model_url="$(head -n 1 "$home/model.out")"
}
stop_model_server() {
  if [[ -n "${model_server_fd:-}" ]]; then
    exec {model_server_fd}>&-
    model_server_fd=""
  fi
  if [[ -n "${model_server_pid:-}" ]]; then
    local tries=50
    while kill -0 "$model_server_pid" 2>/dev/null && ((tries > 0)); do
      sleep 0.1
      tries=$((tries - 1))
    done
    # Only the server this shell started, by its pid.
    kill -9 "$model_server_pid" 2>/dev/null
    wait "$model_server_pid" 2>/dev/null
    model_server_pid=""
  fi
}
