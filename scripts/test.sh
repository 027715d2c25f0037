#!/usr/bin/env bash
# The whole test suite: lint, the runtime's own tests, and the live-process tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-nvim.sh
bash scripts/setup-vscode.sh
(cd vscode-extension && npm run -s lint && npm test)
ruff check server tests bench
ruff format --check server tests bench
(cd runtime && cargo fmt --check && cargo clippy -q --all-targets -- -D warnings && cargo test -q)
(cd runtime/inject && cargo fmt --check && cargo clippy -q -- -D warnings)
HOTLINE_REQUIRE_VSCODE=1 HOTLINE_REQUIRE_NVIM=1 python3 -m pytest -q -n 3 --dist loadgroup --durations=25 tests
