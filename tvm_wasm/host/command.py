"""The ``tvm-wasm run`` subcommand: run a guest on ``TvmHost``, as ``wasmtime run`` runs a module.

``tvm-wasm run GUEST.wasm [ARGS...]`` runs a WASI preview1 command (``_start``)
with the ``tvm`` imports served by the host; ``--invoke NAME [VALUES...]``
calls one export of a library module and prints its results, one per line.
The exit status is the program's ``proc_exit`` code; a trap prints one line
naming the error and exits 1; a bad command line exits 2; Ctrl-C stops the
guest even inside a wasm loop (epoch interruption, :mod:`.interrupt`) and exits 130.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cli_support import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, byte_size, fail, number, refused

if TYPE_CHECKING:
    import wasmtime

    from .tvm_host import TvmHost


def register(commands: Any) -> None:
    """Add ``run`` to the ``tvm-wasm`` command line."""
    sub = commands.add_parser(
        "run",
        help="run a WASI command (or --invoke an export) with the tvm imports served by TvmHost",
        description=(
            "Run GUEST.wasm on TvmHost like 'wasmtime run': a WASI preview1 command gets ARGS as its "
            "arguments (argv[0] is the file name) and its proc_exit code becomes the exit status; with "
            "--invoke NAME the export NAME of a library module is called with VALUES and its results are "
            "printed one per line. A trap prints one line naming the error and exits 1; a bad command "
            "line exits 2. Options go before GUEST.wasm; everything after it belongs to the guest."
        ),
    )
    sub.add_argument("--invoke", metavar="NAME", help="call this export with VALUES instead of running _start")
    sub.add_argument("--pools", type=number(1, 64, what="pool count"), default=None, metavar="N", help="pool memories of the host (default 4)")
    sub.add_argument("--budget", type=byte_size, default=None, metavar="SIZE",
                     help="resident-byte budget (accepts K/M/G); regions beyond it spill (needs --spill-dir)")
    sub.add_argument("--spill-dir", type=Path, default=None, metavar="DIR",
                     help="spill regions to files in DIR (a FileBackingStore); without it spilling is off")
    sub.add_argument("--inline", action="store_true",
                     help="link GUEST.wasm with the data plane inlined first (TvmHost.instantiate(..., inline=True); "
                          "needs Binaryen), then run it the same way")
    sub.add_argument("--strict", action="store_true", help="an access to a Cold region fails instead of faulting it in")
    sub.add_argument("--dir", action="append", default=[], metavar="HOST[::GUEST]",
                     help="preopen the host directory HOST for the guest (as GUEST); repeatable")
    sub.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                     help="set an environment variable for the guest; repeatable")
    sub.add_argument("--stats", action="store_true", help="print the region and metrics tables at exit (stderr)")
    sub.add_argument("--stats-json", type=Path, default=None, metavar="PATH",
                     help="write the regions, their metrics and the exit status as JSON to PATH at exit")
    sub.add_argument("guest", type=Path, metavar="GUEST.wasm", help="the module to run")
    sub.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                     help="the command's arguments, or the --invoke export's values")
    sub.set_defaults(handler=run)


class _Usage(Exception):
    """A bad command line, found after parsing (exit 2)."""


def run(args: argparse.Namespace) -> int:
    import wasmtime

    from ..core.errors import TvmError
    from ..core.file_backing import FileBackingStore
    from ..runtime.core_module import check_pool_count
    from ..runtime.link_errors import LinkRefused
    from .interrupt import Interrupted, sigint_interrupts
    from .tvm_host import DEFAULT_POOLS, TvmHost
    from .wasi import COMMAND_ENTRY, parse_dir, parse_env, trap_summary, wasi_config

    try:
        pools = DEFAULT_POOLS if args.pools is None else args.pools
        check_pool_count(pools)
        dirs = [parse_dir(text) for text in args.dir]
        env = [parse_env(text) for text in args.env]
        config = wasi_config([args.guest.name, *([] if args.invoke is not None else args.args)], env=env, dirs=dirs)
        if args.budget is not None and args.spill_dir is None:
            print("tvm-wasm: note: --budget without --spill-dir: regions cannot spill, so a region "
                  "beyond the budget fails to be created", file=sys.stderr)
        try:
            wasm = args.guest.read_bytes()
        except OSError as exc:
            raise _Usage(f"cannot read {args.guest}: {exc.strerror or exc}") from None
        backing = FileBackingStore(args.spill_dir) if args.spill_dir is not None else None
        host = TvmHost(backing=backing, strict=args.strict, budget_bytes=args.budget, pools=pools, interruptible=True)
        try:
            module = wasmtime.Module(host.engine, wasm)
        except wasmtime.WasmtimeError as exc:
            return fail(f"{args.guest} is not a valid wasm module: {exc}", EXIT_FAILURE)
        if args.invoke is None and not any(e.name == COMMAND_ENTRY for e in module.exports):
            raise _Usage(f"{args.guest} is not a WASI command (it exports no {COMMAND_ENTRY}); "
                         "call one of its exports with --invoke NAME")
        values = _invoke_values(module, args.invoke, args.args) if args.invoke is not None else []
    except (ValueError, _Usage) as exc:
        return fail(str(exc), EXIT_USAGE)

    error: str | None = None
    try:
        guest = wasm if args.inline else module  # inline: the host links the bytes itself
        with sigint_interrupts(host.engine):  # Ctrl-C reaches wasm that never returns to Python
            if args.invoke is None:
                status = host.run_command(guest, wasi=config, inline=args.inline)
            else:
                instance = host.instantiate(guest, wasi=config, inline=args.inline)
                results = host.call(instance, args.invoke, *values)
                _print_results(results)
                status = 0
    except wasmtime.ExitTrap as exit_:  # proc_exit from --invoke or a reactor's initialiser
        status = int(exit_.code)
    except (Interrupted, KeyboardInterrupt):  # the interrupt reached us before Python's SIGINT handler ran, or after
        error, status = "interrupted", EXIT_INTERRUPTED
    except LinkRefused as exc:  # the module, not a run of it: named as tvm-wasm link names it
        error, status = refused(exc, args.guest), EXIT_FAILURE
    except TvmError as exc:
        error, status = f"{type(exc).__name__}: {exc}", EXIT_FAILURE
    except wasmtime.Trap as trap:
        error, status = f"trap: {trap_summary(trap)}", EXIT_FAILURE
    except ValueError as exc:  # the module cannot be instantiated
        error, status = str(exc), EXIT_FAILURE
    sys.stdout.flush()
    host._rearm()  # the stats below may read through the runtime after an interrupt
    if args.stats:
        _print_stats(host)
    if args.stats_json is not None:
        _write_stats_json(host, args.stats_json, status, error)
    if error is not None:
        return fail(error, status)
    return status


def _invoke_values(module: wasmtime.Module, name: str, texts: list[str]) -> list[object]:
    """The export's parameters from their text (ints in any base Python accepts, floats)."""
    import wasmtime

    export = next((e for e in module.exports if e.name == name), None)
    if export is None or not isinstance(export.type, wasmtime.FuncType):
        funcs = sorted(e.name for e in module.exports if isinstance(e.type, wasmtime.FuncType))
        raise _Usage(f"no exported function {name!r} (exported functions: {', '.join(funcs) or 'none'})")
    params = [str(p) for p in export.type.params]
    if len(texts) != len(params):
        raise _Usage(f"{name} takes {len(params)} value(s) ({', '.join(params) or 'none'}), got {len(texts)}")
    return [_value(text, wasm_type, name) for text, wasm_type in zip(texts, params, strict=True)]


def _value(text: str, wasm_type: str, name: str) -> object:
    try:
        if wasm_type in ("i32", "i64"):
            bits = 32 if wasm_type == "i32" else 64
            value = int(text, 0)
            if not -(1 << (bits - 1)) <= value < 1 << bits:
                raise ValueError
            return value - (1 << bits) if value >= 1 << (bits - 1) else value  # wasm passes them signed
        if wasm_type in ("f32", "f64"):
            value_f = float(text)
            return struct.unpack("<f", struct.pack("<f", value_f))[0] if wasm_type == "f32" else value_f
    except (ValueError, OverflowError):
        raise _Usage(f"{name}: {text!r} is not a valid {wasm_type}") from None
    raise _Usage(f"{name} takes a {wasm_type} parameter, which --invoke cannot pass")


def _print_results(results: object) -> None:
    if results is None:
        return
    for value in results if isinstance(results, list | tuple) else [results]:
        print(value)


def _print_stats(host: TvmHost) -> None:
    from rich.console import Console

    from ..region_tables import metrics_table, region_table

    console = Console(stderr=True, highlight=False)
    regions = host.list_regions()
    console.print(region_table(regions))
    console.print(metrics_table({info.id: host.metrics(info.id) for info in regions}))
    budget = "no budget" if host.budget_bytes is None else f"budget {host.budget_bytes} B"
    console.print(f"{len(regions)} regions, {host.resident_bytes()} B resident ({budget}); "
                  f"{host.python_entries} entries into Python from wasm", markup=False, soft_wrap=True)


def _write_stats_json(host: TvmHost, path: Path, status: int, error: str | None) -> None:
    regions = host.list_regions()
    document = {
        "exit_status": status,
        "error": error,
        "budget_bytes": host.budget_bytes,
        "resident_bytes": host.resident_bytes(),
        "python_entries": host.python_entries,
        "regions": [
            {**asdict(info), "kind": info.kind.name, "residency": info.residency.name,
             "metrics": asdict(host.metrics(info.id))}
            for info in regions
        ],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
