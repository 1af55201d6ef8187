"""A trap is reported with its own cause, never an earlier one; errors name what was accessed.

Inputs from the field reports: an out-of-bounds typed access made through
the plain wasmtime API (not ``host.call``), then ``host.call(guest, "div", 0)``
where ``div`` divides by its argument: the division must come out as the
wasmtime trap it is. The same through ``GuestInstance.call`` and ``raw``.
"""

from __future__ import annotations

import pytest
import wasmtime

from tvm_wasm import Handle, NotResident, OutOfBounds, RegionNotFound, StaleHandle, TvmError
from tvm_wasm.abi import TRAP_CAUSE, function_index
from tvm_wasm.core.backing import MemoryBackingStore

GUEST = """(module
  (import "tvm" "load_u32" (func $load_u32 (param i64 i32) (result i32)))
  (import "tvm" "store_i64" (func $store_i64 (param i64 i32 i64)))
  (import "tvm" "try_load_u32" (func $try_load_u32 (param i64 i32 i32) (result i32)))
  (import "tvm" "try_store_i64" (func $try_store_i64 (param i64 i32 i64) (result i32)))
  (import "tvm" "last_error" (func $last_error (result i32)))
  (import "tvm" "memory" (memory 1))
  (func (export "load") (param i64 i32) (result i32) local.get 0 local.get 1 call $load_u32)
  (func (export "store") (param i64 i32 i64) local.get 0 local.get 1 local.get 2 call $store_i64)
  (func (export "try_load") (param i64 i32 i32) (result i32) local.get 0 local.get 1 local.get 2 call $try_load_u32)
  (func (export "try_store") (param i64 i32 i64) (result i32) local.get 0 local.get 1 local.get 2 call $try_store_i64)
  (func (export "last_error") (result i32) call $last_error)
  (func (export "word") (param i32) (result i32) local.get 0 i32.load)
  (func (export "div") (param i32) (result i32) i32.const 100 local.get 0 i32.div_u)
  (func (export "boom") unreachable))"""


# ---------------------------------------------------------------- TvmHost
def test_host_division_after_a_plain_api_typed_trap_is_the_division(make_host):
    host = make_host()
    guest = host.instantiate(GUEST)
    r = host.create_region(1, 64)
    h = host.alloc(r, 16)
    load = guest.exports(host.store)["load"]
    with pytest.raises(OutOfBounds) as info:  # typed, even through the plain wasmtime API
        load(host.store, h.to_i64(), 100)
    assert (info.value.offset, info.value.length, info.value.capacity, info.value.generation) == (100, 4, 64, 1)
    with pytest.raises(wasmtime.Trap, match="divide by zero") as trap:
        host.call(guest, "div", 0)
    assert not isinstance(trap.value, TvmError)
    with pytest.raises(wasmtime.Trap, match="unreachable"):
        host.call(guest, "boom")
    assert host.call(guest, "div", 4) == 25  # and the instance carries on


def test_host_errors_name_the_accessed_offset_not_the_handles(make_host):
    host = make_host(backing=MemoryBackingStore(), strict=True)
    guest = host.instantiate(GUEST)
    r = host.create_region(1, 256)
    h = Handle(r, 1, 200)
    with pytest.raises(OutOfBounds) as info:
        host.call(guest, "store", h.to_i64(), 52, 7)  # 200 + 52 + 8 > 256
    e = info.value
    assert (e.region_id, e.generation, e.offset, e.length, e.capacity) == (r, 1, 252, 8, 256)
    assert "store_i64" in str(e) and "0xfc" in str(e)
    with pytest.raises(StaleHandle) as info:
        host.call(guest, "load", Handle(r, 3, 0).to_i64(), 8)
    assert (info.value.generation, info.value.offset) == (3, 8) and "generation 1" in str(info.value)
    with pytest.raises(RegionNotFound):
        host.call(guest, "load", Handle(999, 1, 0).to_i64(), 0)
    host.spill_region(r)
    with pytest.raises(NotResident):
        host.call(guest, "load", h.to_i64(), 0)


def test_host_try_variants_return_codes_and_write_only_on_success(make_host):
    host = make_host()
    guest = host.instantiate(GUEST)
    r = host.create_region(1, 64)
    h = host.alloc(r, 16)
    host.write(h, (0xDEADBEEF).to_bytes(4, "little"))
    assert host.call(guest, "try_load", h.to_i64(), 0, 32) == 0
    assert host.call(guest, "word", 32) & 0xFFFF_FFFF == 0xDEADBEEF
    assert host.call(guest, "try_load", h.to_i64(), 61, 64) == OutOfBounds.code
    assert host.call(guest, "last_error") == OutOfBounds.code
    assert host.call(guest, "word", 64) == 0
    assert host.call(guest, "try_load", h.to_i64(), 0, 65536 - 2) == 7  # out pointer past guest memory
    assert host.call(guest, "try_store", h.to_i64(), 57, 1) == OutOfBounds.code
    assert host.call(guest, "try_store", Handle(r, 2, 0).to_i64(), 0, 1) == StaleHandle.code
    assert host.call(guest, "try_store", h.to_i64(), 8, -1) == 0
    assert host.read(h.with_offset(8), 8) == b"\xff" * 8
    assert host.python_entries == 0  # no trap, no slow path


# ---------------------------------------------------------------- the self-contained module
def test_module_division_after_a_plain_api_typed_trap_is_the_division(make_guest):
    g = make_guest()
    user = g.link(GUEST)
    r = g.create_region(1, 64)
    h = g.alloc(r, 16)
    with pytest.raises(wasmtime.Trap):  # the plain API: a bare trap, with its cause recorded
        user.exports(g.store)["load"](g.store, h.to_i64(), 100)
    cause = g.trap_cause()
    assert cause["trap_seq"] == 1 and cause["trap_code"] == OutOfBounds.code
    assert (cause["trap_offset"], cause["trap_length"], cause["trap_capacity"]) == (100, 4, 64)
    assert cause["trap_function"] == function_index("load_u32") and cause["trap_generation"] == 1
    for call in (lambda: g.call(user, "div", 0), lambda: g.raw("region_count") and g.call(user, "div", 0)):
        with pytest.raises(wasmtime.Trap, match="divide by zero") as trap:
            call()
        assert not isinstance(trap.value, TvmError)
    with pytest.raises(wasmtime.Trap, match="unreachable"):
        g.call(user, "boom")
    # a typed trap during the call is still typed, and names what was accessed
    with pytest.raises(OutOfBounds) as info:
        g.call(user, "store", h.to_i64(), 60, 0)
    assert (info.value.offset, info.value.length, info.value.capacity) == (60, 8, 64)
    assert g.trap_seq() == 2
    with pytest.raises(wasmtime.Trap, match="divide by zero"):
        g.call(user, "div", 0)


def test_module_trap_cause_globals_are_the_tables():
    assert [f.name for f in TRAP_CAUSE][0] == "trap_seq"


def test_module_try_variants(make_guest):
    g = make_guest()
    user = g.link(GUEST)
    r = g.create_region(1, 64)
    h = g.alloc(r, 16)
    g.write(h, (0xDEADBEEF).to_bytes(4, "little"))
    assert g.call(user, "try_load", h.to_i64(), 0, 32) == 0
    assert g.call(user, "word", 32) & 0xFFFF_FFFF == 0xDEADBEEF
    assert g.call(user, "try_load", h.to_i64(), 61, 64) == OutOfBounds.code
    assert g.call(user, "last_error") == OutOfBounds.code
    assert g.call(user, "try_store", Handle(r, 2, 0).to_i64(), 0, 1) == StaleHandle.code
    assert g.call(user, "try_store", h.to_i64(), 8, -1) == 0
    assert g.read(h.with_offset(8), 8) == b"\xff" * 8
    assert g.trap_seq() == 0
