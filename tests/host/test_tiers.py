"""Host-side tiering: byte budget, LRU spill order, span reuse, madvise, compaction in pools."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest

from host_guests import instantiate
from tvm_wasm import (
    AllocationFailed,
    FileBackingStore,
    Freelist,
    Handle,
    MemoryBackingStore,
    Pinned,
    RegionKind,
    Residency,
)
from tvm_wasm.host import native

ARENA = RegionKind.OBJECT_ARENA
UNIT = 65536


def residency(host, region_id):
    return host.region_info(region_id).residency


def test_spills_warm_before_hot_then_lru_including_data_plane_use(make_host):
    host = make_host(backing=MemoryBackingStore(), budget_bytes=3 * UNIT)
    g = instantiate(host)
    a = host.create_region(ARENA, UNIT)  # Hot, oldest
    w = host.create_region(RegionKind.PAGE_STORE, UNIT)  # Warm
    c = host.create_region(ARENA, UNIT)  # Hot
    d = host.create_region(ARENA, UNIT)  # needs room: the Warm region goes first, though A is older
    assert residency(host, w) is Residency.COLD
    assert [residency(host, x) for x in (a, c, d)] == [Residency.HOT] * 3
    # the guest uses A (pure wasm, no Python entry): A is now the most recently used
    assert g("load_u8", Handle(a, 1, 0), 0) == 0
    assert host.python_entries == 0
    e = host.create_region(ARENA, UNIT)
    assert residency(host, c) is Residency.COLD, host.dump_layout()
    assert residency(host, a) is Residency.HOT
    # guest writes count as use too; C faulting back in then spills D, the least recently used
    g("store_u8", Handle(e, 1, 0), 0, 1)
    g("store_u8", Handle(a, 1, 0), 0, 1)
    assert g("load_u8", Handle(c, 1, 0), 0) == 0  # faults C in
    assert host.python_entries == 1
    assert residency(host, d) is Residency.COLD
    assert {x for x in (a, c, e) if residency(host, x) is Residency.HOT} == {a, c, e}
    assert host.resident_bytes() <= 3 * UNIT


def test_budget_never_exceeded_under_random_use(make_host, tmp_path):
    budget = 5 * UNIT
    host = make_host(backing=FileBackingStore(tmp_path), budget_bytes=budget)
    g = instantiate(host)
    rng = np.random.default_rng(2)
    regions: dict[int, bytes] = {}
    kinds = [ARENA, RegionKind.BLOB_ARENA, RegionKind.PAGE_STORE]
    for step in range(150):
        op = rng.integers(5)
        if op == 0 or not regions:
            size = int(rng.integers(1, 2 * UNIT))
            r = host.create_region(kinds[int(rng.integers(3))], size)
            data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            host.write(Handle(r, 1, 0), data)
            regions[r] = data
        elif op == 1:
            r = int(rng.choice(list(regions)))
            off = int(rng.integers(len(regions[r])))
            assert g("load_u8", Handle(r, 1, 0), off) == regions[r][off]
        elif op == 2:
            r = int(rng.choice(list(regions)))
            n = len(regions[r])
            assert g("sum_u8", Handle(r, 1, 0), n) == sum(regions[r])
        elif op == 3:
            r = int(rng.choice(list(regions)))
            host.destroy_region(r)
            del regions[r]
        else:
            r = int(rng.choice(list(regions)))
            (host.promote_region if rng.integers(2) else host.demote_region)(r)
        assert host.resident_bytes() <= budget, (step, host.dump_layout())
        spans = sum(host._regions[x].storage.length for x in regions if residency(host, x).is_resident)
        assert spans == host.resident_bytes()
    for r, data in regions.items():
        assert host.read(Handle(r, 1, 0), len(data)) == data
        assert host.resident_bytes() <= budget


def test_pinned_and_unspillable_are_never_spilled(make_host):
    host = make_host(backing=MemoryBackingStore(), budget_bytes=3 * UNIT)
    g = instantiate(host)
    heap = host.create_region(RegionKind.HOT_HEAP, UNIT)  # unspillable
    pinned = host.create_region(RegionKind.HOT_HEAP, UNIT)
    host.pin(pinned)
    arena = host.create_region(ARENA, UNIT)
    host.spill_region(arena)
    other = host.create_region(ARENA, UNIT)  # fits: 3 units resident
    count = len(host)
    with pytest.raises(AllocationFailed):
        host.create_region(ARENA, 2 * UNIT)  # only `other` could go: still no room for 2 units
    assert residency(host, other) is Residency.HOT  # a hopeless request spills nothing
    assert len(host) == count
    with pytest.raises(AllocationFailed):
        host.create_region(ARENA, 4 * UNIT)  # can never fit
    # the guest faulting the arena back in spills `other`, never the heap or the pinned region
    assert g("load_u8", Handle(arena, 1, 0), 0) == 0
    assert residency(host, other) is Residency.COLD
    assert residency(host, arena) is Residency.HOT
    assert residency(host, heap) is Residency.HOT and residency(host, pinned) is Residency.HOT
    assert host.resident_bytes() <= 3 * UNIT
    with pytest.raises(Pinned):
        host.spill_region(pinned)
    # the failed creations took no region id
    assert host.create_region(RegionKind.SCRATCH, 1) == other + 1


def test_fault_without_room_reports_allocation_failed(make_host):
    host = make_host(backing=MemoryBackingStore(), budget_bytes=2 * UNIT)
    g = instantiate(host)
    cold = host.create_region(ARENA, UNIT)
    host.spill_region(cold)
    host.create_region(RegionKind.HOT_HEAP, UNIT)
    host.create_region(RegionKind.HOT_HEAP, UNIT)
    assert g("read", Handle(cold, 1, 0), 0, 4) == AllocationFailed.code
    with pytest.raises(AllocationFailed):
        g("load_u8", Handle(cold, 1, 0), 0)
    assert residency(host, cold) is Residency.COLD
    assert host.resident_bytes() == 2 * UNIT


def test_copy_between_cold_regions_when_only_one_fits(make_host):
    host = make_host(backing=MemoryBackingStore(), budget_bytes=UNIT)
    g = instantiate(host)
    a = host.create_region(ARENA, UNIT)
    host.write(Handle(a, 1, 0), b"a" * 16)
    b = host.create_region(ARENA, UNIT)  # spills a
    assert residency(host, a) is Residency.COLD
    assert g("copy", Handle(a, 1, 0), Handle(b, 1, 0), 16) == AllocationFailed.code
    assert host.resident_bytes() <= UNIT
    assert host.read(Handle(a, 1, 0), 16) == b"a" * 16


def test_spans_of_destroyed_and_spilled_regions_are_reused(make_host):
    host = make_host(backing=MemoryBackingStore(), pools=1)
    pool = host.pools[0]
    size = 4 * UNIT
    a = host.create_region(ARENA, size)
    b = host.create_region(ARENA, size)
    c = host.create_region(ARENA, size)
    pages = pool.memory.size(host.store)
    span_a, span_b, span_c = (host._regions[x].storage for x in (a, b, c))
    host.view(a)[:] = 1
    host.view(b)[:] = 2
    host.destroy_region(a)
    d = host.create_region(ARENA, size)
    assert host._regions[d].storage.base == span_a.base
    assert (host.view(d) == 0).all()  # a reused span starts zeroed
    host.spill_region(b)
    assert (pool.view[span_b.base : span_b.base + size] == 0).all()  # released pages read as zeros
    e = host.create_region(ARENA, size // 2)
    f = host.create_region(ARENA, size // 2)
    assert {host._regions[e].storage.base, host._regions[f].storage.base} == {span_b.base, span_b.base + size // 2}
    assert pool.memory.size(host.store) == pages  # no growth: freed spans were used first
    host.destroy_region(c)
    host.load_region(b)  # back in: lands in c's old span
    assert host._regions[b].storage.base == span_c.base
    assert (host.view(b) == 2).all()
    assert pool.memory.size(host.store) == pages


def test_spill_returns_pages_to_the_os(make_host, tmp_path):
    host = make_host(backing=FileBackingStore(tmp_path))
    size = 48 << 20
    r = host.create_region(ARENA, size)
    pattern = np.random.default_rng(4).integers(0, 256, 1 << 20, dtype=np.uint8)
    host.view(r).reshape(-1, 1 << 20)[:] = pattern  # touch every page
    digest = hashlib.sha256(host.view(r)).hexdigest()
    before = native.resident_set_bytes()
    host.spill_region(r)
    after = native.resident_set_bytes()
    assert before - after >= 40 << 20, (before, after)
    g = instantiate(host)
    assert g("load_u8", Handle(r, 1, 0), 257) == pattern[257]  # faults in
    assert hashlib.sha256(host.view(r)).hexdigest() == digest


def test_compaction_moves_blocks_in_place_and_guests_follow_the_remap(make_host):
    host = make_host(backing=MemoryBackingStore())
    g = instantiate(host)
    r = host.create_region(ARENA, 4096, allocator=Freelist())
    neighbour = host.create_region(ARENA, 4096)
    host.view(neighbour)[:] = 0x77
    handles = [g.alloc(r, 64 + i) for i in range(20)]
    for i, h in enumerate(handles):
        g("fill", h, 64 + i, i + 1)
    keep = handles[::3]
    for h in handles:
        if h not in keep:
            assert g("dealloc", h) == 0
    span = host._regions[r].storage
    host.spill_region(r)  # compaction of a Cold region faults it in first, like the model
    remap = host.compact_region(r)
    assert remap.new_generation == remap.old_generation + 1 == host.region_info(r).generation
    assert host._regions[r].storage.length == span.length
    cursor = 0
    for h in keep:
        i = handles.index(h)
        moved = remap.migrate(h)
        assert moved is not None and moved.offset == cursor
        cursor += 64 + i
        assert g("count_byte", moved, 64 + i, i + 1) == 64 + i
        assert g("count_byte", h, 64 + i, i + 1) == -1  # the old handle is stale
    assert (host.view(r)[cursor:] == 0).all()
    assert (host.view(neighbour) == 0x77).all()
    # allocation continues after the packed blocks, from wasm too
    assert g.alloc(r, 8) == Handle(r, remap.new_generation, cursor)


def test_demote_until_with_guest_activity(make_host):
    host = make_host(backing=MemoryBackingStore())
    g = instantiate(host)
    regions = [host.create_region(ARENA, UNIT) for _ in range(6)]
    for r in regions[:3]:
        g("store_u32", Handle(r, 1, 0), 0, r)
    report = host.demote_until(3 * UNIT, order="lru")
    assert report.target_met and report.regions_spilled == 3
    assert [residency(host, r) is Residency.HOT for r in regions] == [True] * 3 + [False] * 3
    for r in regions:
        assert g("load_u32", Handle(r, 1, 0), 0) == (r if r in regions[:3] else 0)
    assert host.python_entries == 3
    assert struct.unpack("<I", host.read(Handle(regions[0], 1, 0), 4))[0] == regions[0]
