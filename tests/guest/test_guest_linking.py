"""Run-time linking on wasmtime: separately built user modules import ``tvm.*`` and share regions."""

from __future__ import annotations

import pytest
import wasmtime

from tvm_wasm import Handle, RegionKind, StaleHandle
from tvm_wasm.runtime.link_errors import LinkRefused

PRODUCER = """
(module
  (import "tvm" "memory" (memory 1))
  (import "tvm" "alloc" (func $alloc (param i32 i32) (result i64)))
  (import "tvm" "write" (func $write (param i64 i32 i32) (result i32)))
  (import "tvm" "store_u32" (func $store_u32 (param i64 i32 i32)))
  ;; a 16-byte record: a plain store into the shared default memory, then one write into the region
  (func (export "produce") (param $region i32) (param $tag i32) (result i64) (local $h i64)
    (local.set $h (call $alloc (local.get $region) (i32.const 16)))
    (i64.store (i32.const 512) (i64.const 0x0807060504030201))
    (drop (call $write (local.get $h) (i32.const 512) (i32.const 8)))
    (call $store_u32 (local.get $h) (i32.const 8) (local.get $tag))
    (local.get $h)))
"""

CONSUMER = """
(module
  (import "tvm" "memory" (memory 1))
  (import "tvm" "read" (func $read (param i64 i32 i32) (result i32)))
  (import "tvm" "load_u32" (func $load_u32 (param i64 i32) (result i32)))
  (import "tvm" "sum_u8" (func $sum_u8 (param i64 i32) (result i64)))
  (func (export "tag") (param $h i64) (result i32) (call $load_u32 (local.get $h) (i32.const 8)))
  (func (export "sum") (param $h i64) (result i64) (call $sum_u8 (local.get $h) (i32.const 8)))
  (func (export "fetch") (param $h i64) (result i32) (call $read (local.get $h) (i32.const 1024) (i32.const 16))))
"""


def test_producer_and_consumer_share_regions_through_one_module(make_guest):
    g = make_guest(pools=2, max_pages=4)
    producer, consumer = g.link(PRODUCER), g.link(CONSUMER)
    region = g.create_region(RegionKind.OBJECT_ARENA, 1024)
    h = g.call(producer, "produce", region, 0xABCD)
    assert Handle.unpack(h) == Handle(region, 1, 0)
    assert g.call(consumer, "tag", h) == 0xABCD
    assert g.call(consumer, "sum", h) == sum(range(1, 9))
    assert g.call(consumer, "fetch", h) == 0
    # both modules import the same default memory: the module's own
    assert bytes(g.guest_memory.read(g.store, 1024, 1040)) == bytes(range(1, 9)) + (0xABCD).to_bytes(8, "little")
    g.destroy_region(region)
    with pytest.raises(StaleHandle):
        g.call(consumer, "tag", h)
    assert g.call(consumer, "fetch", h) == 2


def test_a_user_module_asking_for_something_the_module_lacks_fails_to_link(make_guest):
    g = make_guest(pools=1, max_pages=4)
    with pytest.raises(ValueError, match="no_such_export"):  # a typed refusal, not a bare wasmtime error
        g.link('(module (import "tvm" "no_such_export" (func)))')
    with pytest.raises(LinkRefused, match=r"import tvm\.alloc: signature \(i32\) -> \(i32\) does not match the "
                                          r"runtime's \(i32 i32\) -> \(i64\)"):
        g.link('(module (import "tvm" "alloc" (func (param i32) (result i32))))')  # wrong signature


# ---------------------------------------------------------------- the user module's memory
OWN_MEMORY = """(module
  (import "tvm" "write" (func $write (param i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "put") (param $h i64) (result i32) (call $write (local.get $h) (i32.const 0) (i32.const 16))))"""


def test_a_module_defining_its_own_memory_is_refused_not_served_from_the_wrong_memory(make_guest):
    from tvm_wasm.runtime.link_errors import LinkRefused

    g = make_guest(pools=1, max_pages=4)
    with pytest.raises(LinkRefused, match="defines its own memory"):
        g.link(OWN_MEMORY)
    with pytest.raises(LinkRefused, match="defines its own memory"):
        g.link(bytes(wasmtime.wat2wasm(OWN_MEMORY)))


def test_env_memory_is_served_with_the_modules_memory_grown_to_the_import_minimum(make_guest):
    g = make_guest(pools=1, max_pages=4)
    user = g.link("""(module
      (import "env" "memory" (memory 5))
      (import "tvm" "write" (func $write (param i64 i32 i32) (result i32)))
      (func (export "put") (param $h i64) (result i32)
        (i32.store (i32.const 300000) (i32.const 0x04030201))
        (call $write (local.get $h) (i32.const 300000) (i32.const 4))))""")
    assert g.guest_memory.size(g.store) == 5
    region = g.create_region(RegionKind.OBJECT_ARENA, 64)
    h = g.alloc(region, 4)
    assert g.call(user, "put", h.to_i64()) == 0
    assert g.read(h, 4) == bytes([1, 2, 3, 4])


@pytest.mark.parametrize("imports, reason", [
    ('(import "env" "memory" (memory 1 2))', "maximum"),
    ('(import "other" "memory" (memory 1))', "may import only"),
])
def test_memory_imports_that_cannot_be_served_are_refused(make_guest, imports, reason):
    from tvm_wasm.runtime.link_errors import LinkRefused

    g = make_guest(pools=1, max_pages=4)
    with pytest.raises(LinkRefused, match=reason):
        g.link(f"(module {imports})")


def test_a_module_defining_its_own_memory_without_guest_pointers_is_served_from_its_own_memory(make_guest):
    """The rule: a defined memory is refused only with a guest-pointer import (docs/guests.md, README)."""
    g = make_guest(pools=1, max_pages=4)
    user = g.link("""(module
      (import "tvm" "store_u32" (func $store (param i64 i32 i32)))
      (import "tvm" "load_u32" (func $load (param i64 i32) (result i32)))
      (memory (export "memory") 1) (data (i32.const 16) "\\2a")
      (func (export "copy") (param $h i64) (result i32)
        (call $store (local.get $h) (i32.const 0) (i32.load8_u (i32.const 16)))
        (call $load (local.get $h) (i32.const 0))))""")
    region = g.create_region(RegionKind.OBJECT_ARENA, 64)
    h = g.alloc(region, 4)
    assert g.call(user, "copy", h.to_i64()) == 42
    assert g.read(h, 4) == (42).to_bytes(4, "little")


@pytest.mark.parametrize("wat, reason", [
    ('(module (memory 1) (memory 1))', "declares 2 memories"),  # the static linker's words
    ('(module (import "tvm" "read" (func (param i64 i32 i32) (result i32))) (import "env" "memory" (memory 1)) '
     '(memory 1))', "declares 2 memories"),
    ('(module (import "env" "log" (func (param i32))))', r"import env\.log: GuestInstance\.link serves only"),
    ('(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))))',
     r"import wasi_snapshot_preview1\.proc_exit: GuestInstance\.link serves only"),
    ('(module (import "env" "memory" (memory 1 2 shared)))', "env.memory is shared"),
    ('(module (import "tvm" "memory" (memory i64 1)))', "tvm.memory is 64-bit"),
    ('(module (import "tvm" "trap_code" (global i32)))', "not a global"),
    ("(module (func (export \"f\") i32.const 1))", "not a valid module"),
])
def test_what_run_time_linking_cannot_serve_is_refused_typed(make_guest, wat, reason):
    from tvm_wasm import TvmError

    g = make_guest(pools=1, max_pages=4)
    with pytest.raises(LinkRefused, match=reason) as refused:
        g.link(wat)
    assert isinstance(refused.value, TvmError) and isinstance(refused.value, ValueError)
    assert g.region_count() == 0 and g.guest_memory.size(g.store) == 1  # nothing changed
