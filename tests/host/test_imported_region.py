"""Imported regions (TVM-MM): a region that is a whole memory, read by guests with native loads."""

from __future__ import annotations

import pytest

from tvm_wasm import OutOfBounds, PolicyViolation, RegionKind, RegionNotFound, Slab, TvmError


def native_guest(region_id: int, pages: int) -> str:
    return f"""(module
      (import "tvm" "r{region_id}" (memory {pages} {pages}))
      (import "tvm" "load_u32" (func $load_u32 (param i64 i32) (result i32)))
      (func (export "get") (param i32) (result i32) local.get 0 i32.load)
      (func (export "put") (param i32 i32) local.get 0 local.get 1 i32.store)
      (func (export "via_abi") (param i64) (result i32) local.get 0 i32.const 0 call $load_u32))"""


def test_guest_reads_and_writes_natively_what_python_sees(make_host) -> None:
    host = make_host()
    region = host.imported_region(RegionKind.HOT_HEAP, 100_000)  # 2 pages
    handle = host.alloc(region, 8)
    host.write(handle, (0xDEADBEEF).to_bytes(4, "little") + b"\0\0\0\0")
    guest = host.instantiate(native_guest(region, 2))
    assert host.call(guest, "get", handle.offset) == 0xDEADBEEF - (1 << 32)  # i32 is signed
    host.call(guest, "put", 4, 1234)
    assert host.read(handle.with_offset(4), 4) == (1234).to_bytes(4, "little")
    assert host.view(region)[4] == 1234 & 0xFF
    assert host.metrics(region).bytes_written == 8
    assert host.python_entries == 0


def test_memory_is_exactly_the_region_and_cannot_grow(make_host) -> None:
    host = make_host()
    region = host.imported_region(RegionKind.OBJECT_ARENA, 65_536)
    memory = host.imported_memory(region)
    assert memory.size(host.store) == 1
    with pytest.raises(Exception):
        memory.grow(host.store, 1)
    guest = host.instantiate(native_guest(region, 1))
    with pytest.raises(Exception):  # a native load past the region traps in the engine
        host.call(guest, "get", 65_536)
    with pytest.raises(OutOfBounds):
        host.write(host.alloc(region, 16).with_offset(65_530), b"x" * 16)


def test_lifecycle_operations_that_would_need_a_fault_are_refused(make_host) -> None:
    host = make_host()
    region = host.imported_region(RegionKind.OBJECT_ARENA, 4096)
    for operation in (host.spill_region, host.demote_region, host.mark_external, host.compact_region):
        with pytest.raises(PolicyViolation):
            operation(region)  # compaction: its bytes may not move, whatever the allocator
    pinnable = host.imported_region(RegionKind.HOT_HEAP, 4096)
    host.pin(pinnable)
    assert host.region_info(pinnable).pinned
    host.unpin(pinnable)


def test_raw_abi_handle_access_answers_code_9(make_host) -> None:
    host = make_host()
    region = host.imported_region(RegionKind.HOT_HEAP, 4096)
    handle = host.alloc(region, 4)
    guest = host.instantiate(native_guest(region, 1))
    with pytest.raises(TvmError) as caught:
        host.call(guest, "via_abi", handle.to_i64())
    assert caught.value.code == 9


def test_destroy_zeroes_the_memory_and_forgets_the_region(make_host) -> None:
    host = make_host()
    region = host.imported_region(RegionKind.HOT_HEAP, 4096, allocator=Slab(64))
    handle = host.alloc(region, 64)
    host.write(handle, b"\xff" * 64)
    guest = host.instantiate(native_guest(region, 1))
    host.destroy_region(region)
    assert host.call(guest, "get", handle.offset) == 0
    with pytest.raises(RegionNotFound):
        host.imported_memory(region)
    with pytest.raises(RegionNotFound):
        host.region_info(region)
