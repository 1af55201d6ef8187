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
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console

from . import __version__, demo
from .cli_support import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, PROG, byte_size, fail
from .bench import command as bench_command
from .guest import command as guest_command
from .host import command as run_command
from .templates import command as template_command
from .sdk import command as sdk_command
from .linker import command as link_command
from .core.errors import TvmError

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A bad command line; raised instead of argparse's print-and-exit."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line (via UsageError), not usage + message."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


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
    bench_command.register(commands)
    guest_command.register(commands)
    run_command.register(commands)
    template_command.register(commands)
    sdk_command.register(commands)
    link_command.register(commands)
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
        return fail(
            f"demo verification failed: {len(result.failed)} of {len(result.checks)} checks failed",
            EXIT_FAILURE,
        )
    return 0


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
        return fail(f"{exc} (see '{PROG} --help')", EXIT_USAGE)
    except SystemExit as exc:  # --help and --version print, then exit 0
        return exc.code if isinstance(exc.code, int) else 0
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        return fail(f"no command given (see '{PROG} --help')", EXIT_USAGE)
    try:
        return handler(args)
    except TvmError as exc:
        return fail(f"{type(exc).__name__}: {exc}", EXIT_FAILURE)
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
        return fail(_describe_os_error(exc), EXIT_FAILURE)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
