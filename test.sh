#!/usr/bin/env bash
# Quick start, part 2: set up .venv (with test extras) if needed, then run the test suite.
# Extra arguments go to pytest (e.g. ./test.sh tests/test_cli.py -x).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
EXTRAS="[test]"
STAMP_KIND="test"
source scripts/setup-venv.sh
exec .venv/bin/python -m pytest "$@"
