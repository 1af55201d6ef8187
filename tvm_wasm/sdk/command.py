"""The ``tvm-wasm sdk`` subcommand: where the guest SDK lives, and the ABI reference."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    """Add ``sdk`` to the ``tvm-wasm`` command line."""
    sdk = commands.add_parser(
        "sdk",
        help="the guest SDK: the C header's folder, the Rust bindings, the ABI reference",
        description=(
            "Print where the guest SDK generated from the raw tvm ABI table lives: "
            "--include prints the folder holding tvm.h (for clang -I), --rust the path of tvm.rs, "
            "--abi the reference table (Markdown), --examples the folder of the example programs."
        ),
    )
    what = sdk.add_mutually_exclusive_group(required=True)
    what.add_argument("--include", action="store_true", help="print the folder holding tvm.h")
    what.add_argument("--rust", action="store_true", help="print the path of tvm.rs")
    what.add_argument("--abi", action="store_true", help="print the raw ABI reference table (Markdown)")
    what.add_argument("--examples", action="store_true",
                      help="print the folder of the example guests (hello_regions.c/.rs, records.c, paging.c...)")
    sdk.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from . import get_include, get_rust_bindings

    if args.include:
        print(get_include())
    elif args.rust:
        print(get_rust_bindings())
    elif args.examples:
        from .clang import EXAMPLES

        print(EXAMPLES)
    else:
        from .reference import reference_markdown

        print(reference_markdown(), end="")
    return 0
