#!/usr/bin/env bash
# Quick start, part 1: set up .venv if needed, then run the main job: the benchmark
# matrix in quick mode (JSON, Markdown report and PNG plot land in results/).
# Extra arguments go to `tvm-wasm bench --quick` (e.g. ./run.sh --classes sequential_sum).
# A slice (--classes/--sizes/--variants/--engines) writes to results/slices/<slice>/
# (e.g. results/slices/classes-sequential_sum/), never over the whole matrix's results/;
# --report DIR / --json PATH choose the place yourself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
EXTRAS=""
STAMP_KIND="run"
source scripts/setup-venv.sh
exec .venv/bin/tvm-wasm bench --quick "$@"
