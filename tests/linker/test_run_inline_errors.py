"""``tvm-wasm run --inline`` turns every way linking can fail into one line and exit 1, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tvm_wasm.cli import main
from tvm_wasm.linker import ToolMissing, binaryen_cache, tools


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tvm-wasm: error: ") and "Traceback" not in err, err
    return err


def test_a_module_the_policy_refuses(binaryen, tmp_path: Path, capsys) -> None:
    guest = tmp_path / "g.wat"
    guest.write_text('(module (import "env" "clock" (func (result i64))) (func (export "f") (result i32) i32.const 1))')
    assert main(["run", "--inline", "--invoke", "f", str(guest)]) == 1
    err = one_line_error(capsys)
    assert "LinkRefused" in err and "env.clock" in err


def test_a_wasi_module_the_host_cannot_serve(binaryen, tmp_path: Path, capsys) -> None:
    guest = tmp_path / "old.wat"  # the pre-preview1 WASI name: linked, but TvmHost defines preview1 only
    guest.write_text('(module (import "wasi_unstable" "proc_exit" (func (param i32))) '
                     '(func (export "f") (result i32) i32.const 0 call 0 i32.const 1))')
    assert main(["run", "--inline", "--invoke", "f", str(guest)]) == 1
    assert "wasi_unstable" in one_line_error(capsys)


def test_binaryen_missing(tmp_path: Path, capsys, monkeypatch) -> None:
    def missing(tool: str) -> str:
        raise ToolMissing(f"{tool} not found; {tools.INSTALL_HINT}")

    monkeypatch.setattr(tools, "binaryen", missing)
    monkeypatch.setenv(binaryen_cache.ENV, "off")
    binaryen_cache.clear_memory()
    guest = tmp_path / "g.wat"
    guest.write_text('(module (import "tvm" "last_error" (func (result i32))) (func (export "f") (result i32) call 0))')
    assert main(["run", "--inline", "--invoke", "f", str(guest)]) == 1
    err = one_line_error(capsys)
    assert "ToolMissing" in err and "npm ci" in err
