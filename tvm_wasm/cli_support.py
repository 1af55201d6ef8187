"""What every ``tvm-wasm`` subcommand shares: exit codes, one-line errors, argument types.

Numbers on the command line go through one parser, :func:`number`, built with
the limits of the API the option feeds (``number(1, 64)`` for a pool count,
``number(0, U64_MAX, units=True)`` for a byte budget), so an out-of-range value
is a one-line usage error (exit 2) before anything runs, never a traceback
from deep inside the API. Use it as an argparse ``type``::

    sub.add_argument("--pools", type=number(1, 64, what="pool count"))
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable

PROG = "tvm-wasm"

#: Exit codes of every subcommand (README, "Exit codes"): 0 done; 1 the command failed (a typed
#: ``TvmError``, a wasm trap, a module that is malformed, refused or cannot be instantiated, a file that
#: cannot be written, a failed verification or a regression found by ``bench compare``); 2 the command
#: line was wrong (an unknown option or command, a bad value, an input file or directory that does not
#: exist, an export ``--invoke`` cannot call); 130 interrupted. ``run`` otherwise exits with the
#: program's own ``proc_exit`` status. Each failure is one ``tvm-wasm: error: ...`` line on stderr.
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Pools of a self-contained module when the command line does not say (`guest build`, `link`):
# up to 16 GiB of regions in 4 GiB memories.
DEFAULT_POOLS = 4

U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1

_INT_RE = re.compile(r"[+]?(\d+)")
_SIZE_RE = re.compile(r"[+]?(\d+)\s*(?:([kmg])i?b?|b)?", re.IGNORECASE)
_UNITS = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _render(value: int | float) -> str:
    """Limits as people write them: 2**64-1 rather than twenty digits."""
    if isinstance(value, int) and value >= 1 << 20:
        for bits in (64, 32):
            if value == (1 << bits) - 1:
                return f"2**{bits}-1"
        if value & (value - 1) == 0:
            return f"2**{value.bit_length() - 1}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def number(
    minimum: int | float,
    maximum: int | float,
    *,
    units: bool = False,
    real: bool = False,
    what: str = "",
) -> Callable[[str], int | float]:
    """An argparse ``type`` accepting one number in ``[minimum, maximum]``.

    ``units`` allows binary size suffixes (``64K``, ``1MiB``, ``2G``);
    ``real`` parses a finite float instead of an integer. A malformed or
    out-of-range value raises ``argparse.ArgumentTypeError`` naming the
    limits, which the command line turns into ``tvm-wasm: error: argument
    --x: ...`` and exit code 2.
    """
    if minimum > maximum:
        raise ValueError(f"empty range {minimum}..{maximum}")
    noun = what or ("byte count" if units else "number" if real else "integer")
    expected = f"a {noun} in {_render(minimum)}..{_render(maximum)}"
    if units:
        expected += "; units K, M, G allowed"

    def parse(text: str) -> int | float:
        value: int | float | None
        if real:
            try:
                value = float(text)
            except ValueError:
                value = None
            if value is not None and not math.isfinite(value):
                value = None
        else:
            pattern = _SIZE_RE if units else _INT_RE
            match = pattern.fullmatch(text.strip())
            if match is None:
                value = None
            else:
                unit = match.group(2).lower() if units and match.group(2) else None
                value = int(match.group(1)) * _UNITS[unit]
        if value is None:
            raise argparse.ArgumentTypeError(f"invalid {noun} {text!r} (expected {expected})")
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{noun} {text!r} is out of range (expected {expected})")
        return value

    parse.__name__ = noun.replace(" ", "_")  # what argparse calls the type in its own messages
    parse.limits = (minimum, maximum)  # type: ignore[attr-defined]  # for tests and help texts
    parse.units = units  # type: ignore[attr-defined]
    return parse


#: Byte counts up to what a u64 holds (the API's budgets and targets).
byte_size = number(0, U64_MAX, units=True)


def fail(message: str, code: int) -> int:
    """Report one failure as a single stderr line and hand back the exit code."""
    one_line = " ".join(str(message).split())
    print(f"{PROG}: error: {one_line}", file=sys.stderr)
    return code


def refused(exc: BaseException, path: object) -> str:
    """A refusal of the module in ``path`` as every subcommand words it: the class name first, as every
    other typed error (``LinkRefused: user.wasm: import tvm.bridge: ...``), then the file."""
    return f"{type(exc).__name__}: {path}: {exc}"
