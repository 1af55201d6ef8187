#!/usr/bin/env bash
# Quick start, part 1: set up .venv if needed, then run the main job.
# Extra arguments go to `tvm-wasm demo` (e.g. ./run.sh --budget 64K).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
EXTRAS=""
STAMP_KIND="run"
source scripts/setup-venv.sh
exec .venv/bin/tvm-wasm demo "$@"
