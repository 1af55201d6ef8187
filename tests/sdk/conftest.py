"""Fixtures for the C guest programs: each example built once per session, both ways.

The tests skip only when clang (or wasi-libc, for WASI commands) cannot build on
this machine, and say which package is missing; ``.ci/run`` installs them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tvm_wasm.sdk import clang

sys.path.insert(0, str(Path(__file__).parent))  # records_reference, whatever the import mode


@pytest.fixture(scope="session")
def c_guest(tmp_path_factory: pytest.TempPathFactory):
    """``c_guest(name, target)`` -> the path of ``examples/{name}.c`` built for ``target``."""
    built: dict[tuple[str, str], Path] = {}
    folder = tmp_path_factory.mktemp("c-guests")

    def build(name: str, target: clang.Target) -> Path:
        problem = clang.toolchain_problem(target)
        if problem is not None:
            pytest.skip(problem)
        key = (name, target)
        if key not in built:
            built[key] = clang.build(clang.example(name), folder / f"{name}-{target}.wasm", target=target)
        return built[key]

    return build
