"""``--target guest``: compiled C modules (own memory or env.memory) merged with the self-contained module."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import wasmtime
from c_guests import WASI_C, clang, expected_fill_sum

from tvm_wasm import Handle, RegionKind, StaleHandle
from tvm_wasm.guest import build_module
from tvm_wasm.guest.instance import GuestInstance
from tvm_wasm.host.native import memory_view
from tvm_wasm.linker import link
from tvm_wasm.runtime import sections


@pytest.fixture(scope="module")
def linked(binaryen, c_modules):
    return {kind: link(wasm, target="guest", pools=2, max_pages=64) for kind, wasm in c_modules.items()}


@pytest.mark.parametrize("kind", ["defined", "imported"])
@pytest.mark.parametrize("n", [4096, 65536])
def test_write_from_the_users_memory_lands_in_the_region(linked, c_modules, kind, n):
    g = GuestInstance(linked[kind].wasm)
    region = g.create_region(RegionKind.OBJECT_ARENA, 1 << 17)
    assert g.raw("fill_sum", region, n) & 0xFFFF_FFFF == expected_fill_sum(n)
    h = Handle(region, 1, 0)
    expected = bytes((i * 7 + b"linked"[i % 6]) & 0xFF for i in range(n))
    assert g.read(h, n) == expected  # the region holds what the user's memory held
    assert g.raw("round_trip", h.to_i64(), n) == 0  # and read copies back into the user's memory
    g.destroy_region(region)
    assert g.raw("round_trip", h.to_i64(), n) == -1  # the read failed...
    assert g.last_error() == StaleHandle.code  # ...as stale


@pytest.mark.parametrize("kind", ["defined", "imported"])
def test_memory_is_the_users_and_data_segments_keep_their_size(linked, c_modules, kind):
    module = linked[kind]
    declared = sections.memory_as_import(c_modules[kind])[1]
    assert module.memory == declared and declared.min >= 3  # two 64 KiB buffers in .bss, and the stack
    g = GuestInstance(module.wasm)
    assert g.guest_memory.size(g.store) == declared.min
    assert chr(g.raw("greeting_byte", 0)) == "l"  # the user's data segment is in place
    user_data = sections.data_segment_sizes(c_modules[kind])
    linked_data = sections.data_segment_sizes(module.wasm)
    runtime = len(sections.data_segment_sizes(build_module(pools=2, max_pages=64).wasm))  # the header, slot 65535's keys
    assert sorted(user_data) == sorted(linked_data[runtime:])  # the runtime's segments, then the user's, unchanged
    assert module.imports == ()


def test_linked_module_validates_with_wasm_tools(linked, tmp_path):
    from tvm_wasm.linker import tools

    for module in linked.values():
        path = tmp_path / "m.wasm"
        module.save(path)
        subprocess.run([tools.wasm_tools(), "validate", str(path)], check=True)


def test_inlined_guest_target_behaves_the_same(binaryen, c_modules):
    module = link(c_modules["imported"], target="guest", pools=2, max_pages=64, inline_runtime=True)
    assert module.inlined
    g = GuestInstance(module.wasm)
    region = g.create_region(RegionKind.OBJECT_ARENA, 8192)
    assert g.raw("fill_sum", region, 4096) & 0xFFFF_FFFF == expected_fill_sum(4096)
    g.destroy_region(region)
    with pytest.raises(StaleHandle):
        g.raw("load_u32", Handle(region, 1, 0).to_i64(), 0)


def test_wasi_guest_keeps_its_wasi_imports_and_runs(binaryen, tmp_path):
    wasm = clang(WASI_C, tmp_path / "wasi.wasm", target="wasm32-wasi")
    module = link(wasm, target="guest", pools=1, max_pages=16)
    assert module.imports and all(m == "wasi_snapshot_preview1" for m, _ in module.imports)
    engine = GuestInstance(build_tiny()).engine
    store = wasmtime.Store(engine)
    config = wasmtime.WasiConfig()
    out = tmp_path / "stdout.txt"
    config.stdout_file = str(out)
    store.set_wasi(config)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    instance = linker.instantiate(store, wasmtime.Module(engine, module.wasm))
    try:
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as exit_trap:
        assert exit_trap.code == 0
    assert out.read_text() == f"region 1 sum {sum(i * i for i in range(16))}\n"


def build_tiny() -> bytes:
    return bytes(wasmtime.wat2wasm("(module)"))


def test_cli_links_and_reports(binaryen, c_modules, tmp_path):
    source = tmp_path / "user.wasm"
    source.write_bytes(c_modules["defined"])
    out = tmp_path / "out.wasm"
    cli = [sys.executable, "-m", "tvm_wasm.cli", "link", str(source), "-o", str(out), "--pools", "2", "--max-pages", "8"]
    done = subprocess.run(cli, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "target guest" in done.stdout and out.exists()
    g = GuestInstance(out.read_bytes())
    assert g.pools == 2
    region = g.create_region(RegionKind.OBJECT_ARENA, 8192)
    assert g.raw("fill_sum", region, 4096) & 0xFFFF_FFFF == expected_fill_sum(4096)
    assert np.count_nonzero(g.view(region)[:4096]) > 4000


def test_cli_refuses_source_and_names_the_reason(binaryen, tmp_path):
    bad = tmp_path / "bad.wat"
    bad.write_text('(module (import "tvm" "mem0" (memory 1)))')
    done = subprocess.run([sys.executable, "-m", "tvm_wasm.cli", "link", str(bad), "-o", str(tmp_path / "o.wasm")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith(f"tvm-wasm: error: LinkRefused: {bad}: ") and "tvm.mem0" in done.stderr
    assert "Traceback" not in done.stderr


STORE_LOOP_C = r"""
#include <stdint.h>
#define TVM(name) __attribute__((import_module("tvm"), import_name(#name)))
TVM(store_u32) void tvm_store_u32(int64_t h, int32_t off, uint32_t v);
/* n words through typed stores in one loop (what an optimising linker may hoist) */
__attribute__((export_name("store_words"))) void store_words(int64_t h, int32_t n) {
  for (int32_t i = 0; i < n; i++) tvm_store_u32(h, i * 4, (uint32_t)i + 1);
}
"""


@pytest.mark.parametrize("inline_runtime", [False, True])
def test_stores_of_linked_code_are_zeroed_when_their_region_is_freed(binaryen, tmp_path, inline_runtime):
    """However the linker inlines (or hoists) typed stores, they mark the pages the module zeroes on destroy."""
    module = link(clang(STORE_LOOP_C, tmp_path / "loop.wasm"), target="guest", pools=1, max_pages=64,
                  inline_runtime=inline_runtime)
    g = GuestInstance(module.wasm)
    capacity = 3 << 16
    region = g.create_region(RegionKind.OBJECT_ARENA, capacity)
    g.raw("store_words", Handle(region, 1, 0).to_i64(), capacity // 4)
    pool = memory_view(g.pool_memory(0), g.store)
    base = g.region_info(region).base
    assert (pool[base : base + capacity].view(np.uint32) == np.arange(1, capacity // 4 + 1)).all()
    g.destroy_region(region)
    again = g.create_region(RegionKind.OBJECT_ARENA, capacity)
    assert g.region_info(again).base == base
    assert not memory_view(g.pool_memory(0), g.store)[base : base + capacity].any(), "old bytes in a new region"
