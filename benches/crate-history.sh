#!/usr/bin/env bash
# Builds a git repository whose history is the published versions of one crate, one commit per
# version, from the .crate archives in Cargo's cache — a large Rust history to run
# `conductor eval context` on without network access beyond the registry.
#
#   benches/crate-history.sh CRATE OUT_DIR VERSION...
#
# Fetch the versions first with the ordinary client, e.g. one throwaway project per version
# with `CRATE = { version = "=X.Y.Z", default-features = false }` and `cargo fetch`.
set -euo pipefail
crate=$1; out=$2; shift 2
cache=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/ | head -n1)
rm -rf "$out"; mkdir -p "$out"
git -C "$out" init -q
for version in "$@"; do
  archive="$cache/$crate-$version.crate"
  [ -f "$archive" ] || { echo "missing $archive (run cargo fetch for it)" >&2; exit 2; }
  find "$out" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
  tar -xzf "$archive" -C "$out" --strip-components=1
  git -C "$out" add -A
  git -C "$out" -c user.name=history -c user.email=history@localhost -c commit.gpgsign=false \
    commit -qm "$crate $version"
done
echo "$out: $(git -C "$out" rev-list --count HEAD) commits"
