"""The ``tvm-wasm link`` subcommand: a compiled core module plus the runtime, as one module."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..cli_support import DEFAULT_POOLS, EXIT_FAILURE, EXIT_USAGE, fail, number, refused
from ..runtime import layout as L


def register(commands: Any) -> None:
    """Add ``link`` to the ``tvm-wasm`` command line."""
    sub = commands.add_parser(
        "link",
        help="link a compiled core module (clang, rustc, zig) with the runtime into one module",
        description=(
            "Merge USER (a core module, binary or WAT) with the runtime. --target guest: the self-contained "
            "module (directory and pools inside; runs in wasmtime and browsers). --target host: the data "
            "plane inlined into the user's functions, for TvmHost (which links modules itself: "
            "TvmHost.instantiate(..., inline=True)). The user's memory becomes the module's 'memory', "
            "the target of read/write; its tvm.* imports resolve inside; WASI imports stay imports. "
            "Needs Binaryen (npm package binaryen; `npm ci` in the checkout)."
        ),
    )
    sub.add_argument("user", type=Path, metavar="USER", help="the user module (.wasm or .wat)")
    sub.add_argument("-o", "--output", type=Path, required=True, metavar="PATH", help="file to write")
    sub.add_argument("--target", choices=("guest", "host"), default="guest", help="guest (default) or host")
    sub.add_argument("--pools", type=number(1, 64, what="pool count"), default=DEFAULT_POOLS, metavar="N",
                     help=f"pool memories (1..64, default {DEFAULT_POOLS})")
    sub.add_argument("--max-pages", type=number(1, L.WASM32_MAX_PAGES, what="page count"), default=L.WASM32_MAX_PAGES, metavar="M",
                     help=f"maximum 64 KiB pages per pool (default {L.WASM32_MAX_PAGES} = 4 GiB; 256 for browsers)")
    inline = sub.add_mutually_exclusive_group()
    inline.add_argument("--inline", dest="inline", action="store_true", default=None,
                        help="inline the runtime's fast paths into user code (default for --target host)")
    inline.add_argument("--no-inline", dest="inline", action="store_false", help="keep runtime calls as calls")
    sub.add_argument("--allow-import", action="append", default=[], metavar="MODULE.NAME",
                     help="declare a function import the user module may keep (MODULE.NAME or MODULE.*); repeatable")
    sub.set_defaults(handler=run_link)


def run_link(args: argparse.Namespace) -> int:
    from .errors import LinkError, LinkRefused, ToolMissing  # late: keeps --help fast
    from .link import link

    if not args.user.is_file():
        return fail(f"no such file: {args.user}", EXIT_USAGE)
    started = time.perf_counter()
    try:
        linked = link(args.user, target=args.target, pools=args.pools, max_pages=args.max_pages,
                      inline_runtime=args.inline, allow_imports=args.allow_import)
    except LinkRefused as exc:  # before ValueError: a refused module is also one
        return fail(refused(exc, args.user), EXIT_FAILURE)
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    except ToolMissing as exc:
        return fail(str(exc), EXIT_FAILURE)
    except LinkError as exc:
        return fail(f"linking {args.user} failed: {exc}", EXIT_FAILURE)
    seconds = time.perf_counter() - started
    path = linked.save(args.output)
    per_module: dict[str, int] = {}
    for module, _ in linked.imports:
        per_module[module] = per_module.get(module, 0) + 1
    imports = ", ".join(f"{m}.* ({n})" for m, n in per_module.items()) or "nothing"
    memory = f"{linked.memory.min} pages" if linked.memory else "none (1 page given)"
    print(f"wrote {path}: target {linked.target}, {'inlined, ' if linked.inlined else ''}"
          f"{linked.pools} pools, user memory {memory}, {len(linked.wasm)} bytes, imports {imports} "
          f"(linked in {seconds:.1f} s)")
    if linked.target == "host":
        print(f"note: TvmHost runs only modules it links itself: tvm-wasm run --inline {args.user} "
              "(or TvmHost.instantiate(..., inline=True)) links and runs it")
    return 0
