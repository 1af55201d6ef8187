"""``TvmHost`` (``instantiate``, ``run_command``, ``tvm-wasm run``) refuses a module importing what nobody
provides as ``GuestInstance`` does: one ``LinkRefused`` (a ``TvmError`` and ``ValueError``) naming every missing
import, worded by the one table (``host.import_refusals``), before wasmtime is asked. What the host provides
itself (``tvm.*``, WASI when asked) stays provided."""

from __future__ import annotations

import pytest
import wasmtime

from tvm_wasm import TvmError, TvmHost
from tvm_wasm.cli import main
from tvm_wasm.host.import_refusals import IMPORT_ADVICE, unsatisfied_message
from tvm_wasm.runtime.link_errors import LinkRefused

FD_WRITE = '(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))'
REPORTER = f"""(module
  (import "tvm" "create_region" (func $create (param i32 i32) (result i32)))
  {FD_WRITE}
  (import "env" "report" (func $report (param i32)))
  (import "env" "limit" (global i32))
  (memory (export "memory") 1)
  (func (export "_start") (call $report (call $create (i32.const 1) (i32.const 4096)))))"""
MISSING = [("env", "report", "function"), ("env", "limit", "global")]


@pytest.mark.parametrize("call", ["instantiate", "run_command"])
def test_every_missing_import_is_named_with_the_tables_words(call: str) -> None:
    with TvmHost(pools=1) as host:
        with pytest.raises(LinkRefused) as refused:
            getattr(host, call)(REPORTER, wasi=True)
        assert isinstance(refused.value, TvmError) and isinstance(refused.value, ValueError)
        assert str(refused.value) == unsatisfied_message(MISSING, "TvmHost")
        assert "wasi_snapshot_preview1" not in str(refused.value) and "tvm." not in str(refused.value).split(";")[0]
        assert host.list_regions() == []  # refused before anything ran


def test_the_host_words_its_own_advice_for_each_group() -> None:
    assert set(IMPORT_ADVICE) >= {"tvm", "tvm_host", "wasi_snapshot_preview1", "other"}
    assert all("TvmHost" in advice for advice in IMPORT_ADVICE.values())
    message = unsatisfied_message([("wasi_snapshot_preview1", "sock_open", "function")], "TvmHost")
    assert message.startswith("the module's imports are not all provided: wasi_snapshot_preview1.sock_open (function);")


def test_a_wasi_name_wasmtime_does_not_define_is_refused_the_same_way() -> None:
    wat = f'(module {FD_WRITE} (import "wasi_snapshot_preview1" "sock_open" (func)) (func (export "_start")))'
    with TvmHost(pools=1) as host, pytest.raises(LinkRefused) as refused:
        host.run_command(wat)
    assert str(refused.value) == unsatisfied_message([("wasi_snapshot_preview1", "sock_open", "function")], "TvmHost")


def test_what_the_host_provides_still_links() -> None:
    wat = REPORTER.replace('(import "env" "report" (func $report (param i32)))\n  (import "env" "limit" (global i32))',
                           "(func $report (param i32))")
    with TvmHost(pools=1) as host:
        assert host.run_command(wat) == 0
        assert len(host.list_regions()) == 1


def test_a_function_defined_in_the_hosts_linker_is_served() -> None:
    with TvmHost(pools=1) as host:
        seen = []
        host.linker.define_func("env", "report", wasmtime.FuncType([wasmtime.ValType.i32()], []), seen.append)
        host.linker.define(host.store, "env", "limit", wasmtime.Global(
            host.store, wasmtime.GlobalType(wasmtime.ValType.i32(), False), wasmtime.Val.i32(7)))
        assert host.run_command(REPORTER) == 0
        assert seen == [host.list_regions()[0].id]


def test_a_wrong_import_type_is_a_link_refusal() -> None:
    with TvmHost(pools=1) as host:
        host.linker.define_func("env", "report", wasmtime.FuncType([], []), lambda: None)
        with pytest.raises(LinkRefused, match="cannot be instantiated with the imports given"):
            host.instantiate('(module (import "env" "report" (func (param i32))))')


def test_tvm_wasm_run_refuses_with_the_class_name_and_the_same_words(tmp_path, capfd) -> None:
    path = tmp_path / "reporter.wasm"
    path.write_bytes(wasmtime.wat2wasm(REPORTER))
    assert main(["run", str(path)]) == 1
    err = capfd.readouterr().err.strip()
    assert err == f"tvm-wasm: error: LinkRefused: {path}: {unsatisfied_message(MISSING, 'TvmHost')}"
