"""The files generated from the ABI table and shipped in the package, and how to (re)write them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import HERE, c_header, rust

GENERATED: dict[Path, Callable[[], str]] = {
    HERE / "include" / "tvm.h": c_header.generate,
    HERE / "rust" / "tvm.rs": rust.generate,
}
"""Shipped path -> the function producing its text."""


def stale_files() -> list[Path]:
    """Shipped files whose text differs from what the table generates now."""
    return [path for path, make in GENERATED.items() if not path.exists() or path.read_text() != make()]


def write_all() -> list[Path]:
    for path, make in GENERATED.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
    return list(GENERATED)
