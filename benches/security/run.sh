#!/usr/bin/env bash
# Side-by-side security scan benchmark: Conductor against ast-grep and semgrep on real
# third-party Rust (this project's own vendored dependencies).
#
# Usage: benches/security/run.sh [--runs N]
# Everything it downloads or builds goes to benches/security/.scratch/ (gitignored), or to
# $CONDUCTOR_BENCH_SCRATCH when set. Peers come from PyPI through pip; the corpus from
# `cargo vendor`; nothing else leaves the machine, and the scans themselves run offline.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
scratch="${CONDUCTOR_BENCH_SCRATCH:-$here/.scratch}"
venv="$scratch/venv"
corpus="$scratch/corpus"
mkdir -p "$scratch"

if [ ! -x "$venv/bin/semgrep" ] || [ ! -x "$venv/bin/ast-grep" ]; then
    echo "== installing semgrep and ast-grep-cli into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check semgrep ast-grep-cli
fi

if [ ! -d "$corpus" ]; then
    echo "== vendoring the corpus (cargo vendor)" >&2
    rm -rf "$scratch/vendor"
    cargo vendor --quiet --versioned-dirs --manifest-path "$root/Cargo.toml" "$scratch/vendor" >/dev/null
    mkdir -p "$corpus"
    for crate in "$scratch/vendor"/*/; do
        name="$(basename "$crate")"
        # Machine-generated platform bindings (hundreds of thousands of lines of extern
        # declarations) are left out: they are not code anyone reviews.
        case "$name" in
            windows-sys-*|windows_*|windows-targets-*|web-sys-*|js-sys-*|winapi-*|linux-raw-sys-*) continue ;;
        esac
        cp -R "$crate" "$corpus/$name"
    done
    # Vendored crates bring their own ignore files; drop them so every tool sees every file.
    find "$corpus" \( -name .gitignore -o -name .ignore \) -delete
fi

echo "== building conductor (release)" >&2
cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p conductor

"$venv/bin/python" "$here/bench.py" \
    --conductor "$root/target/release/conductor" \
    --ast-grep "$venv/bin/ast-grep" \
    --semgrep "$venv/bin/semgrep" \
    --rules "$here" \
    --corpus "$corpus" \
    --out "$scratch" \
    "$@"
