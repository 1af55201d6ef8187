"""``tvm-wasm run`` and ``TvmHost.instantiate(..., wasi=...)``: WASI commands and library exports on TvmHost.

The guests here are small WAT modules, so every exit path (proc_exit codes,
traps, typed errors, bad command lines, unlinkable modules) is exercised
without a C toolchain; the C programs run through the same paths in
``tests/guests/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import wasmtime

from tvm_wasm import GuestMemoryError, RegionKind, RegionNotFound, TvmHost
from tvm_wasm.cli import main

# A WASI command: exit status = 10 * argc + envc; "hi\n" on stdout first.
COUNTER = """(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $envs (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "hi\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 3))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $args (i32.const 16) (i32.const 20)))
    (drop (call $envs (i32.const 24) (i32.const 28)))
    (call $exit (i32.add (i32.mul (i32.load (i32.const 16)) (i32.const 10)) (i32.load (i32.const 24))))))
"""

# A library with tvm imports: exports to --invoke, a typed access that fails, a plain trap.
LIBRARY = """(module
  (import "tvm" "alloc" (func $alloc (param i32 i32) (result i64)))
  (import "tvm" "load_u32" (func $load_u32 (param i64 i32) (result i32)))
  (import "tvm" "read" (func $read (param i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "add") (param i32 i64) (result i64) (i64.add (i64.extend_i32_s (local.get 0)) (local.get 1)))
  (func (export "halves") (param f64) (result f64 f32)
    (f64.mul (local.get 0) (f64.const 0.5)) (f32.demote_f64 (f64.mul (local.get 0) (f64.const 0.5))))
  (func (export "nothing"))
  (func (export "bad_load") (param i64) (result i32) (call $load_u32 (local.get 0) (i32.const 4)))
  (func (export "read_first") (param i64) (result i32) (call $read (local.get 0) (i32.const 0) (i32.const 4)))
  (func (export "boom") unreachable)
  (global (export "g") i32 (i32.const 0)))
"""

COMMAND_WITH_TVM = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "tvm" "load_u32" (func $load_u32 (param i64 i32) (result i32)))
  (func (export "_start") (drop (call $load_u32 (i64.const 0x0003000100000000) (i32.const 8)))))
"""


@pytest.fixture
def wasm(tmp_path: Path):
    def write(wat: str, name: str = "guest.wasm") -> str:
        path = tmp_path / name
        path.write_bytes(wasmtime.wat2wasm(wat))
        return str(path)

    return write


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("tvm-wasm: error: ") and "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------- commands
def test_exit_status_is_the_proc_exit_code_with_args_and_env(wasm, capfd) -> None:
    path = wasm(COUNTER)
    assert main(["run", path]) == 10  # argv[0] only
    assert main(["run", "--env", "A=1", "--env", "B=", path, "x", "--not-an-option"]) == 32
    out, err = capfd.readouterr()
    assert out == "hi\nhi\n" and err == ""


def test_typed_error_trap_is_one_line_exit_1(wasm, capfd) -> None:
    assert main(["run", wasm(COMMAND_WITH_TVM)]) == 1
    line = one_error_line(capfd.readouterr().err)
    assert "RegionNotFound" in line and "region=3" in line and "gen=1" in line


def test_plain_trap_is_one_line_naming_the_cause(wasm, capfd) -> None:
    assert main(["run", "--invoke", "boom", wasm(LIBRARY)]) == 1
    line = one_error_line(capfd.readouterr().err)
    assert "unreachable" in line and "(in wasm function 8)" in line  # no name section: its index (3 imports + 5)


# ---------------------------------------------------------------- --invoke
def test_invoke_prints_results_one_per_line(wasm, capfd) -> None:
    path = wasm(LIBRARY)
    assert main(["run", "--invoke", "add", path, "-5", "0x10"]) == 0
    assert main(["run", "--invoke", "halves", path, "3"]) == 0
    assert main(["run", "--invoke", "nothing", path]) == 0
    out, err = capfd.readouterr()
    assert out.splitlines() == ["11", "1.5", "1.5"] and err == ""


def test_invoke_unbound_i32_and_u32_range(wasm, capfd) -> None:
    path = wasm(LIBRARY)
    assert main(["run", "--invoke", "add", path, "4294967295", "1"]) == 0  # u32 max is -1 as an i32
    assert capfd.readouterr().out == "0\n"


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--invoke", "missing"], ["no exported function 'missing'", "add"]),
        (["--invoke", "g"], ["no exported function 'g'"]),
        (["--invoke", "add", "GUEST", "1"], ["takes 2 value(s)", "i32, i64"]),
        (["--invoke", "add", "GUEST", "1", "x"], ["'x' is not a valid i64"]),
        (["--invoke", "add", "GUEST", "4294967296", "1"], ["not a valid i32"]),
        (["--pools", "0"], ["pool count", "out of range", "1..64"]),
        (["--budget", "lots"], ["invalid byte count"]),
        (["--env", "NOEQUALS"], ["invalid --env"]),
        (["--dir", "/no/such/dir"], ["no such directory"]),
        (["--dir", "a::"], ["invalid --dir"]),
        ([], ["not a WASI command", "--invoke"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line(wasm, capfd, argv, words) -> None:
    path = wasm(LIBRARY)
    if "GUEST" in argv:
        at = argv.index("GUEST")
        argv = [*argv[:at], path, *argv[at + 1 :]]
    else:
        argv = [*argv, path]
    assert main(["run", *argv]) == 2
    line = one_error_line(capfd.readouterr().err)
    for word in words:
        assert word in line


def test_missing_or_invalid_guest_file(tmp_path, capfd) -> None:
    assert main(["run", str(tmp_path / "absent.wasm")]) == 2
    assert "cannot read" in one_error_line(capfd.readouterr().err)
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"\0asm\1\0\0\0\5")
    assert main(["run", str(junk)]) == 1
    assert "not a valid wasm module" in one_error_line(capfd.readouterr().err)


def test_unlinkable_guest_names_the_import(wasm, capfd) -> None:
    path = wasm('(module (import "env" "mystery" (func)) (func (export "_start")))')
    assert main(["run", path]) == 1
    line = one_error_line(capfd.readouterr().err)
    assert f"LinkRefused: {path}: the module's imports are not all provided: env.mystery (function); " in line


# ---------------------------------------------------------------- --stats
def test_stats_and_stats_json_at_exit(wasm, tmp_path, capfd) -> None:
    report = tmp_path / "stats.json"
    assert main(["run", "--stats", "--stats-json", str(report), wasm(COMMAND_WITH_TVM)]) == 1
    out, err = capfd.readouterr()
    assert "Regions" in err and "Metrics" in err and "entries into Python" in err
    assert out == ""
    doc = json.loads(report.read_text())
    assert doc["exit_status"] == 1 and "RegionNotFound" in doc["error"] and doc["regions"] == []


# ---------------------------------------------------------------- the Python API
def test_instantiate_without_wasi_says_what_to_pass() -> None:
    host = TvmHost(pools=1)
    with pytest.raises(ValueError, match="wasi=True"):
        host.instantiate(COUNTER)


def test_run_command_returns_the_exit_code_and_wasi_config_applies() -> None:
    host = TvmHost(pools=1)
    config = wasmtime.WasiConfig()
    config.argv = ["prog", "a", "b", "c"]
    config.env = [("K", "V")]
    assert host.run_command(COUNTER, wasi=config) == 41
    assert host.run_command(COUNTER) == 0  # wasi=True by default: no arguments at all, no environment


def test_run_command_refuses_a_library() -> None:
    with pytest.raises(ValueError, match="not a WASI command"):
        TvmHost(pools=1).run_command(LIBRARY)


def test_instantiate_wraps_link_errors() -> None:
    with pytest.raises(ValueError, match=r"not all provided: env\.mystery \(function\)"):
        TvmHost(pools=1).instantiate('(module (import "env" "mystery" (func)))')


def test_guest_through_the_linker_before_binding_gets_a_clear_error() -> None:
    host = TvmHost(pools=1)
    region = host.create_region(RegionKind.OBJECT_ARENA, 4096)
    handle = host.alloc(region, 16)
    host.write(handle, b"\x01\x02\x03\x04")
    guest = host.linker.instantiate(host.store, wasmtime.Module(host.engine, LIBRARY))
    with pytest.raises(GuestMemoryError, match="bind_guest_memory"):
        host.call(guest, "read_first", handle.to_i64())
    memory = guest.exports(host.store)["memory"]
    host.bind_guest_memory(memory)
    assert host.call(guest, "read_first", handle.to_i64()) == 0
    assert bytes(memory.read(host.store, 0, 4)) == b"\x01\x02\x03\x04"


def test_instantiate_does_not_leave_the_linker_serving_its_guest() -> None:
    """A guest linked directly after ``instantiate`` must not copy into the earlier guest's memory."""
    host = TvmHost(pools=1)
    region = host.create_region(RegionKind.OBJECT_ARENA, 4096)
    handle = host.alloc(region, 16)
    host.write(handle, b"ABCD")
    first = host.instantiate(LIBRARY)
    direct = host.linker.instantiate(host.store, wasmtime.Module(host.engine, LIBRARY))
    with pytest.raises(GuestMemoryError):
        host.call(direct, "read_first", handle.to_i64())
    assert host.call(first, "read_first", handle.to_i64()) == 0
    first_memory = first.exports(host.store)["memory"]
    assert bytes(first_memory.read(host.store, 0, 4)) == b"ABCD"


def test_typed_error_through_the_api() -> None:
    host = TvmHost(pools=1)
    guest = host.instantiate(LIBRARY)
    with pytest.raises(RegionNotFound):
        host.call(guest, "bad_load", 0x0003_0001_0000_0000)



def test_modules_from_paths(wasm) -> None:
    host = TvmHost(pools=1)
    assert host.run_command(Path(wasm(COUNTER))) == 0
    lib = host.instantiate(Path(wasm(LIBRARY, "lib.wasm")))
    assert host.call(lib, "add", 2, 3) == 5


def test_a_wasi_config_used_twice_is_a_clear_error() -> None:
    host = TvmHost(pools=1)
    config = wasmtime.WasiConfig()
    assert host.run_command(COUNTER, wasi=config) == 0
    with pytest.raises(ValueError, match="already used"):
        host.run_command(COUNTER, wasi=config)
