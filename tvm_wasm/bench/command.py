"""The ``tvm-wasm bench`` subcommand: the benchmark matrix (the project's main job),
``bench compare`` (regression check) and ``bench --micro``."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from ..cli_support import EXIT_FAILURE, EXIT_USAGE, PROG, U64_MAX, byte_size, fail, number

DEFAULT_DIR = Path("results")
PIPED_WIDTH = 200  # columns of the tables when stdout is not a terminal (rich would wrap them at 80)


def report_console() -> Console:
    """The console the reports print on: the terminal's width, or ``PIPED_WIDTH`` when piped or redirected.

    ``COLUMNS`` still wins, as rich documents; tables keep their natural
    width up to the limit, so a log or ``| less`` shows each row on one line.
    """
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=PIPED_WIDTH)
    return console


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def register(commands: Any) -> None:
    """Add ``bench`` to the ``tvm-wasm`` command line."""
    sub = commands.add_parser(
        "bench",
        help="run the benchmark matrix (TVM vs m32/m64 across workload classes), or compare two runs",
        description=(
            "Measure every workload class under every memory model (m32, m32-checked, m64, tvm, tvm-bulk, "
            "tvm-mm, guest, native; tvm-inline and guest-inline, the linked variants, when named in "
            "--variants) side by side, check every answer, print the issues' targets met and missed, and write "
            "a JSON file, a Markdown report and a PNG plot. 'bench compare BASE.json NEW.json' exits 1 when a tvm* or guest row "
            "got slower than --threshold allows. '--micro' runs the host data-plane micro-benchmarks."
        ),
    )
    sub.add_argument("action", nargs="?", choices=["compare", "guests", "checkpoints"],
                     help="compare BASE.json NEW.json; guests: the compiled C guests (plain vs handles vs paged); "
                          "checkpoints: dirty tracking on vs off, incremental checkpoint vs full copy, game rollback loop")
    sub.add_argument("files", nargs="*", type=Path, help=argparse.SUPPRESS)
    sub.add_argument("--quick", action="store_true",
                     help="the whole matrix at reduced sizes and samples (under 2 minutes on 2 cores)")
    sub.add_argument("--classes", type=_csv, metavar="LIST", help="comma-separated classes (default: all)")
    sub.add_argument("--sizes", type=_csv, metavar="LIST", help="comma-separated sizes such as 1K,16K,256K,16M "
                     "(default: 1K,16K,256K,16M; --quick: 1K,16K,256K)")
    sub.add_argument("--variants", type=_csv, metavar="LIST", help="comma-separated variants (default: all but the linked "
                     "tvm-inline and guest-inline, which link each kernel with Binaryen first)")
    sub.add_argument("--engines", type=_csv, metavar="LIST", help="comma-separated engines: wasmtime,v8,wamr "
                     "(default: wasmtime)")
    sub.add_argument("--json", type=Path, metavar="PATH", help="write the rows here (default: DIR/bench.json)")
    sub.add_argument("--report", type=Path, metavar="DIR",
                     help=f"write report.md and bench.png here (default: {DEFAULT_DIR}/; a slice chosen with "
                          f"--classes/--sizes/--variants/--engines: {DEFAULT_DIR}/slices/<slice>/)")
    sub.add_argument("--samples", type=number(1, 1_000_000, what="sample count"), metavar="N", help="timed samples per row (default 24, quick 8; micro 7)")
    sub.add_argument("--seed", type=number(0, U64_MAX, what="seed"), metavar="N", help="data and order seed (default 0xDEADBEEF)")
    sub.add_argument("--layouts", type=number(1, 12, what="layout count"), metavar="N",
                     help="code layouts per wasm variant (default 8, quick 4; see THREATS.md)")
    sub.add_argument("--threshold", type=number(0, 1e6, real=True, what="ratio"), default=None, metavar="X",
                     help="compare: a row regressed when NEW/BASE mean exceeds X (default 1.25)")
    sub.add_argument("--micro", action="store_true", help="host data-plane micro-benchmarks")
    sub.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "compare":
        return _compare(args)
    if args.action == "guests":
        return _guests(args)
    if args.action == "checkpoints":
        return _checkpoints(args)
    if args.files:
        return fail(f"unexpected arguments: {' '.join(map(str, args.files))}", EXIT_USAGE)
    if args.micro:
        return _micro(args)
    return _matrix(args)


#: The options that run a slice of the matrix (what ``./run.sh --classes ...`` passes through).
SLICE_OPTIONS = ("classes", "sizes", "variants", "engines")


def matrix_dir(args: argparse.Namespace) -> Path:
    """Where a matrix run writes when ``--report``/``--json`` are not given: ``results/`` for the whole matrix,
    ``results/slices/<slice>/`` for a slice (``classes-sequential_sum_sizes-1K``), so a slice never overwrites
    the whole matrix's results, nor another slice's."""
    parts = [f"{name}-{'+'.join(values)}" for name in SLICE_OPTIONS if (values := getattr(args, name, None))]
    if not parts:
        return DEFAULT_DIR
    slug = re.sub(r"[^A-Za-z0-9_.+-]", "_", "_".join(parts))[:120]
    return DEFAULT_DIR / "slices" / slug


def _micro(args: argparse.Namespace) -> int:
    from .micro import (
        run_micro,  # imported late: compiling the runtime stays off --help
    )
    from .report import render_micro

    samples = 7 if args.samples is None else args.samples
    if samples < 1:
        return fail("--samples must be at least 1", EXIT_USAGE)
    console = report_console()
    with console.status("measuring...") as status:
        rows = run_micro(samples=samples, progress=lambda name: status.update(f"measuring {name}"))
    render_micro(rows, console)
    return 0


def _guests(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from ..sdk.clang import ToolchainMissing
    from .guests import GuestsConfig, render_guests, rows_json, run_guests

    if args.files:
        return fail(f"unexpected arguments: {' '.join(map(str, args.files))}", EXIT_USAGE)
    if args.samples is not None and args.samples < 2:
        return fail("--samples must be at least 2", EXIT_USAGE)
    cfg = _section_config(args, GuestsConfig)
    console = report_console()
    command = _section_command("guests")
    try:
        with console.status("building...") as status:
            outcome = run_guests(cfg, progress=status.update)
    except ToolchainMissing as exc:
        return fail(f"cannot build the C guests: {exc}", EXIT_FAILURE)
    except AssertionError as exc:
        return fail(f"wrong answer: {exc}", EXIT_FAILURE)
    rows = outcome.rows
    render_guests(rows, console, command)
    load = _print_load(console, "(a loaded machine widens the spread; the samples are interleaved, so it hits "
                                "every variant)")
    for deployment, why in outcome.unavailable.items():
        console.print(f"not measured on {deployment}: {why}", markup=False, soft_wrap=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": command, "config": dataclasses.asdict(cfg),
                                         "load_average": load, "rows": rows_json(rows),
                                         "unavailable": outcome.unavailable}, indent=1) + "\n")
        console.print(f"wrote {args.json}")
    return 0


def _section_config(args: argparse.Namespace, config: Any) -> Any:
    """A bench section's config (``config.quick()`` with ``--quick``), with ``--samples`` and ``--seed`` applied."""
    import dataclasses

    cfg = config.quick() if args.quick else config()
    if args.samples is not None:
        cfg = dataclasses.replace(cfg, samples=args.samples)
    if args.seed is not None:
        cfg = dataclasses.replace(cfg, seed=args.seed)
    return cfg


def _print_load(console: Any, note: str = "") -> tuple[float, float, float]:
    """Print the 1/5/15-minute load average beside a section's figures (a loaded machine widens spreads)."""
    load = os.getloadavg()
    console.print(f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} on {os.cpu_count()} CPUs"
                  + (f" {note}" if note else ""))
    return load


def _section_command(section: str) -> str:
    return " ".join([PROG, *map(shlex.quote, sys.argv[1:] if _invoked_as_cli() else ["bench", section])])


def _checkpoints(args: argparse.Namespace) -> int:
    import json

    from .checkpoints import CheckpointBenchConfig, render, run_checkpoint_bench

    if args.files:
        return fail(f"unexpected arguments: {' '.join(map(str, args.files))}", EXIT_USAGE)
    cfg = _section_config(args, CheckpointBenchConfig)
    console = report_console()
    command = _section_command("checkpoints")
    try:
        with console.status("measuring...") as status:
            result = run_checkpoint_bench(cfg, progress=status.update)
    except AssertionError as exc:
        return fail(f"wrong answer: {exc}", EXIT_FAILURE)
    missed = render(result, console, command)
    load = _print_load(console)
    console.print("targets: all met" if not missed else f"targets NOT met: {'; '.join(missed)}")
    json_path = args.json or (args.report or DEFAULT_DIR) / "checkpoints.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"command": command, "load_average": load, **result.as_json()}, indent=1) + "\n")
    console.print(f"wrote {json_path}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .compare import DEFAULT_THRESHOLD, compare

    if len(args.files) != 2:
        return fail("usage: bench compare BASE.json NEW.json [--threshold X]", EXIT_USAGE)
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if threshold <= 0:
        return fail("--threshold must be positive", EXIT_USAGE)
    for path in args.files:
        if not path.is_file():
            return fail(f"no such file: {path}", EXIT_USAGE)
    try:
        result = compare(args.files[0], args.files[1], threshold)
    except (ValueError, KeyError) as exc:
        return fail(f"cannot compare: {exc}", EXIT_USAGE)
    print(f"compared {len(result.compared)} tvm*/guest rows (threshold {threshold:g}x)")
    for key in result.missing:
        print(f"  not in NEW: {' '.join(map(str, key))}")
    for c in result.regressions:
        print(f"  REGRESSION {c.variant} {c.cls} {c.size_bytes} {c.engine}: {c.base_ns:.1f} ns -> {c.new_ns:.1f} ns "
              f"({c.ratio:.2f}x)")
    if result.regressions:
        print(f"{len(result.regressions)} row(s) slower than {threshold:g}x")
        return EXIT_FAILURE
    print("no regression")
    return 0


def _config(args: argparse.Namespace) -> Any:
    from .matrix import ALL_CLASSES, ENGINES, OPT_IN_VARIANTS, VARIANTS, Config

    overrides: dict[str, Any] = {}
    if args.classes:
        unknown = [c for c in args.classes if c not in ALL_CLASSES]
        if unknown:
            raise ValueError(f"unknown class(es) {', '.join(unknown)}; choose from {', '.join(ALL_CLASSES)}")
        overrides["classes"] = tuple(args.classes)
    if args.sizes:
        try:
            sizes = tuple(byte_size(s) for s in args.sizes)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(str(exc)) from None
        bad = [s for s in sizes if s < 64 or s > 256 << 20 or s & (s - 1)]
        if bad:
            raise ValueError(f"sizes must be powers of two from 64 B to 256 MiB, not {bad}")
        overrides["sizes"] = sizes
    if args.variants:
        unknown = [v for v in args.variants if v not in (*VARIANTS, *OPT_IN_VARIANTS)]
        if unknown:
            raise ValueError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join((*VARIANTS, *OPT_IN_VARIANTS))}")
        overrides["variants"] = tuple(args.variants)
    if args.engines:
        unknown = [e for e in args.engines if e not in ENGINES]
        if unknown:
            raise ValueError(f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
        overrides["engines"] = tuple(dict.fromkeys(["wasmtime", *args.engines]))
    if args.samples is not None:
        if args.samples < 2:
            raise ValueError("--samples must be at least 2 (a confidence interval needs two)")
        overrides["samples"] = args.samples
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.layouts is not None:
        if not 1 <= args.layouts <= 12:
            raise ValueError("--layouts must be between 1 and 12")
        overrides["layouts"] = args.layouts
    return Config.quick_config(**overrides) if args.quick else Config(**overrides)


def _matrix(args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from .machine import machine_info, package_versions
    from .matrix import planned_rows, run_matrix
    from .matrix_report import render_markdown, render_png, render_terminal
    from .results import RunInfo, write_json

    try:
        cfg = _config(args)
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    report_dir = args.report or matrix_dir(args)
    json_path = args.json or report_dir / "bench.json"
    console = report_console()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("starting", total=planned_rows(cfg))
        outcome = run_matrix(cfg, lambda text, done: bar.update(task, description=text[:60], completed=done))
    duration = float(outcome.engine_notes.pop("_duration_s", "0"))
    info = RunInfo(
        created=started,
        command=" ".join([PROG, *map(shlex.quote, sys.argv[1:] if _invoked_as_cli() else _argv(args))]),
        argv=list(sys.argv),
        config=cfg.describe(),
        machine=machine_info(),
        packages=package_versions(),
        engines=outcome.engine_notes,
        duration_s=duration,
    )
    rows = outcome.rows
    render_terminal(rows, console, info)
    write_json(json_path, info, rows)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.md").write_text(render_markdown(rows, info))
    render_png(rows, report_dir / "bench.png")
    console.print(f"wrote {json_path}, {report_dir / 'report.md'}, {report_dir / 'bench.png'} ({duration:.0f} s)")
    if outcome.failures:
        for failure in outcome.failures:
            console.print(f"[red]FAILED[/red] {failure}")
        return fail(f"{len(outcome.failures)} row(s) failed (wrong answer or error); see the report", EXIT_FAILURE)
    return 0


def _invoked_as_cli() -> bool:
    return len(sys.argv) > 1 and sys.argv[1] == "bench"


def _argv(args: argparse.Namespace) -> list[str]:
    """A command line equivalent to ``args`` (when called as a library, e.g. from tests)."""
    out = ["bench"]
    for flag in ("quick", "micro"):
        if getattr(args, flag):
            out.append(f"--{flag}")
    for flag in ("classes", "sizes", "variants", "engines"):
        value = getattr(args, flag)
        if value:
            out += [f"--{flag}", ",".join(value)]
    for flag in ("json", "report", "samples", "seed", "layouts"):
        value = getattr(args, flag)
        if value is not None:
            out += [f"--{flag}", str(value)]
    return out
