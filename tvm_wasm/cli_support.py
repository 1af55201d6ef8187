"""What every ``tvm-wasm`` subcommand shares: exit codes, one-line errors, argument types."""

from __future__ import annotations

import argparse
import re
import sys

PROG = "tvm-wasm"

#: Exit codes: 1 = the command failed, 2 = the command line was wrong.
EXIT_FAILURE = 1
EXIT_USAGE = 2

_SIZE_RE = re.compile(r"(\d+)\s*(?:([kmg])i?b?|b)?", re.IGNORECASE)
_UNITS = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def byte_size(text: str) -> int:
    """Parse a byte count such as ``65536``, ``64K``, ``64KiB`` or ``1M`` (binary units)."""
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid byte count {text!r} (expected a non-negative size such as 65536, 64K or 1M)"
        )
    unit = match.group(2).lower() if match.group(2) else None
    return int(match.group(1)) * _UNITS[unit]


def fail(message: str, code: int) -> int:
    """Report one failure as a single stderr line and hand back the exit code."""
    one_line = " ".join(str(message).split())
    print(f"{PROG}: error: {one_line}", file=sys.stderr)
    return code
