# Shared by the editor end-to-end scripts (run-neovim.sh, run-emacs.sh): finding or building the
# conductor binary, and making a scratch workspace. Source it after setting `repo` (the
# repository root) and `label` (the editor's name, which prefixes every message).

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
