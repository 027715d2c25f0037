#!/usr/bin/env bash
# The main job on the bundled example: build, launch and live-patch examples/counter.
# Edit examples/counter/src/main.rs (e.g. the greeting) and save: the running app changes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec hotline run examples/counter
