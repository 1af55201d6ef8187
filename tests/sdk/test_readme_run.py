"""The README's "Running programs" section runs as written: its Python example and the C programs' commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tvm_wasm.sdk import clang

README = Path(__file__).resolve().parents[2] / "README.md"


def section() -> str:
    text = README.read_text()
    start = text.index("## Running programs: `tvm-wasm run` and WASI")
    return text[start : text.index("\n## ", start + 10)]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(), re.S)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    problem = clang.toolchain_problem("wasi")
    if problem is not None:
        pytest.skip(problem)
    monkeypatch.chdir(tmp_path)


def test_python_example_runs() -> None:
    (code,) = blocks("python")
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - running the documented example is the test


def test_c_program_commands_run(tmp_path: Path) -> None:
    script = blocks("sh")[-1]
    assert "clang --target=wasm32-wasi" in script and "tvm-wasm run" in script
    bin_dir = Path(sys.executable).parent
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # the README's `python`: this one
    (shim / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, env=env,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("OK\n") == 2 and done.stdout.rstrip().endswith("0")
    assert "Traceback" not in done.stderr
