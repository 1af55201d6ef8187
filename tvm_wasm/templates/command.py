"""``tvm-wasm wit`` and ``tvm-wasm template``: the WIT and the guest templates, from an installed package."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from ..cli_support import EXIT_FAILURE, fail
from ..wit import DEPS_FOLDER, PACKAGE, VERSION, wit_files, write_deps
from . import TEMPLATES, TemplateBuildError, build_command, build_template, kept_files, write_template


def register(commands: Any) -> None:
    wit = commands.add_parser(
        "wit",
        help=f"print the {PACKAGE}@{VERSION} WIT, or write it into a wit/deps folder",
        description=(
            f"Without --out, print the {PACKAGE}@{VERSION} WIT package to stdout. With --out DIR, write it to "
            f"DIR/{DEPS_FOLDER}/, so DIR can be a world's wit/deps folder: then `include "
            f"{PACKAGE}/imports@{VERSION};` in your world."
        ),
    )
    wit.add_argument("--out", type=Path, metavar="DIR", help="a wit/deps folder to write the package into")
    wit.set_defaults(handler=_run_wit)

    template = commands.add_parser(
        "template",
        help="write a guest template (world, deps, source) into a folder, and optionally build it",
        description=(
            "Write a component guest template into DIR: wit/world.wit, wit/deps with the tvm:memory "
            "package, and the source file. Prints the command that builds it with the language's own "
            "toolchain; --build runs that command."
        ),
    )
    template.add_argument("language", choices=sorted(TEMPLATES), help="the guest's language")
    template.add_argument("dir", type=Path, metavar="DIR", help="the project folder (created if missing)")
    template.add_argument("--build", action="store_true", help="build it now (needs the toolchain installed)")
    template.add_argument("--force", action="store_true",
                          help="replace an existing world.wit and source file with the template's "
                               "(by default they are kept, so edits survive)")
    template.set_defaults(handler=_run_template)


def _run_wit(args: argparse.Namespace) -> int:
    if args.out is None:
        for path in wit_files():
            sys.stdout.write(path.read_text())
        return 0
    target = write_deps(args.out)
    print(f"wrote {target}")
    return 0


def _run_template(args: argparse.Namespace) -> int:
    kept = [] if args.force else kept_files(args.language, args.dir)
    root = write_template(args.language, args.dir, force=args.force)
    command = shlex.join(build_command(args.language))
    print(f"wrote the {args.language} template to {root}")
    for path in kept:
        print(f"kept your {path} (--force replaces it with the template's)")
    if not args.build:
        print(f"build it with:  cd {shlex.quote(str(root))} && {command}")
        return 0
    try:
        output = build_template(args.language, root)
    except TemplateBuildError as exc:
        return fail(str(exc), EXIT_FAILURE)
    print(f"built {output}")
    return 0
