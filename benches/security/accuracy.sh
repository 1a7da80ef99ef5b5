#!/usr/bin/env bash
# Precision and recall of the security scan on the labelled corpus (benches/security/corpus/).
# Usage: benches/security/accuracy.sh [--misses] [--json]   (CONDUCTOR=path to use a given binary)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ -z "${CONDUCTOR:-}" ]; then
    echo "== building conductor (release)" >&2
    cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p conductor
    CONDUCTOR="$root/target/release/conductor"
fi
exec python3 "$here/accuracy.py" --conductor "$CONDUCTOR" --corpus "$here/corpus" "$@"
