"""Scale: working sets beyond 4 GiB across pools, and spilled RAM going back to the OS."""

from __future__ import annotations

import gc
import hashlib
import os
import struct

import numpy as np
import pytest

from host_guests import instantiate, s64
from tvm_wasm import FileBackingStore, Handle, OutOfBounds, RegionKind, Residency
from tvm_wasm.host import native

GiB = 1 << 30
MiB = 1 << 20
ARENA = RegionKind.OBJECT_ARENA


def _address_space_ok() -> bool:
    """Six 4 GiB pool reservations need a 64-bit address space without a tight ulimit -v."""
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
def test_six_gib_of_regions_across_pools(make_host):
    gc.collect()
    rss_before = native.resident_set_bytes()  # what earlier tests left in this process is not ours
    host = make_host(pools=4)
    g = instantiate(host)
    regions = [host.create_region(ARENA, 2 * GiB) for _ in range(3)]
    spans = [host._regions[r].storage for r in regions]
    assert [s.pool for s in spans] == [0, 0, 1]
    assert sum(host.region_info(r).capacity for r in regions) == 6 * GiB
    cap = 2 * GiB
    for i, r in enumerate(regions):
        h = Handle(r, 1, 0)
        first, last = 0x11 * (i + 1), 0xEE - i
        g("store_u8", h, 0, first)
        g("store_u8", h, cap - 1, last)
        g("store_i64", h, 8, -(i + 1))
        g("store_i64", h, cap - 16, s64(0x0123_4567_89AB_CDEF + i))
        with pytest.raises(OutOfBounds):
            g("store_u8", h, cap, 0)  # one past the end
        with pytest.raises(OutOfBounds):
            g("load_i64", h, cap - 7)
        assert g("load_u8", h, 0) == first
        assert g("load_u8", h.with_offset(cap - 1), 0) == last
        assert g("load_i64", h, 8) == -(i + 1)
        assert g("load_i64", h, cap - 16) == s64(0x0123_4567_89AB_CDEF + i)
        # bulk transfers at both ends, through the guest's memory
        g.put(0, bytes([i + 1]) * 64)
        assert g("write", h.with_offset(cap - 128), 0, 64) == 0
        assert g("read", h.with_offset(cap - 128), 1024, 128) == 0
        assert g.get(1024, 64) == bytes([i + 1]) * 64
        assert g.get(1024 + 112, 16) == struct.pack("<q", 0x0123_4567_89AB_CDEF + i)[:8] + bytes(7) + bytes([last])
        assert g("read", h, 4096, 16) == 0
        assert g.get(4096, 16) == bytes([first]) + bytes(7) + struct.pack("<q", -(i + 1))
        assert g("sum_u8", h.with_offset(cap - 4096), 4096) == 64 * (i + 1) + sum(
            struct.pack("<q", 0x0123_4567_89AB_CDEF + i)) + last
    # Python sees the same bytes, zero-copy
    for i, r in enumerate(regions):
        view = host.view(r)
        assert view[0] == 0x11 * (i + 1) and view[cap - 1] == 0xEE - i
    # copies between pools, from the end of one region to the start of another
    assert g("copy", Handle(regions[0], 1, cap - 16), Handle(regions[2], 1, 16), 16) == 0
    assert g("eq", Handle(regions[0], 1, cap - 16), Handle(regions[2], 1, 16), 16) == 1
    assert g("copy_region", regions[2], 0, regions[1], cap - 64, 64) == 0
    assert g("eq", Handle(regions[2], 1, 0), Handle(regions[1], 1, cap - 64), 64) == 1
    assert host.python_entries == 2 * len(regions)  # only the traps entered Python, once each, to raise
    grown = native.resident_set_bytes() - rss_before
    assert grown < 512 * MiB, f"RSS grew by {grown / MiB:.0f} MiB for 6 GiB of regions"


@linux_only
def test_spilled_regions_give_ram_back_and_load_back_intact(make_host, tmp_path):
    host = make_host(backing=FileBackingStore(tmp_path))
    g = instantiate(host)
    count, size = 4, 64 * MiB
    rng = np.random.default_rng(123)
    regions = [host.create_region(ARENA, size) for _ in range(count)]
    digests, hashes = {}, {}
    for r in regions:
        host.view(r)[:] = np.frombuffer(rng.bytes(size), dtype=np.uint8)  # every page touched
        digests[r] = hashlib.blake2b(host.view(r), digest_size=16).digest()
        hashes[r] = g.fnv1a(Handle(r, 1, 0), size)
    gc.collect()
    before = native.resident_set_bytes()
    for r in regions:
        host.spill_region(r)
    gc.collect()
    after = native.resident_set_bytes()
    assert before - after >= 200 * MiB, f"RSS fell by only {(before - after) / MiB:.0f} MiB"
    assert all(host.region_info(r).residency is Residency.COLD for r in regions)
    # back in through the data plane: one fault per region, every byte restored
    for r in regions:
        assert g.fnv1a(Handle(r, 1, 0), size) == hashes[r]
        assert host.region_info(r).residency is Residency.HOT
        assert hashlib.blake2b(host.view(r), digest_size=16).digest() == digests[r]
    assert host.python_entries == count
    assert sum(host.metrics(r).faults for r in regions) == count
