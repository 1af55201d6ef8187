"""Every subcommand's exit codes, as README's "Exit codes" table documents them.

0 done, 1 the command failed (typed error, trap, malformed or refused module, a file
that cannot be written, a regression), 2 the command line is wrong (including an input
file that does not exist), 130 interrupted, and for ``run`` the program's own status.
Each failure is one ``tvm-wasm: error:`` line, never a traceback; the last test runs
the installed console script so that this holds for a real process too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tvm_wasm import cli_support
from tvm_wasm.cli import main

from test_cli import one_error_line

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()

EXITS_WITH = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const {status}))))"""
TRAPS = '(module (memory (export "memory") 1) (func (export "_start") unreachable))'
# region 1 was never created: the typed load fails with RegionNotFound
TYPED_ERROR = """(module
  (import "tvm" "load_u32" (func $load (param i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $load (i64.const 0x0001000100000000) (i32.const 0)))))"""


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, str]:
    made = {
        "ok.wat": EXITS_WITH.format(status=0),
        "exit3.wat": EXITS_WITH.format(status=3),
        "exit2.wat": EXITS_WITH.format(status=2),
        "trap.wat": TRAPS,
        "typed.wat": TYPED_ERROR,
        "unlinkable.wat": '(module (import "env" "mystery" (func)) (func (export "_start")))',
        "library.wat": '(module (func (export "seven") (result i32) i32.const 7))',
        "good.json": json.dumps({"rows": []}),
    }
    paths = {}
    for name, text in made.items():
        (tmp_path / name).write_text(text)
        paths[name.split(".")[0]] = str(tmp_path / name)
    (tmp_path / "junk.wasm").write_bytes(b"not wasm at all")
    (tmp_path / "truncated.wasm").write_bytes(b"\0asm\1\0\0\0\1")
    (tmp_path / "notjson.json").write_text("{")
    paths.update(junk=str(tmp_path / "junk.wasm"), truncated=str(tmp_path / "truncated.wasm"),
                 notjson=str(tmp_path / "notjson.json"), missing=str(tmp_path / "missing.wasm"),
                 dir=str(tmp_path), unwritable=str(tmp_path / "ok.wat" / "under-a-file"))
    return paths


# (argv with {placeholders} from `files`, exit code, words the error line must contain; None: no error line)
CASES = [
    # run: the program's own status, typed errors, traps, malformed modules, bad command lines
    (["run", "{ok}"], 0, None),
    (["run", "{exit3}"], 3, None),
    (["run", "--invoke", "seven", "{library}"], 0, None),
    (["run", "{typed}"], 1, ["RegionNotFound: load_u32(r1@1+0) accessing 4 byte(s) at offset 0x0: no region r1"]),
    (["run", "{trap}"], 1, ["trap:", "unreachable"]),
    (["run", "{junk}"], 1, ["not a valid wasm module"]),
    (["run", "{truncated}"], 1, ["not a valid wasm module"]),
    (["run", "{unlinkable}"], 1, ["LinkRefused: ", "env.mystery (function)"]),
    (["run", "{missing}"], 2, ["cannot read", "missing.wasm"]),
    (["run", "{dir}"], 2, ["cannot read"]),
    (["run", "--dir", "{missing}", "{ok}"], 2, ["no such directory"]),
    (["run", "--invoke", "nope", "{library}"], 2, ["no exported function 'nope'"]),
    (["run", "--invoke", "seven", "{library}", "1"], 2, ["takes 0 value(s)"]),
    (["run", "{library}"], 2, ["not a WASI command"]),
    (["run", "--pools", "0", "{ok}"], 2, ["--pools"]),
    (["run", "--bogus", "{ok}"], 2, ["unrecognized arguments: --bogus"]),
    (["run", "--stats-json", "{unwritable}", "{ok}"], 1, ["under-a-file"]),
    # link: missing and malformed input (refused before any tool runs)
    (["link", "{missing}", "-o", "{dir}/out.wasm"], 2, ["no such file", "missing.wasm"]),
    (["link", "{junk}", "-o", "{dir}/out.wasm"], 1, ["LinkRefused: ", "neither a wasm binary nor valid WAT"]),
    (["link", "{ok}"], 2, ["-o/--output"]),
    # guest build
    (["guest", "build", "--user-wat", "{missing}", "-o", "{dir}/g.wasm"], 2, ["no such file", "missing.wasm"]),
    (["guest", "build", "--user-wat", "{ok}", "-o", "{dir}/g.wasm"], 1, ["spliced user WAT is invalid"]),
    (["guest", "build", "-o", "{unwritable}"], 1, ["ok.wat"]),
    (["guest", "build"], 2, ["needs -o PATH"]),
    # bench compare
    (["bench", "compare", "{missing}", "{good}"], 2, ["no such file", "missing.wasm"]),
    (["bench", "compare", "{notjson}", "{good}"], 2, ["cannot compare"]),
    (["bench", "compare", "{good}"], 2, ["usage: bench compare"]),
    # template, the command itself
    (["template", "python", "{unwritable}"], 1, ["under-a-file"]),
    (["nosuch"], 2, ["invalid choice: 'nosuch'"]),
    ([], 2, ["no command given"]),
]


def _argv(template: list[str], files: dict[str, str]) -> list[str]:
    return [part.format(**files) for part in template]


@pytest.mark.parametrize("template,code,words", CASES, ids=[" ".join(c[0]) or "(none)" for c in CASES])
def test_exit_code_and_one_line(template: list[str], code: int, words: list[str] | None, files: dict[str, str],
                                capfd: pytest.CaptureFixture[str]) -> None:
    assert main(_argv(template, files)) == code
    err = capfd.readouterr().err
    assert "Traceback" not in err
    if words is None:
        assert "tvm-wasm: error" not in err
        return
    line = one_error_line(err)
    for word in words:
        assert word in line, line


def test_stats_json_tells_a_program_status_from_an_error(files: dict[str, str], tmp_path: Path,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    """A program may exit 2 itself: the stats file says it was the program, with no error."""
    report = tmp_path / "s.json"
    assert main(["run", "--stats-json", str(report), files["exit2"]]) == 2
    assert capfd.readouterr().err == ""
    doc = json.loads(report.read_text())
    assert doc["exit_status"] == 2 and doc["error"] is None
    assert main(["run", "--stats-json", str(report), files["trap"]]) == 1
    doc = json.loads(report.read_text())
    assert doc["exit_status"] == 1 and doc["error"].startswith("trap:")


def test_interrupted_exits_130(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    from tvm_wasm import demo

    def interrupt(**_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "run_demo", interrupt)
    assert main(["demo"]) == cli_support.EXIT_INTERRUPTED == 130
    assert one_error_line(capfd.readouterr().err) == "tvm-wasm: error: interrupted"


def test_readme_documents_every_exit_code() -> None:
    section = README.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    for code in (0, cli_support.EXIT_FAILURE, cli_support.EXIT_USAGE, cli_support.EXIT_INTERRUPTED):
        assert f"\n| {code} | " in section, code
    assert "proc_exit" in section


def test_console_script_exit_codes(files: dict[str, str]) -> None:
    """The real process: the status and one stderr line, no traceback, for each kind of failure."""
    script = Path(sys.executable).with_name("tvm-wasm")
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable}")
    for template, code in ((["run", "{exit3}"], 3), (["run", "{typed}"], 1), (["run", "{trap}"], 1),
                           (["run", "{junk}"], 1), (["run", "{missing}"], 2), (["link", "{missing}", "-o", "x"], 2)):
        done = subprocess.run([str(script), *_argv(template, files)], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
        assert done.returncode == code, (template, done.stderr)
        assert "Traceback" not in done.stderr
        if code != 3:
            assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("tvm-wasm: error: "), done.stderr
