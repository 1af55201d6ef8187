"""``--target host``: the data plane inlined into a compiled C module, run by TvmHost."""

from __future__ import annotations

import pytest
import wasmtime
from c_guests import expected_fill_sum

from tvm_wasm import Handle, RegionKind, StaleHandle, TvmHost
from tvm_wasm.abi.table import HOST as ABI_HOST
from tvm_wasm.abi.table import for_deployment
from tvm_wasm.cli import main
from tvm_wasm.runtime.link_errors import LinkRefused
from tvm_wasm.linker import link


@pytest.mark.parametrize("kind", ["defined", "imported"])
def test_c_module_runs_inlined_on_the_host_without_entering_python(binaryen, c_modules, kind):
    host = TvmHost(pools=2)
    guest = host.instantiate(c_modules[kind], inline=True)
    region = host.create_region(RegionKind.OBJECT_ARENA, 1 << 17)
    assert host.call(guest, "fill_sum", region, 65536) & 0xFFFF_FFFF == expected_fill_sum(65536)
    h = Handle(region, 1, 0)
    assert host.python_entries == 0
    assert host.metrics(region).bytes_written == 65536 and host.metrics(region).bytes_read == 65536
    assert host.read(h, 6) == bytes((i * 7 + b"linked"[i % 6]) & 0xFF for i in range(6))
    assert host.call(guest, "round_trip", h.to_i64(), 65536) == 0
    host.destroy_region(region)
    assert host.call(guest, "round_trip", h.to_i64(), 4) == -1  # stale: the read fails, nothing copied


def test_inlined_typed_access_traps_as_a_typed_error(binaryen):
    host = TvmHost(pools=2)
    guest = host.instantiate("""(module (import "tvm" "load_u32" (func $l (param i64 i32) (result i32)))
      (func (export "peek") (param i64 i32) (result i32) local.get 0 local.get 1 call $l))""", inline=True)
    region = host.create_region(RegionKind.OBJECT_ARENA, 64)
    h = Handle(region, 1, 0).to_i64()
    assert host.call(guest, "peek", h, 60) == 0
    with pytest.raises(Exception) as caught:
        host.call(guest, "peek", h, 61)
    assert type(caught.value).__name__ == "OutOfBounds"
    host.destroy_region(region)
    with pytest.raises(StaleHandle):
        host.call(guest, "peek", h, 0)


def test_the_linked_module_imports_the_pools_that_only_the_private_linker_supplies(binaryen, c_modules):
    linked = link(c_modules["defined"], target="host", pools=2)
    assert linked.inlined
    assert {m for m, _ in linked.imports} == {"tvm_host"}
    assert ("tvm_host", "pool0") in linked.imports and ("tvm_host", "meta") in linked.imports
    host = TvmHost(pools=2)
    with pytest.raises(wasmtime.WasmtimeError, match="tvm_host"):
        host.linker.instantiate(host.store, wasmtime.Module(host.engine, linked.wasm))  # the guests' linker


def test_inline_refuses_what_it_cannot_run(binaryen):
    host = TvmHost(pools=2)
    with pytest.raises(TypeError):
        host.instantiate(wasmtime.Module(host.engine, "(module)"), inline=True)
    with pytest.raises(ValueError, match="wasi=True"):  # WASI links; running it needs a WASI config
        host.instantiate('(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))) '
                         '(func (export "f") i32.const 0 call 0))', inline=True)
    with pytest.raises(LinkRefused, match="pool"):
        host.instantiate('(module (import "tvm_host" "pool0" (memory 0 65536)))', inline=True)


def every_host_import_wat() -> str:
    """A module importing every function the ABI table says TvmHost serves, with the table's signature."""
    lines = []
    for name, entry in sorted(for_deployment(ABI_HOST).items()):
        params = "".join(f" (param {t})" for t in entry.wasm_params)
        results = "".join(f" (result {t})" for t in entry.wasm_results)
        lines.append(f'(import "tvm" "{name}" (func ${name}{params}{results}))')
    lines.append('(func (export "made") (result i32) i32.const 1 i32.const 4096 call $create_region '
                 "call $region_capacity i32.wrap_i64 call $region_count i32.add)")
    return "(module " + "\n".join(lines) + ")"


def test_every_host_function_links_into_the_host_target(binaryen):
    """Lifecycle, queries, alloc_aligned, migrate...: all of the host's tvm.* reach the host from an inlined guest."""
    host = TvmHost(pools=2)
    guest = host.instantiate(every_host_import_wat(), inline=True)
    assert host.call(guest, "made") == 4096 + 1
    (info,) = host.list_regions()
    assert info.capacity == 4096 and host.python_entries == 3  # create, capacity, count: the host's control plane


def test_host_target_output_is_refused_by_the_host_in_one_line(binaryen, c_modules, tmp_path, capsys):
    linked = link(c_modules["defined"], target="host", pools=2)
    host = TvmHost(pools=2)
    for inline in (False, True):
        with pytest.raises(LinkRefused, match="tvm_host"):
            host.instantiate(linked.wasm, inline=inline)
    path = linked.save(tmp_path / "linked.wasm")
    for extra in ([], ["--inline"]):
        assert main(["run", *extra, "--invoke", "greeting_byte", str(path), "0"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "tvm_host" in err and "Traceback" not in err


def test_cli_host_target_reports_its_imports_and_how_to_run_it(binaryen, c_modules, tmp_path, capsys):
    source = tmp_path / "user.wasm"
    source.write_bytes(c_modules["imported"])
    assert main(["link", str(source), "-o", str(tmp_path / "out.wasm"), "--target", "host", "--pools", "2"]) == 0
    out = capsys.readouterr().out
    assert "target host, inlined" in out and "imports tvm_host.* (" in out and "linked in" in out
    assert f"tvm-wasm run --inline {source}" in out
