"""The ``tvm-wasm`` command line: exit codes, one-line errors, and the demo.

Most tests call ``main([...])`` in-process; one runs the installed console
script, because that is what ``./run.sh`` executes.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tvm_wasm
from tvm_wasm import RegionNotFound, demo
from tvm_wasm.cli import byte_size, main

KINDS = ("HOT_HEAP", "OBJECT_ARENA", "BLOB_ARENA", "PAGE_STORE", "SCRATCH")
REPO = Path(__file__).resolve().parent.parent


def one_error_line(err: str) -> str:
    """The single stderr line of a failed command (asserting there is exactly one)."""
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("tvm-wasm: error: "), lines[0]
    assert "Traceback" not in err
    return lines[0]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out, err = capsys.readouterr()
    assert out == f"tvm-wasm {tvm_wasm.__version__}\n"
    assert tvm_wasm.__version__ == "0.1.0"
    try:  # the installed distribution and the package agree
        assert importlib.metadata.version("tvm-wasm") == tvm_wasm.__version__
    except importlib.metadata.PackageNotFoundError:
        pass
    assert err == ""


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["demo", "--help"]])
def test_help_exits_zero(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: tvm-wasm")
    assert "demo" in out
    assert err == ""


def test_demo_prints_tables_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "Regions" in out and "Metrics" in out
    for kind in KINDS:
        assert kind in out
    summary = out.rstrip().splitlines()[-1]
    assert summary.startswith("demo OK: ")
    assert "budget 32768 B met" in summary


def test_demo_result_is_verified() -> None:
    result = demo.run_demo()
    assert result.ok, result.failed
    report = result.eviction
    assert report.target_met
    assert result.resident_after <= result.budget
    # The Warm page store and both spillable Hot arenas went Cold, then faulted back.
    assert report.regions_spilled == 3
    assert result.total_faults == 3
    kinds = {info.id: info.kind for info in result.regions}
    assert {kinds[rid] for rid, m in result.metrics.items() if m.faults} == {
        tvm_wasm.RegionKind.OBJECT_ARENA,
        tvm_wasm.RegionKind.BLOB_ARENA,
        tvm_wasm.RegionKind.PAGE_STORE,
    }
    assert all(info.residency is tvm_wasm.Residency.HOT for info in result.regions)
    remap = result.remap
    assert remap.new_generation == remap.old_generation + 1
    assert sorted(remap.mapping.values())[0] == 0


def test_demo_keeps_spilled_copies_in_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spill = tmp_path / "spill"
    assert main(["demo", "--dir", str(spill)]) == 0
    out, _ = capsys.readouterr()
    assert f"spilled copies kept in {spill}" in out
    assert any(spill.iterdir())


def test_impossible_budget_completes_and_says_target_not_met(capsys: pytest.CaptureFixture[str]) -> None:
    # Budget 0 cannot be met: the pinned HOT_HEAP and the SCRATCH slab never
    # spill. Missing the target is reported, not an error, so the run still
    # verifies every byte and exits 0.
    assert main(["demo", "--budget", "0"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "budget 0 B NOT met (24576 B pinned or unspillable)" in out

    result = demo.run_demo(budget=0)
    assert result.ok, result.failed
    assert not result.eviction.target_met
    assert result.resident_after == result.unspillable > 0


def test_generous_budget_spills_nothing() -> None:
    result = demo.run_demo(budget=1 << 30)
    assert result.ok, result.failed
    assert result.eviction.target_met
    assert result.eviction.regions_spilled == 0
    assert result.total_faults == 0


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("65536", 65536), ("64K", 65536), ("64kib", 65536), ("1M", 1 << 20), ("2G", 2 << 30), ("12b", 12)],
)
def test_byte_sizes(text: str, value: int) -> None:
    assert byte_size(text) == value


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["demo", "--budget", "lots"], "invalid byte count 'lots'"),
        (["demo", "--budget", "-5"], "invalid byte count '-5'"),
        (["demo", "--budget"], "expected one argument"),
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "no command given"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert fragment in one_error_line(err)


def test_unusable_dir_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    assert main(["demo", "--dir", str(not_a_dir)]) == 1
    _, err = capsys.readouterr()
    assert str(not_a_dir) in one_error_line(err)


def test_tvm_error_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(**_: object) -> demo.DemoResult:
        raise RegionNotFound("no such region", region_id=7)

    monkeypatch.setattr(demo, "run_demo", broken)
    assert main(["demo"]) == 1
    _, err = capsys.readouterr()
    assert one_error_line(err) == "tvm-wasm: error: RegionNotFound: no such region [region=7]"


def test_os_error_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(**_: object) -> demo.DemoResult:
        raise PermissionError(13, "Permission denied", "/nowhere/spill")

    monkeypatch.setattr(demo, "run_demo", broken)
    assert main(["demo"]) == 1
    _, err = capsys.readouterr()
    assert one_error_line(err) == "tvm-wasm: error: Permission denied: /nowhere/spill"


def test_failed_verification_exits_nonzero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = demo.run_demo

    def corrupted(**kwargs: object) -> demo.DemoResult:
        result = real(**kwargs)  # type: ignore[arg-type]
        result.checks.append(demo.Check("injected failure", False, "bytes differ"))
        return result

    monkeypatch.setattr(demo, "run_demo", corrupted)
    assert main(["demo"]) == 1
    out, err = capsys.readouterr()
    assert "FAILED injected failure: bytes differ" in out
    assert "demo FAILED: 13/14 checks passed" in out
    assert "demo verification failed: 1 of 14 checks failed" in one_error_line(err)


def _console_script() -> Path | None:
    """The installed ``tvm-wasm`` next to this interpreter, or in the repo's .venv."""
    for candidate in (Path(sys.executable).parent / "tvm-wasm", REPO / ".venv" / "bin" / "tvm-wasm"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def test_installed_console_script() -> None:
    script = _console_script()
    if script is None:
        pytest.skip("tvm-wasm console script is not installed (run ./test.sh)")
    version = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert (version.returncode, version.stdout) == (0, "tvm-wasm 0.1.0\n")
    run = subprocess.run([script, "demo"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Regions" in run.stdout and "Metrics" in run.stdout
    assert "demo OK" in run.stdout
    bad = subprocess.run([script, "demo", "--budget", "lots"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stdout == ""
    one_error_line(bad.stderr)


def test_guest_build_user_wat_given_a_binary_says_what_to_do(tmp_path):
    import subprocess
    import sys

    binary = tmp_path / "user.wasm"
    binary.write_bytes(b"\0asm\x01\0\0\0")
    done = subprocess.run([sys.executable, "-m", "tvm_wasm.cli", "guest", "build", "--pools", "1", "-o",
                           str(tmp_path / "g.wasm"), "--user-wat", str(binary)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "tvm-wasm link" in done.stderr and "Traceback" not in done.stderr


def test_link_and_run_word_a_refused_module_alike(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One form for the same refusal: the class name first, as every other typed error, then the file."""
    bridge = tmp_path / "bridge.wat"
    bridge.write_text('(module (import "tvm" "bridge" (table 1 funcref)) (memory (export "memory") 1)'
                      ' (func (export "_start")))')
    lines = []
    for argv in (["link", str(bridge), "-o", str(tmp_path / "out.wasm")], ["run", str(bridge)]):
        assert main(argv) == 1
        lines.append(capsys.readouterr().err.strip())
    for line in lines:
        assert line.startswith(f"tvm-wasm: error: LinkRefused: {bridge}: import tvm.bridge"), line
        assert "\n" not in line
