"""The ``tvm:memory`` WIT package, shipped inside tvm-wasm.

``tvm.wit`` beside this file is the package ``tvm:memory@0.1.0``: the one
interface definition every component guest and host is built against.
Component toolchains (componentize-py, componentize-js/jco, wit-bindgen,
wasm-tools) resolve a dependency from a ``deps/`` folder holding one folder
per package, so :func:`write_deps` lays it out that way.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PACKAGE = "tvm:memory"
VERSION = "0.1.0"
#: The world guests ``include`` in their own (``include tvm:memory/imports@0.1.0;``).
INCLUDE_WORLD = "imports"
#: The folder ``write_deps`` creates inside ``deps/``: the package name, made a file name, and version.
DEPS_FOLDER = f"{PACKAGE.replace(':', '-')}-{VERSION}"

_HERE = Path(__file__).resolve().parent


def wit_dir() -> Path:
    """The folder holding ``tvm.wit`` in the installed package (read-only; copy it, don't edit it)."""
    return _HERE


def wit_files() -> list[Path]:
    """The ``.wit`` files of the package, sorted."""
    return sorted(_HERE.glob("*.wit"))


def write_deps(out: str | os.PathLike[str]) -> Path:
    """Write the package into ``out`` (a ``wit/deps`` folder) as ``out/tvm-memory-0.1.0/*.wit``.

    ``out`` is created if missing; an existing copy of the same version is
    replaced (other packages in ``out`` are left alone). Returns the package
    folder. Raises ``OSError`` if ``out`` cannot be written.
    """
    target = Path(out) / DEPS_FOLDER
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for source in wit_files():
        shutil.copyfile(source, target / source.name)
    return target
