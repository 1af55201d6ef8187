"""The README's linker section runs as written: its commands with the shipped example guests, then its Python."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tvm_wasm.sdk import clang

README = Path(__file__).resolve().parents[2] / "README.md"


def blocks(language: str) -> list[str]:
    text = README.read_text()
    start = text.index("## Linking compiled modules: `tvm-wasm link`")
    section = text[start : text.index("\n## ", start + 10)]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def test_linker_commands_and_python_run(binaryen, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    problem = clang.toolchain_problem("wasi")
    if problem is not None:
        pytest.skip(problem)
    script = next(block for block in blocks("sh") if "sdk --examples" in block)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines.count("360") == 2 and "OK" in lines
    assert "wrote hello-guest.wasm: target guest" in done.stdout and "wrote hello-host.wasm: target host" in done.stdout
    refusal = [line for line in done.stderr.splitlines() if "LinkRefused" in line]
    assert len(refusal) == 1 and "Traceback" not in done.stderr
    (code,) = blocks("python")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - running the documented example is the test
