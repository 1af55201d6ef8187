"""Fixtures for the linker tests: real clang builds of C guests, and Binaryen (skipped only when absent)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from c_guests import FILL_SUM_C, clang  # noqa: E402

from tvm_wasm.linker import ToolMissing  # noqa: E402
from tvm_wasm.linker import tools  # noqa: E402


@pytest.fixture(scope="session")
def binaryen() -> None:
    try:
        tools.binaryen("wasm-merge")
        tools.binaryen("wasm-opt")
    except ToolMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def c_modules(tmp_path_factory) -> dict[str, bytes]:
    """The fill_sum guest built twice: defining its memory, and importing env.memory."""
    folder = tmp_path_factory.mktemp("c")
    return {
        "defined": clang(FILL_SUM_C, folder / "defined.wasm"),
        "imported": clang(FILL_SUM_C, folder / "imported.wasm", "-Wl,--import-memory"),
    }
