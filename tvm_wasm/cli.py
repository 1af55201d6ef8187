"""The ``tvm-wasm`` command line.

This module only wires arguments to functions that live elsewhere (the demo
is :mod:`tvm_wasm.demo`), so each subcommand stays testable without a shell.
A new subcommand is one ``_add_<name>`` function registered in
:func:`build_parser` whose handler takes the parsed namespace and returns an
exit code. Every expected failure (a TvmError, an OSError, a bad argument)
becomes one ``tvm-wasm: error: ...`` line on stderr and a non-zero exit,
never a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console

from . import __version__, demo
from .core.errors import TvmError

PROG = "tvm-wasm"

#: Exit codes: 1 = the command failed, 2 = the command line was wrong.
EXIT_FAILURE = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A bad command line; raised instead of argparse's print-and-exit."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line (via UsageError), not usage + message."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


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


def build_parser() -> argparse.ArgumentParser:
    """The full parser; one ``_add_*`` call per subcommand."""
    parser = _Parser(
        prog=PROG,
        description=(
            "Tiered Virtual Memory for WebAssembly: typed regions behind "
            "generation-checked handles, moved between Hot/Warm/Cold/External tiers."
        ),
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    _add_demo(commands)
    _add_bench(commands)
    return parser


def _add_demo(commands: Any) -> None:
    sub = commands.add_parser(
        "demo",
        help="run an end-to-end demo of the memory model and verify every byte",
        description=(
            "Create regions of several kinds, fill them, spill to a file-backed store "
            "under a resident-byte budget, read everything back (faulting Cold regions "
            "in), compact a freelist region, and print region and metrics tables. "
            "Exits non-zero if any verification fails."
        ),
    )
    sub.add_argument(
        "--budget",
        type=byte_size,
        default=demo.DEFAULT_BUDGET,
        metavar="BYTES",
        help=f"resident bytes to demote down to (default {demo.DEFAULT_BUDGET}; accepts K/M/G)",
    )
    sub.add_argument(
        "--dir",
        type=Path,
        default=None,
        metavar="PATH",
        help="keep spilled copies in PATH (default: a temporary directory, removed afterwards)",
    )
    sub.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    result = demo.run_demo(budget=args.budget, directory=args.dir)
    demo.render_demo(result, Console(highlight=False))
    if not result.ok:
        return _fail(
            f"demo verification failed: {len(result.failed)} of {len(result.checks)} checks failed",
            EXIT_FAILURE,
        )
    return 0


def _add_bench(commands: Any) -> None:
    sub = commands.add_parser(
        "bench",
        help="run benchmarks (for now: --micro, the host data-plane micro-benchmarks)",
        description=(
            "Measure raw-ABI operations side by side with their native counterparts in one run "
            "and print the ratios. Timings are medians of calibrated samples (each sample one "
            "call running the kernel many times inside wasm; warm-up excluded)."
        ),
    )
    sub.add_argument("--micro", action="store_true", help="host data-plane micro-benchmarks")
    sub.add_argument("--samples", type=int, default=7, metavar="N", help="timed samples per row (default 7)")
    sub.set_defaults(handler=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from .bench.report import render_micro  # imported late: wasmtime compile work stays off --help
    from .bench.micro import run_micro

    if not args.micro:
        return _fail("only 'bench --micro' is available so far (the full matrix is not built yet)", EXIT_USAGE)
    if args.samples < 1:
        return _fail("--samples must be at least 1", EXIT_USAGE)
    console = Console(highlight=False)
    with console.status("measuring...") as status:
        rows = run_micro(samples=args.samples, progress=lambda name: status.update(f"measuring {name}"))
    render_micro(rows, console)
    return 0


def _fail(message: str, code: int) -> int:
    """Report one failure as a single stderr line and hand back the exit code."""
    one_line = " ".join(str(message).split())
    print(f"{PROG}: error: {one_line}", file=sys.stderr)
    return code


def _describe_os_error(exc: OSError) -> str:
    if exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {os.fsdecode(exc.filename)}"
    return str(exc) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _fail(f"{exc} (see '{PROG} --help')", EXIT_USAGE)
    except SystemExit as exc:  # --help and --version print, then exit 0
        return exc.code if isinstance(exc.code, int) else 0
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        return _fail(f"no command given (see '{PROG} --help')", EXIT_USAGE)
    try:
        return handler(args)
    except TvmError as exc:
        return _fail(f"{type(exc).__name__}: {exc}", EXIT_FAILURE)
    except BrokenPipeError:
        # The reader went away (e.g. piped into `head`): say nothing more, and
        # point stdout at /dev/null so the flush at exit cannot fail again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_FAILURE
    except OSError as exc:
        return _fail(_describe_os_error(exc), EXIT_FAILURE)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
