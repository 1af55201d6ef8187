"""A budget with no backing store: a region beyond it is refused as AllocationFailed, nothing is lost."""

from __future__ import annotations

import pytest

from tvm_wasm import AllocationFailed, RegionKind, Residency


def test_region_beyond_the_budget_without_a_store_is_refused(make_host) -> None:
    host = make_host(budget_bytes=96 << 10)
    kept = host.create_region(RegionKind.BLOB_ARENA, 64 << 10)
    host.view(kept)[:4] = [1, 2, 3, 4]
    with pytest.raises(AllocationFailed, match="no backing store to spill to") as caught:
        host.create_region(RegionKind.BLOB_ARENA, 64 << 10)
    assert caught.value.code == 5 and caught.value.capacity == 64 << 10
    assert [info.id for info in host.list_regions()] == [kept]
    assert host.region_info(kept).residency is Residency.HOT and list(host.view(kept)[:4]) == [1, 2, 3, 4]
    assert host.create_region(RegionKind.BLOB_ARENA, 32 << 10)  # what still fits is made
