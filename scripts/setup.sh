#!/usr/bin/env bash
# Installs what Hotline and its tests need on a fresh Debian machine with Rust and Python 3.11+.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup (https://rustup.rs)" >&2; exit 1; }
missing=""
command -v cc >/dev/null || missing="$missing build-essential"
command -v tmux >/dev/null || missing="$missing tmux"   # the terminal-UI test drives a real terminal
command -v gdb >/dev/null || missing="$missing gdb"      # tests attach gdb to patched apps (test_debuggable.py)
command -v addr2line >/dev/null || missing="$missing binutils"
[ -z "$missing" ] || { apt-get update -qq && apt-get install -y -qq $missing; }
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
