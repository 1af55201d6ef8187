"""Regions inside the module: round trips, isolation, stale handles, compaction, growth, tiers."""

from __future__ import annotations

import itertools
import struct

import numpy as np
import pytest
import wasmtime
from guest_helpers import raw_handle, s32
from layers import COMPACT_N
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tvm_wasm import (
    AllocationFailed,
    Freelist,
    Handle,
    OutOfBounds,
    Pinned,
    RegionKind,
    RegionNotFound,
    Residency,
    Slab,
    StaleHandle,
    TvmError,
)
from tvm_wasm.runtime.layout import PAGE

ARENA = RegionKind.OBJECT_ARENA
HEAP = RegionKind.HOT_HEAP
PAGE_STORE = RegionKind.PAGE_STORE
SCRATCH = RegionKind.SCRATCH
GBUF = 1024


def put(g, offset: int, data: bytes) -> None:
    g.guest_memory.write(g.store, data, offset)


def get(g, offset: int, length: int) -> bytes:
    return bytes(g.guest_memory.read(g.store, offset, offset + length))


def test_round_trip_through_every_path(make_guest):
    g = make_guest(pools=2, max_pages=4)
    region = g.create_region(ARENA, 4096)
    h = g.alloc(region, 256)
    payload = bytes(range(256))
    put(g, GBUF, payload)
    assert g.raw("write", h.to_i64(), GBUF, 256) == 0
    assert g.raw("read", h.to_i64(), GBUF + 512, 256) == 0
    assert get(g, GBUF + 512, 256) == payload
    assert g.read(h, 256) == payload  # zero-copy view agrees
    for name, fmt, value in [("u8", "<B", 0xAB), ("u16", "<H", 0xBEEF), ("u32", "<I", 0xDEADBEEF),
                             ("i64", "<q", -(1 << 62)), ("f32", "<f", 1.5), ("f64", "<d", -2.25)]:
        arg = s32(value) if name in ("u32",) else value
        g.raw(f"store_{name}", h.to_i64(), 16, arg)
        got = g.raw(f"load_{name}", h.to_i64(), 16)
        assert struct.pack(fmt, got if name != "u32" else got & 0xFFFFFFFF) == struct.pack(fmt, value)
        assert g.read(h.with_offset(16), struct.calcsize(fmt)) == struct.pack(fmt, value)
    data = np.frombuffer(g.read(h, 256), dtype=np.uint8)
    assert g.raw("sum_u8", h.to_i64(), 256) == int(data.sum())
    assert g.raw("count_byte", h.to_i64(), 256, int(data[40])) == int((data == data[40]).sum())
    assert g.raw("find_byte", h.to_i64(), 256, 200) == int(np.argmax(data == 200))
    assert g.raw("popcount", h.to_i64(), 256) == int(np.unpackbits(data).sum())
    assert g.raw("min_max_u8", h.to_i64(), 256) == (int(data.min()) << 8) | int(data.max())
    m = g.metrics(region)
    assert m.allocations == 1 and m.bytes_allocated == 256 and m.bytes_written >= 256 and m.bytes_read >= 256


def test_regions_fill_pools_in_order_and_pools_are_isolated(make_guest):
    g = make_guest(pools=2, max_pages=2)
    a = g.create_region(ARENA, 2 * PAGE)  # fills pool 0
    b = g.create_region(ARENA, 2 * PAGE)  # so this one goes to pool 1
    assert (g.region_info(a).pool, g.region_info(a).base) == (0, 0)
    assert (g.region_info(b).pool, g.region_info(b).base) == (1, 0)
    ha, hb = Handle(a, 1, 0), Handle(b, 1, 0)
    g.raw("store_i64", ha.to_i64(), 0, 0x1111)
    g.raw("store_i64", hb.to_i64(), 0, 0x2222)
    assert g.raw("load_i64", ha.to_i64(), 0) == 0x1111 and g.raw("load_i64", hb.to_i64(), 0) == 0x2222
    assert g.view(a)[:8].tobytes() == struct.pack("<q", 0x1111)
    assert g.view(b)[:8].tobytes() == struct.pack("<q", 0x2222)
    # a copy between pools moves exactly the bytes asked for
    assert g.raw("copy", ha.to_i64(), hb.with_offset(2 * PAGE - 8).to_i64(), 8) == 0
    assert g.view(b)[-8:].tobytes() == struct.pack("<q", 0x1111)
    assert g.raw("eq", ha.to_i64(), hb.with_offset(2 * PAGE - 8).to_i64(), 8) == 1
    # per-pool helpers: no dispatch, and a handle of the other pool is refused (code 9)
    assert g.raw("load_i64_p1", hb.to_i64(), 0) == 0x2222
    with pytest.raises(TvmError) as info:
        g.raw("load_i64_p0", hb.to_i64(), 0)
    assert info.value.code == 9
    with pytest.raises(AllocationFailed):
        g.create_region(ARENA, 1)  # both pools are full


def test_regions_in_one_pool_cannot_reach_each_other(make_guest):
    g = make_guest(pools=1, max_pages=4)
    a = g.create_region(ARENA, 100)  # span rounded to 112: the padding belongs to nobody
    b = g.create_region(ARENA, 100)
    ia, ib = g.region_info(a), g.region_info(b)
    assert ia.pool == ib.pool == 0 and ib.base == ia.base + 112
    g.view(b)[:] = 0x5A
    ha = Handle(a, 1, 0)
    g.raw("store_u8", ha.to_i64(), 99, 0xEE)  # the last byte of a is fine
    for off in (100, 112, 0xFFFF_FFFF):
        with pytest.raises(OutOfBounds):
            g.raw("store_u8", ha.to_i64(), s32(off), 1)
        with pytest.raises(OutOfBounds):
            g.raw("load_u8", ha.to_i64(), s32(off))
    with pytest.raises(OutOfBounds):
        g.raw("load_u32", ha.to_i64(), 97)  # straddles the end
    put(g, GBUF, bytes(64))
    assert g.raw("write", ha.with_offset(90).to_i64(), GBUF, 11) == 3
    assert g.raw("read", raw_handle(a, 1, 112), GBUF, 1) == 3
    assert g.raw("copy_region", a, 0, a, 96, 8) == 3
    assert g.raw("fill", ha.to_i64(), 113, 0) == 3
    assert g.raw("handle_address", ha.to_i64(), 101) == -3
    assert g.last_error() == 3
    assert (g.view(b) == 0x5A).all()  # b was never touched
    assert g.view(a)[99] == 0xEE


def test_stale_handles_after_destroy(make_guest):
    g = make_guest(pools=1, max_pages=4)
    r = g.create_region(ARENA, 256)
    h = g.alloc(r, 16)
    g.write(h, b"x" * 16)
    g.destroy_region(r)
    assert g.raw("read", h.to_i64(), GBUF, 16) == 2
    assert g.raw("write", h.to_i64(), GBUF, 16) == 2
    assert g.raw("dealloc", h.to_i64()) == 2
    assert g.raw("sum_u8", h.to_i64(), 16) == -1 and g.last_error() == 2
    with pytest.raises(StaleHandle):
        g.raw("load_u8", h.to_i64(), 0)
    with pytest.raises(StaleHandle):
        g.raw("store_u8_p0", h.to_i64(), 0, 1)
    assert g.raw("alloc", r, 8) == 0 and g.last_error() == 1  # the id names no region now
    assert g.raw("copy_region", r, 0, r, 0, 1) == 1
    with pytest.raises(RegionNotFound):
        g.destroy_region(r)
    with pytest.raises(RegionNotFound):
        g.region_info(r)
    assert g.raw("read", raw_handle(77, 1, 0), GBUF, 1) == 1  # never created
    # the span is reused, zeroed, by the next region; the old handle still fails
    r2 = g.create_region(ARENA, 256)
    assert r2 != r and g.region_info(r2).base == 0
    assert g.read(Handle(r2, 1, 0), 16) == bytes(16)
    assert g.raw("read", h.to_i64(), GBUF, 16) == 2


def test_compaction_remaps_and_old_handles_fail(make_guest):
    g = make_guest(pools=1, max_pages=4)
    r = g.create_region(ARENA, 4096, allocator=Freelist())
    handles = [g.alloc(r, 10 + i) for i in range(6)]
    for i, h in enumerate(handles):
        g.write(h, bytes([i + 1]) * (10 + i))
    g.write(Handle(r, 1, 3000), b"tail junk")  # bytes past the blocks: compaction zeroes them
    for i in (0, 2, 3):
        g.dealloc(handles[i])
    assert g.raw("dealloc", handles[0].to_i64()) == 3  # double free
    assert g.region_info(r).used == 11 + 14 + 15
    g.compact_region(r)
    assert g.region_info(r).generation == 2
    with pytest.raises(StaleHandle):
        g.read(handles[1], 11)
    with pytest.raises(StaleHandle):
        g.raw("load_u8", handles[1].to_i64(), 0)
    moved = {i: g.migrate(handles[i]) for i in (1, 4, 5)}
    assert [m.offset for m in moved.values()] == [0, 11, 25]
    for i, m in moved.items():
        assert m.generation == 2 and g.read(m, 10 + i) == bytes([i + 1]) * (10 + i)
    assert g.migrate(moved[4]) == moved[4]  # current handles come back unchanged
    for i in (0, 2, 3):
        with pytest.raises(StaleHandle):
            g.migrate(handles[i])  # freed blocks have no new home
    assert (g.view(r)[40:] == 0).all()
    # the allocator carries on after the packed blocks
    assert g.alloc(r, 4).offset == 40
    g.compact_region(r)
    with pytest.raises(StaleHandle):
        g.migrate(handles[1])  # two compactions ago
    assert g.read(g.migrate(moved[5]), 15) == bytes([6]) * 15


def test_compaction_refusals(make_guest):
    g = make_guest(pools=1, max_pages=4)
    bump = g.create_region(ARENA, 64)
    slab = g.create_region(ARENA, 64, allocator=Slab(16))
    heap = g.create_region(HEAP, 64, allocator=Freelist())
    with pytest.raises(TvmError) as info:
        g.compact_region(bump)
    assert info.value.code == 9
    with pytest.raises(TvmError):
        g.compact_region(slab)
    g.pin(heap)
    with pytest.raises(Pinned):
        g.compact_region(heap)
    g.unpin(heap)
    g.compact_region(heap)
    with pytest.raises(RegionNotFound):
        g.compact_region(999)


def test_block_allocator_limits(make_guest):
    g = make_guest(pools=1, max_pages=4)
    r = g.create_region(ARENA, 100, allocator=Freelist(), max_blocks=3)
    assert g.raw("alloc", r, 0) == 0 and g.last_error() == 5
    hs = [g.alloc(r, 30) for _ in range(3)]
    assert g.raw("alloc", r, 1) == 0 and g.last_error() == 5  # the table is full
    g.dealloc(hs[1])
    assert g.raw("alloc", r, 1) == 0 and g.last_error() == 5  # dead space comes back only by compaction
    g.compact_region(r)
    assert g.alloc(r, 40).offset == 60
    assert g.raw("dealloc", raw_handle(r, 2, 5)) == 3  # no block starts there


RAW_POOL_LOAD = '(func (export "raw_load_p0") (param i32) (result i32) (i32.load8_u $p0 (local.get 0)))'


def test_pools_grow_on_demand_up_to_their_maximum(make_guest):
    g = make_guest(pools=2, max_pages=8, initial_pages=1, user_wat=RAW_POOL_LOAD)
    pages = lambda: [g.pool_memory(k).size(g.store) for k in range(2)]
    assert pages() == [1, 1]
    a = g.create_region(ARENA, 3 * PAGE)
    assert pages() == [3, 1]
    b = g.create_region(ARENA, 5 * PAGE)
    c = g.create_region(ARENA, 8 * PAGE - 16)
    assert pages() == [8, 8] and g.region_info(c).pool == 1
    with pytest.raises(AllocationFailed):
        g.create_region(ARENA, 17)  # 16 bytes left in pool 1: too few. Code 5, not a trap
    assert g.last_error() == 0 and pages() == [8, 8]
    # the last bytes of every pool are reachable; one past a region traps
    for region, cap in ((b, 5 * PAGE), (c, 8 * PAGE - 16)):
        h = Handle(region, 1, 0)
        g.raw("store_u8", h.to_i64(), cap - 1, 0x7F)
        assert g.raw("load_u8", h.to_i64(), cap - 1) == 0x7F
        with pytest.raises(OutOfBounds):
            g.raw("store_u8", h.to_i64(), cap, 0)
    # below the handles, the pool itself: its last byte is there, one past its maximum traps,
    # and it cannot grow further
    assert g.raw("raw_load_p0", 8 * PAGE - 1) == 0x7F  # b's last byte, written through its handle
    with pytest.raises(wasmtime.Trap, match="out of bounds"):
        g.raw("raw_load_p0", 8 * PAGE)
    assert g.pool_memory(0).grow(g.store, 0) == 8
    with pytest.raises(wasmtime.WasmtimeError):
        g.pool_memory(0).grow(g.store, 1)
    g.destroy_region(a)
    assert g.region_info(g.create_region(ARENA, 3 * PAGE)).base == 0  # the freed span is reused


def test_spans_merge_and_reused_bytes_are_zero(make_guest):
    g = make_guest(pools=1, max_pages=4)
    a, b, c = (g.create_region(ARENA, 1000) for _ in range(3))  # spans of 1008 bytes
    for r in (a, b, c):
        g.view(r)[:] = 0xFF
    g.destroy_region(b)
    g.destroy_region(a)  # merges with b's span
    d = g.create_region(ARENA, 2016)
    assert g.region_info(d).base == 0 and (g.view(d) == 0).all()
    g.destroy_region(c)  # at the top: the top comes down
    e = g.create_region(ARENA, 3000)
    assert g.region_info(e).base == 2016 and (g.view(e) == 0).all()


def test_span_cut_from_the_front_of_a_free_extent_moves_the_extent_start(make_guest):
    """Fixed input: 496 + 496 cut from a freed 1008-byte extent land at 0 and 496, never both at 0."""
    g = make_guest(pools=1, max_pages=4)
    first = g.create_region(ARENA, 1000)
    second = g.create_region(ARENA, 1000)
    g.view(second)[:] = 0x5A
    g.destroy_region(first)
    a, b = g.create_region(ARENA, 496), g.create_region(ARENA, 496)
    assert [g.region_info(r).base for r in (a, b)] == [0, 496]
    g.view(a)[:] = 1
    g.view(b)[:] = 2
    assert (g.view(a) == 1).all() and (g.view(second) == 0x5A).all()
    c = g.create_region(ARENA, 16)  # the 16 bytes left of the extent, then the top
    assert g.region_info(c).base == 992
    assert g.region_info(g.create_region(ARENA, 16)).base == 2016


# Sizes mix small multiples of the 16-byte span alignment (so freed spans are reused
# piecemeal, front first) with arbitrary ones; make_guest gives every example a fresh instance.
SPAN_SIZES = st.one_of(st.sampled_from([16, 48, 496, 1000, 1008, 4096]), st.integers(1, 40_000))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), SPAN_SIZES, st.sampled_from([0, 1, 2])), max_size=40))
def test_live_spans_never_overlap_and_start_zeroed(make_guest, ops):
    g = make_guest(pools=2, max_pages=2)
    live: list[int] = []
    for destroy, size, allocator in ops:
        if destroy and live:
            g.destroy_region(live.pop(size % len(live)))
            continue
        alloc = [None, Freelist(), Slab(8)][allocator]
        try:
            r = g.create_region(ARENA, size, allocator=alloc)
        except AllocationFailed:
            continue
        view = g.view(r)
        assert (view == 0).all(), "a new region must start zeroed"
        view[:] = 0xA5  # leave junk for whoever reuses the span
        live.append(r)
        spans = sorted((g.region_info(x).pool, g.region_info(x).base, g.region_info(x).capacity) for x in live)
        for (p1, b1, c1), (p2, b2, _) in itertools.pairwise(spans):
            assert p1 != p2 or b1 + c1 <= b2
        for pool, base, cap in spans:
            assert base + cap <= g.pool_memory(pool).data_len(g.store)
    assert g.region_count() == len(live)


def test_pin_policy_tiers_and_lru_hint(make_guest):
    g = make_guest(pools=1, max_pages=4)
    heap = g.create_region(HEAP, 64)
    arena = g.create_region(ARENA, 64)
    pages = g.create_region(PAGE_STORE, 64)
    scratch = g.create_region(SCRATCH, 64)
    assert g.region_info(pages).residency is Residency.WARM  # the kind's policy, compiled in
    assert g.region_info(arena).residency is Residency.HOT
    g.pin(heap)
    assert g.region_info(heap).pinned
    for r in (arena, pages, scratch):
        with pytest.raises(TvmError) as info:
            g.pin(r)
        assert info.value.code == 9
    with pytest.raises(Pinned):
        g.demote_region(heap)
    g.unpin(heap)
    with pytest.raises(TvmError):
        g.demote_region(heap)  # pinnable, but not spillable: stays Hot
    with pytest.raises(TvmError):
        g.demote_region(scratch)
    # Warm before Hot, least recently used first; pinned and unspillable never
    assert g.lru_candidate() == pages
    g.demote_region(arena)
    assert g.region_info(arena).residency is Residency.WARM
    assert g.lru_candidate() == pages  # both Warm: pages was touched less recently
    g.raw("store_u8", Handle(pages, 1, 0).to_i64(), 0, 1)  # an access stamps the LRU clock
    assert g.lru_candidate() == arena
    with pytest.raises(TvmError) as info:
        g.demote_region(arena)  # no Cold tier without a host
    assert info.value.code == 9
    g.promote_region(arena)
    g.promote_region(arena)  # Hot stays Hot
    m = g.metrics(arena)
    assert (m.demotions, m.promotions, m.faults) == (1, 1, 0)
    assert g.lru_candidate() == pages
    g.promote_region(pages)
    assert g.lru_candidate() == arena
    for r in (heap, arena, pages, scratch):
        g.destroy_region(r)
    assert g.lru_candidate() is None


def test_bad_create_arguments(make_guest):
    g = make_guest(pools=1, max_pages=4)
    for args in [(7, 64, 0, 0), (1, 0, 0, 0), (1, 64, 3, 0), (1, 64, 2, 0)]:
        assert g.raw("create_region_with", *args) == 0 and g.last_error() == 9
    assert g.raw("create_region_with", 1, s32(0xFFFF_FFFF), 0, 0) == 0 and g.last_error() == 5
    assert g.raw("create_region_with", 1, 64, 2, 100) != 0  # a slab with no whole slot is allowed (0 slots)
    assert g.raw("region_used", 0) == -1 and g.last_error() == 1
    assert g.raw("region_metric", 1, 8) == -1 and g.last_error() == 9


ID_FILLER = """
(func (export "create_all") (result i32) (local $n i32)
  (block $full (loop $more
    (br_if $full (i32.eqz (call $create_region (i32.const 4) (i32.const 1))))
    (local.set $n (i32.add (local.get $n) (i32.const 1)))
    (br $more)))
  (local.get $n))
"""


def test_ids_run_out_then_destroyed_ids_are_reused(make_guest):
    g = make_guest(pools=1, max_pages=64, user_wat=ID_FILLER)
    assert g.raw("create_all") == 65535 and g.last_error() == 5
    h = Handle(500, 1, 0)
    g.destroy_region(500)
    assert g.create_region(SCRATCH, 8) == 500
    assert g.region_info(500).generation == 2  # the destroyed generation carries on
    assert g.raw("read", h.to_i64(), GBUF, 1) == 2
    with pytest.raises(AllocationFailed):
        g.create_region(SCRATCH, 8)



def test_generation_space_exhausted_refuses_compaction_and_retires_the_id(make_guest):
    """Generations never wrap: compaction stops at 65535 (code 5) and the id, once destroyed, is retired."""
    g = make_guest(pools=1, max_pages=64, user_wat=ID_FILLER + COMPACT_N)
    r = g.create_region(ARENA, 64, allocator=Freelist())
    first = g.alloc(r, 8)
    g.write(first, b"original")
    assert g.raw("compact_n", r, 65534) == 0
    assert g.region_info(r).generation == 65535
    assert g.raw("compact_region", r) == 5 and g.last_error() == 5
    assert g.region_info(r).generation == 65535
    with pytest.raises(StaleHandle):
        g.read(first, 8)
    assert g.read(Handle(r, 65535, 0), 8) == b"original"
    g.destroy_region(r)
    assert g.raw("create_all") == 65534 and g.last_error() == 5  # ids 2..65535; id 1 is retired
    g.destroy_region(500)
    assert g.create_region(SCRATCH, 8) == 500
    with pytest.raises(AllocationFailed):
        g.create_region(SCRATCH, 8)
    for generation in (0, 1, 65535):
        assert g.raw("read", raw_handle(r, generation, 0), GBUF, 1) == 2


@pytest.mark.parametrize("embedder", ["TvmHost", "GuestInstance"])
def test_a_wrongly_typed_argument_is_a_type_error_on_both_embedders(embedder):
    """A C author's Python driver passing a handle's bits, None or a string where a Handle or an id goes:
    ``TypeError`` with the model's words on both embedders, never an ``AttributeError`` from inside."""
    from tvm_wasm import RegionKind, TvmHost
    from tvm_wasm.guest import GuestInstance, build_module

    e = TvmHost() if embedder == "TvmHost" else GuestInstance(build_module(pools=1, max_pages=4))
    r = e.create_region(RegionKind.OBJECT_ARENA, 64)
    h = e.alloc(r, 8)
    for call in (lambda: e.read(0, 4), lambda: e.read(None, 4), lambda: e.write(h.to_i64(), b"x"),
                 lambda: e.dealloc(0), lambda: e.fill(0, 4, 1), lambda: e.discard(None, 4)):
        with pytest.raises(TypeError, match="handle must be a Handle, not"):
            call()
    for bad in ("1", None, [1]):
        with pytest.raises(TypeError):
            e.alloc(bad, 8)  # type: ignore[arg-type]
    assert e.read(h, 8) == bytes(8)  # nothing moved
    e.close()
