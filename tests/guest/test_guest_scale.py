"""More than 4 GiB from inside one module: regions across pools, sentinels at both ends, small RSS."""

from __future__ import annotations

import gc
import os
import struct

import pytest
from guest_helpers import proxy_user, s32, s64

from tvm_wasm import Handle, OutOfBounds, RegionKind
from tvm_wasm.host.native import resident_set_bytes

GiB = 1 << 30
MiB = 1 << 20
GBUF = 4096


def _address_space_ok() -> bool:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, ValueError):
        return True
    return soft == resource.RLIM_INFINITY or soft >= 64 * GiB


needs_address_space = pytest.mark.skipif(
    not _address_space_ok() or struct.calcsize("P") != 8, reason="needs a 64-bit address space of >= 64 GiB"
)
linux_only = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="RSS is read from /proc")


@needs_address_space
@linux_only
def test_ten_gib_of_regions_across_pools_with_small_rss(make_guest):
    gc.collect()
    rss_before = resident_set_bytes()
    g = make_guest(pools=4, max_pages=65536)
    user = g.link(proxy_user())  # the sentinels go through a run-time-linked user module
    caps = [2 * GiB, 2 * GiB, 2 * GiB, 0xFFFF_FFFF]  # the last one is the largest region a pool can hold
    regions = [g.create_region(RegionKind.BLOB_ARENA, cap) for cap in caps]
    infos = [g.region_info(r) for r in regions]
    assert [(i.pool, i.base) for i in infos] == [(0, 0), (0, 2 * GiB), (1, 0), (2, 0)]
    assert sum(i.capacity for i in infos) >= 6 * GiB
    assert [g.pool_memory(k).size(g.store) for k in range(4)] == [65536, 32768, 65536, 1]  # grown on demand

    def call(name: str, *args: object) -> object:
        return g.call(user, name, *args)

    for n, (r, cap) in enumerate(zip(regions, caps)):
        h = Handle(r, 1, 0)
        first, last = 0x10 + n, 0xE0 + n
        call("store_u8", h.to_i64(), 0, first)
        call("store_u8", h.to_i64(), s32(cap - 1), last)
        call("store_i64", h.to_i64(), 8, -(n + 1))
        call("store_i64", h.to_i64(), s32(cap - 16), s64(0x0123_4567_89AB_CDEF + n))
        with pytest.raises(OutOfBounds):
            call("store_u8", h.to_i64(), s32(cap), 0)  # one past the end
        with pytest.raises(OutOfBounds):
            call("load_i64", h.to_i64(), s32(cap - 7))
        assert call("load_u8", h.to_i64(), 0) == first
        assert call("load_u8", h.with_offset(cap - 1).to_i64(), 0) == last
        assert call("load_i64", h.to_i64(), 8) == -(n + 1)
        assert call("load_i64", h.to_i64(), s32(cap - 16)) == s64(0x0123_4567_89AB_CDEF + n)
        # bulk movement at the far end, through the guest memory
        g.guest_memory.write(g.store, bytes([n + 1]) * 64, GBUF)
        assert call("write", h.with_offset(cap - 128).to_i64(), GBUF, 64) == 0
        assert call("read", h.with_offset(cap - 128).to_i64(), GBUF + 1024, 128) == 0
        tail = bytes(g.guest_memory.read(g.store, GBUF + 1024, GBUF + 1024 + 128))
        assert tail[:64] == bytes([n + 1]) * 64 and tail[-1] == last
        assert call("sum_u8", h.with_offset(cap - 4096).to_i64(), 4096) == sum(tail)
        # the embedder sees the same bytes, zero-copy
        view = g.view(r)
        assert view[0] == first and view[cap - 1] == last
    # a copy from the end of the 4 GiB region to the start of the first one, across pools
    assert call("copy", Handle(regions[3], 1, caps[3] - 16).to_i64(), Handle(regions[0], 1, 16).to_i64(), 16) == 0
    assert g.view(regions[0])[16:32].tobytes() == struct.pack("<q", 0x0123_4567_89AB_CDEF + 3)[:8] + bytes(7) + bytes(
        [0xE3]
    )
    # ... while only the touched pages are resident
    grown = resident_set_bytes() - rss_before
    assert grown < 256 * MiB, f"RSS grew by {grown / MiB:.0f} MiB for {sum(caps) / GiB:.0f} GiB of regions"
