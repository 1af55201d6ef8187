"""The ``tvm-wasm bench`` subcommand: arguments in, tables out."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from ..cli_support import EXIT_USAGE, fail


def register(commands: Any) -> None:
    """Add ``bench`` to the ``tvm-wasm`` command line."""
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
    sub.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .micro import run_micro  # imported late: compiling the runtime stays off --help
    from .report import render_micro

    if not args.micro:
        return fail("only 'bench --micro' is available so far (the full matrix is not built yet)", EXIT_USAGE)
    if args.samples < 1:
        return fail("--samples must be at least 1", EXIT_USAGE)
    console = Console(highlight=False)
    with console.status("measuring...") as status:
        rows = run_micro(samples=args.samples, progress=lambda name: status.update(f"measuring {name}"))
    render_micro(rows, console)
    return 0
