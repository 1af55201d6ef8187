"""The ``tvm-wasm guest`` subcommand: build the self-contained module to a file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..cli_support import DEFAULT_POOLS, EXIT_FAILURE, EXIT_USAGE, fail, number
from ..runtime import layout as L


def register(commands: Any) -> None:
    """Add ``guest build`` to the ``tvm-wasm`` command line."""
    guest = commands.add_parser(
        "guest",
        help="the self-contained multi-memory module (regions and handles with no host)",
        description="Build the self-contained guest-side module, which runs in any engine with multi-memory.",
    )
    actions = guest.add_subparsers(dest="guest_command", title="guest commands", metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="write the module (binary, or WAT with --wat)",
        description=(
            "Generate, validate and write the module: N pool memories exported as mem0..mem{N-1}, "
            "the default memory exported as 'memory', the raw tvm ABI and the in-wasm control plane. "
            "It imports nothing."
        ),
    )
    build.add_argument("--pools", type=number(1, 64, what="pool count"), default=DEFAULT_POOLS, metavar="N",
                       help=f"number of pool memories (1..64, default {DEFAULT_POOLS}, as for tvm-wasm link)")
    build.add_argument("-o", "--output", type=Path, default=None, metavar="PATH", help="file to write")
    build.add_argument("--web", type=Path, default=None, metavar="DIR",
                       help="write an npm-layout web package: package.json, tvm-guest.js, tvm-guest.d.ts, guest.wasm, "
                            "API.md, example/ (versioned together; `npm pack DIR` packs it)")
    build.add_argument("--wat", action="store_true", help="write the text format instead of the binary")
    build.add_argument("--initial-pages", type=number(0, L.WASM32_MAX_PAGES, what="page count"), default=1, metavar="P", help="initial pages per pool (default 1)")
    build.add_argument(
        "--max-pages", type=number(1, L.WASM32_MAX_PAGES, what="page count"), default=None, metavar="P",
        help=f"maximum pages per pool (default {L.WASM32_MAX_PAGES} = 4 GiB; with --browser 256 = 16 MiB); "
             "chooses the cap with --browser too",
    )
    build.add_argument("--browser", action="store_true",
                       help="for engines with tight address-space budgets: pools capped at 256 pages (16 MiB each, "
                            "unless --max-pages says otherwise) and a directory of at most 256 side-table pages; "
                            "desktop Chromium reserves 4 GiB pools fine, so leave it off to go above 4 GiB")
    build.add_argument("--user-wat", type=Path, default=None, metavar="FILE",
                       help="module fields (functions, exports; no imports) to splice into the module")
    build.set_defaults(handler=run_build)
    guest.set_defaults(handler=lambda _args: fail("guest needs an action: build (see 'tvm-wasm guest --help')",
                                                  EXIT_USAGE))


def run_build(args: argparse.Namespace) -> int:
    from wasmtime import WasmtimeError

    from .module import (  # late: keeps --help fast
        BROWSER_MAX_PAGES,
        BROWSER_META_MAX_PAGES,
        build_module,
    )

    if args.output is None and args.web is None:
        return fail("guest build needs -o PATH, --web DIR or both", EXIT_USAGE)
    max_pages = args.max_pages if args.max_pages is not None else (BROWSER_MAX_PAGES if args.browser else L.WASM32_MAX_PAGES)
    meta_max = BROWSER_META_MAX_PAGES if args.browser else L.WASM32_MAX_PAGES
    user_wat = None
    if args.user_wat:
        if not args.user_wat.is_file():
            return fail(f"no such file: {args.user_wat}", EXIT_USAGE)
        raw = args.user_wat.read_bytes()
        if raw.startswith(b"\0asm"):
            return fail(f"{args.user_wat} is a wasm binary; --user-wat takes WAT module fields to splice in. "
                        f"To link a compiled module use: tvm-wasm link {args.user_wat} -o OUT.wasm", EXIT_USAGE)
        try:
            user_wat = raw.decode()
        except UnicodeDecodeError:
            return fail(f"{args.user_wat} is not UTF-8 text; --user-wat takes WAT module fields", EXIT_USAGE)
    try:
        module = build_module(pools=args.pools, initial_pages=args.initial_pages, max_pages=max_pages,
                              user_wat=user_wat, meta_max_pages=meta_max)
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    except WasmtimeError as exc:  # only spliced user WAT can fail to assemble or validate
        return fail(f"the module with the spliced user WAT is invalid: {exc}", EXIT_FAILURE)
    summary = (f"{module.pools} pools x {module.max_pages} pages (up to {module.max_bytes / (1 << 30):.2f} GiB of regions"
               f"{', capped by --browser' if args.browser and not args.max_pages else ''})")
    if args.output is not None:
        path = module.save(args.output, wat=args.wat)
        print(f"wrote {path}: {summary}, {path.stat().st_size} bytes, no imports")
    if args.web is not None:
        from .web import write_package

        files = write_package(args.web, module)
        print(f"wrote the web package {args.web} ({len(files)} files): {summary}")
    return 0
