"""The guest author's side: the SDKs generated from the ABI table, building C guests, example programs.

The C header ``tvm.h`` and the Rust bindings ``tvm.rs`` ship inside the package
(``include/tvm.h``, ``rust/tvm.rs``); ``python -m tvm_wasm.sdk`` regenerates
them from ``tvm_wasm.abi.table`` and the test suite fails when a shipped file
differs from what the table gives. ``clang`` builds C guests; ``examples/``
holds programs to copy.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def get_include() -> str:
    """The folder holding ``tvm.h``: pass it to the compiler as ``-I`` (like ``numpy.get_include()``)."""
    return str(HERE / "include")


def get_rust_bindings() -> str:
    """The path of ``tvm.rs``: include it in a Rust guest with ``#[path = "..."] mod tvm;``."""
    return str(HERE / "rust" / "tvm.rs")


__all__ = ["get_include", "get_rust_bindings"]
