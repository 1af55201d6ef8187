"""discard on TvmHost: the range reads zeros, the rest is intact, and whole pages leave the resident set."""

from __future__ import annotations

import numpy as np
import pytest

from tvm_wasm import Handle, ReadOnly, RegionKind, TvmHost
from tvm_wasm.host.native import OS_PAGE, resident_set_bytes

MIB = 1 << 20


def pattern(n: int) -> np.ndarray:
    return ((np.arange(n, dtype=np.uint32) * 7 + 1) % 251 + 1).astype(np.uint8)  # never zero


@pytest.mark.parametrize("imported", [False, True], ids=["pool-region", "imported-region"])
def test_rss_falls_by_the_discarded_whole_pages(imported: bool) -> None:
    capacity = 96 * MIB
    with TvmHost(pools=1) as host:
        make = host.imported_region if imported else host.create_region
        r = make(RegionKind.BLOB_ARENA, capacity)
        expected = pattern(capacity)
        host.view(r)[:] = expected  # every page committed
        start, length = 3 * MIB + 123, 64 * MIB + 1000  # unaligned edges: zeroed, not released
        whole = (start + length) // OS_PAGE * OS_PAGE - -(-start // OS_PAGE) * OS_PAGE
        before = resident_set_bytes()
        host.discard(Handle(r, 1, start), length)
        after = resident_set_bytes()
        assert before - after >= 0.9 * whole, f"RSS fell by {before - after} bytes of {whole} discarded"
        expected[start : start + length] = 0
        assert np.array_equal(host.view(r), expected)  # the range reads zeros, the rest is intact
        assert host.metrics(r).bytes_discarded == length


def test_discard_is_refused_for_a_read_only_region_and_checked_like_a_store() -> None:
    with TvmHost(pools=1) as host:
        r = host.create_region(RegionKind.BLOB_ARENA, 8192, initial=b"\x01" * 8192, freeze=True)
        with pytest.raises(ReadOnly):
            host.discard(Handle(r, 1, 0), 4096)
        assert host.read(Handle(r, 1, 0), 8192) == b"\x01" * 8192
        assert host.metrics(r).bytes_discarded == 0


def test_discard_from_a_guest_through_the_raw_abi() -> None:
    wat = """(module (import "tvm" "discard" (func $discard (param i64 i32) (result i32)))
      (func (export "discard") (param i64 i32) (result i32) local.get 0 local.get 1 call $discard))"""
    with TvmHost(pools=1) as host:
        r = host.create_region(RegionKind.BLOB_ARENA, 3 * OS_PAGE, track_dirty=True)
        host.view(r)[:] = 9
        guest = host.instantiate(wat)
        assert host.call(guest, "discard", Handle(r, 1, OS_PAGE - 1).to_i64(), OS_PAGE + 2) == 0
        data = host.read(Handle(r, 1, 0), 3 * OS_PAGE)
        assert data == b"\x09" * (OS_PAGE - 1) + bytes(OS_PAGE + 2) + b"\x09" * (OS_PAGE - 1)
        assert host.dirty_pages(r) == [0, 1, 2]
        assert host.call(guest, "discard", Handle(r, 2, 0).to_i64(), 1) == 2  # a stale handle: code 2
