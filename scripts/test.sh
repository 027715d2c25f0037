#!/usr/bin/env bash
# The whole test suite: lint, the runtime's own tests, and the live-process tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-nvim.sh
ruff check server tests bench
ruff format --check server tests bench
(cd runtime && cargo fmt --check && cargo clippy -q --all-targets -- -D warnings && cargo test -q)
python3 -m pytest -q tests
