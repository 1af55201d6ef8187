"""No access escapes its region or its stated guest range.

Random handles (live, stale, destroyed, unknown ids), offsets, lengths and
guest pointers -- including values near 2**31 and 2**32 whose sums wrap in
32 bits -- go through the raw ABI from a guest. Every region and the rest of
the guest memory hold known patterns; after each call the test checks, against
shadows kept in Python: every region's bytes, every other byte of every pool
(zero outside live resident regions), the whole guest memory, the directory
slots' placement fields, and the value returned (which must be computed only
from the target range).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host_guests import (
    TYPED, Guest, compiled, fnv1a, proxy_guest, raw_handle, s64, shared_engine, typed_bytes,
)
from tvm_wasm import Freelist, Handle, MemoryBackingStore, RegionKind, Slab, TvmError
from tvm_wasm.host.tvm_host import TvmHost

U32 = 0xFFFF_FFFF
GUEST_PAGES = 2
GUEST_SIZE = GUEST_PAGES * 65536
WIDTH = {name: width for name, width, _ in TYPED}
UNKNOWN_IDS = [0, 99, 0x7FFF, 0x8000, 0xFFFF]
WATCHED_SLOTS = np.array(sorted(set(range(64)) | set(UNKNOWN_IDS)))


class World:
    def __init__(self, inline: bool = False) -> None:
        self.host = host = TvmHost(backing=MemoryBackingStore(), engine=shared_engine())
        guest = proxy_guest(pages=GUEST_PAGES)
        self.g = Guest(host, host.instantiate(guest, inline=True) if inline else host.instantiate(compiled(guest)))
        specs = [(1, None), (64, None), (1000, None), (4096, None), (3000, Freelist()), (640, Slab(64)),
                 (777, None), (200, None)]
        self.shadow: dict[int, np.ndarray] = {}
        for index, (cap, allocator) in enumerate(specs):
            r = host.create_region(RegionKind.OBJECT_ARENA, cap, allocator=allocator)
            pattern = ((np.arange(cap) * (2 * index + 3) + 17 * index + 1) & 0xFF).astype(np.uint8)
            host.view(r)[:] = pattern
            self.shadow[r] = pattern.copy()
        for r in list(self.shadow)[2:4]:
            host.alloc(r, 10)
        host.alloc(list(self.shadow)[4], 100)
        self.destroyed = list(self.shadow)[-1]
        host.destroy_region(self.destroyed)
        del self.shadow[self.destroyed]
        host.spill_region(list(self.shadow)[2])  # Cold: faults in when touched
        self.guest = ((np.arange(GUEST_SIZE) * 7 + 3) & 0xFF).astype(np.uint8)
        self.g.put(0, self.guest.tobytes())
        self.slot_snapshot = self.placement_fields()

    # ------------------------------------------------------------ expectations
    def gen(self, r: int) -> int:
        return self.host.region_info(r).generation

    def validate(self, packed: int, length: int) -> tuple[int, int, int]:
        """(code, region, offset) the way the runtime checks a handle span (i64 arithmetic)."""
        packed &= (1 << 64) - 1
        r, gen, off = packed >> 48, (packed >> 32) & 0xFFFF, packed & U32
        if r not in self.shadow:
            return (2 if r == self.destroyed else 1), r, off
        if gen != self.gen(r):
            return 2, r, off
        if off + length > len(self.shadow[r]):
            return 3, r, off
        return 0, r, off

    @staticmethod
    def guest_ok(start: int, length: int) -> bool:
        return start + length <= GUEST_SIZE

    # ------------------------------------------------------------ checks
    def placement_fields(self) -> np.ndarray:
        """State, pool, base, capacity, allocator, class size, slab table of every slot the
        test can name (ids 0..63 and the unknown ids it uses)."""
        slots = self.host.table.slots32[WATCHED_SLOTS]
        return slots[:, [0, 1, 2, 3, 5, 6, 7]]

    def verify(self) -> None:
        host = self.host
        assert np.array_equal(self.g.mem_view(), self.guest), "guest memory changed outside the stated range"
        resident = {}
        for r, expect in self.shadow.items():
            region = host._regions[r]
            if region.residency.is_resident:
                assert np.array_equal(host.view(r), expect), f"region {r} bytes"
                resident[r] = region.storage
            else:
                assert host.backing._copies[(r, region.generation)] == expect.tobytes()
        for pool in host.pools.pools:
            image = pool.view.copy()
            for span in resident.values():
                if span.pool == pool.index:
                    image[span.base : span.base + span.length] = 0
            assert not image.any(), f"pool {pool.index} has bytes outside every live region"
        now = self.placement_fields()
        for region in host._regions.values():
            # re-deriving the slot from Python's state must give exactly what the table holds
            host._on_change(region)
        assert np.array_equal(self.placement_fields(), now), "the directory table was changed from wasm"
        live = np.isin(WATCHED_SLOTS, list(self.shadow))
        assert np.array_equal(now[~live], self.slot_snapshot[~live])


# ---------------------------------------------------------------- strategies
def handle_for(world: World, data: st.DataObject) -> int:
    kind = data.draw(st.integers(0, 5), label="handle kind")
    regions = sorted(world.shadow)
    if kind <= 3:
        r = data.draw(st.sampled_from(regions))
        cap = len(world.shadow[r])
        gen = world.gen(r) if kind <= 2 else world.gen(r) + data.draw(st.sampled_from([-1, 1, 0x100]))
        off = data.draw(st.one_of(
            st.integers(0, cap + 2),
            st.sampled_from([0, cap - 1, cap, cap + 1, 0x7FFF_FFFF, 0x8000_0000, U32 - 1, U32, U32 - cap + 1]),
        ), label="offset")
        return raw_handle(r, gen, off)
    if kind == 4:
        return raw_handle(world.destroyed, data.draw(st.integers(0, 3)), data.draw(st.integers(0, 64)))
    return raw_handle(data.draw(st.sampled_from(UNKNOWN_IDS)), data.draw(st.integers(0, 2)),
                      data.draw(st.integers(0, 8)))


def length_for(data: st.DataObject, packed: int) -> int:
    off = packed & U32
    return data.draw(st.one_of(
        st.integers(0, 300),
        st.sampled_from([0, 1, 4096, 4097, 0x7FFF_FFFF, 0x8000_0000, U32, (1 << 32) - off, (1 << 32) - off + 8]),
    ), label="len") & U32


def guest_ptr(data: st.DataObject, length: int) -> int:
    return data.draw(st.one_of(
        st.integers(0, GUEST_SIZE),
        st.sampled_from([0, GUEST_SIZE - length, GUEST_SIZE - length + 1, GUEST_SIZE, U32,
                         (1 << 32) - length, (1 << 32) - length + 1]),
    ), label="guest ptr") & U32


# ---------------------------------------------------------------- operations (each checks its own result)
def op_read(w: World, data: st.DataObject) -> None:
    h = handle_for(w, data)
    n = length_for(data, h)
    dst = guest_ptr(data, n)
    code, r, off = w.validate(h, n)
    if code == 0 and not w.guest_ok(dst, n):
        code = 7
    assert w.g("read", h, dst, n) == code
    if code == 0:
        w.guest[dst : dst + n] = w.shadow[r][off : off + n]


def op_write(w: World, data: st.DataObject) -> None:
    h = handle_for(w, data)
    n = length_for(data, h)
    src = guest_ptr(data, n)
    code, r, off = w.validate(h, n)
    if code == 0 and not w.guest_ok(src, n):
        code = 7
    assert w.g("write", h, src, n) == code
    if code == 0:
        w.shadow[r][off : off + n] = w.guest[src : src + n]


def op_typed(w: World, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(list(WIDTH)), label="type")
    width = WIDTH[name]
    h = handle_for(w, data)
    rel = data.draw(st.one_of(st.integers(0, 16), st.sampled_from([U32, U32 - 3, 0x8000_0000, 0x7FFF_FFFF])))
    code, r, off = w.validate(h, rel + width)  # handle offset + rel + width, without wrapping
    store = data.draw(st.booleans(), label="store")
    value = {"u8": 0xA1, "u16": 0xA1B2, "u32": 0xA1B2C3D4, "i64": -0x5EC2E7, "f32": 0.25, "f64": -1e300}[name]
    try:
        got = w.g(f"store_{name}", h, rel, value) if store else w.g(f"load_{name}", h, rel)
        got_code = 0
    except TvmError as exc:
        got_code = exc.code
    assert got_code == code
    if code == 0:
        at = off + rel
        if store:
            w.shadow[r][at : at + width] = np.frombuffer(typed_bytes(name, value), dtype=np.uint8)
        else:
            raw = w.shadow[r][at : at + width].tobytes()
            if name in ("u8", "u16", "u32"):
                assert got & U32 == int.from_bytes(raw, "little")
            elif name == "i64":
                assert got == s64(int.from_bytes(raw, "little"))
            else:
                assert typed_bytes(name, got) == raw or got != got


def op_copy(w: World, data: st.DataObject) -> None:
    src, dst = handle_for(w, data), handle_for(w, data)
    n = length_for(data, src)
    code, sr, so = w.validate(src, n)
    if code == 0:
        code, dr, do = w.validate(dst, n)
    assert w.g("copy", src, dst, n) == code
    if code == 0:
        w.shadow[dr][do : do + n] = w.shadow[sr][so : so + n].copy()


def op_copy_region(w: World, data: st.DataObject) -> None:
    ids = sorted(w.shadow) + [w.destroyed, 0, 99, 0x1_0000 + sorted(w.shadow)[0]]
    sr, dr = data.draw(st.sampled_from(ids)), data.draw(st.sampled_from(ids))
    edges = st.one_of(st.integers(0, 5000), st.sampled_from([U32, U32 - 1, 0x8000_0000]))
    so, do = data.draw(edges), data.draw(edges)
    n = data.draw(st.one_of(st.integers(0, 300), st.sampled_from([U32, (1 << 32) - so, 0x8000_0000]))) & U32
    if sr not in w.shadow or dr not in w.shadow:
        code = 1
    elif so + n > len(w.shadow[sr]) or do + n > len(w.shadow[dr]):
        code = 3
    else:
        code = 0
    assert w.g("copy_region", sr, so, dr, do, n) == code
    if code == 0:
        w.shadow[dr][do : do + n] = w.shadow[sr][so : so + n].copy()


def op_gather(w: World, data: st.DataObject) -> None:
    h = handle_for(w, data)
    count = data.draw(st.one_of(st.integers(0, 12), st.sampled_from([0x4000_0000, 0x4000_0001, U32])), label="count")
    item = data.draw(st.one_of(st.integers(0, 16), st.sampled_from([0x8000_0000, U32])), label="item")
    idx = guest_ptr(data, min(4 * count, U32))
    if data.draw(st.booleans(), label="dst over the indices"):
        dst = (idx + 4 * data.draw(st.integers(0, 3))) & U32  # items land on later indices
    else:
        dst = guest_ptr(data, min(count * item, U32))
    code, r, off = w.validate(h, 0)
    left = len(w.shadow[r]) - off if code == 0 else 0
    if code == 0 and 0 < count <= 12 and w.guest_ok(idx, 4 * count):
        valid = st.integers(0, max(0, left - item))
        edges = st.sampled_from([U32, U32 - item + 1, left, max(0, left - item + 1)])
        mixed = data.draw(st.integers(0, 3), label="index mix") == 0  # else every index is in range
        indices = [data.draw(st.one_of(valid, edges) if mixed else valid) for _ in range(count)]
        raw = np.frombuffer(struct.pack(f"<{count}I", *(i & U32 for i in indices)), dtype=np.uint8)
        w.g.put(idx, raw.tobytes())
        w.guest[idx : idx + 4 * count] = raw
    if code == 0 and not w.guest_ok(idx, 4 * count):
        code = 7
    if code == 0 and not w.guest_ok(dst, count * item):
        code = 7

    def index(i: int) -> int:
        return int.from_bytes(w.guest[idx + 4 * i : idx + 4 * i + 4].tobytes(), "little")

    if code == 0 and any(index(i) + item > left for i in range(count)):
        code = 3
    got = w.g("read_gather", h, idx, count, item, dst)
    if code == 0:
        # items in order; an index overwritten by an earlier item is re-read (and re-checked)
        for i in range(count):
            at = index(i)
            if at + item > left:
                code = 3
                break
            w.guest[dst + i * item : dst + (i + 1) * item] = w.shadow[r][off + at : off + at + item]
    assert got == code


def op_fill(w: World, data: st.DataObject) -> None:
    h = handle_for(w, data)
    n = length_for(data, h)
    code, r, off = w.validate(h, n)
    assert w.g("fill", h, n, 0xC3) == code
    if code == 0:
        w.shadow[r][off : off + n] = 0xC3


def op_histogram(w: World, data: st.DataObject) -> None:
    h = handle_for(w, data)
    n = length_for(data, h)
    out = guest_ptr(data, 1024)
    code, r, off = w.validate(h, n)
    if code == 0 and not w.guest_ok(out, 1024):
        code = 7
    assert w.g("byte_histogram", h, n, out) == code
    if code == 0:
        hist = np.bincount(w.shadow[r][off : off + n], minlength=256).astype("<u4")
        w.guest[out : out + 1024] = hist.view(np.uint8)


def op_reduce(w: World, data: st.DataObject) -> None:
    h = handle_for(w, data)
    n = length_for(data, h)
    name = data.draw(st.sampled_from(["sum_u8", "popcount", "count_byte", "find_byte", "min_max_u8", "hash_fnv1a"]))
    code, r, off = w.validate(h, n)
    byte = 0x41
    out = guest_ptr(data, 8)  # hash_fnv1a delivers its u64 through an out-pointer
    if name == "hash_fnv1a" and code == 0 and not w.guest_ok(out, 8):
        code = 7
    args = (h, n, byte) if name in ("count_byte", "find_byte") else (h, n, out) if name == "hash_fnv1a" else (h, n)
    got = w.g(name, *args)
    assert w.g.last_error() == code
    if code:
        assert got == {"sum_u8": -1, "popcount": -1, "count_byte": -1, "find_byte": -2, "min_max_u8": -1,
                       "hash_fnv1a": code}[name]
        return
    if name == "hash_fnv1a":
        assert got == 0
        w.guest[out : out + 8] = np.frombuffer(fnv1a(w.shadow[r][off : off + n].tobytes()).to_bytes(8, "little"),
                                               np.uint8)
        return
    span = w.shadow[r][off : off + n]
    expect = {
        "sum_u8": lambda: int(span.sum()),
        "popcount": lambda: int(np.unpackbits(span).sum()),
        "count_byte": lambda: int((span == byte).sum()),
        "find_byte": lambda: int(np.flatnonzero(span == byte)[0]) if (span == byte).any() else -1,
        "min_max_u8": lambda: (int(span.min()) << 8 | int(span.max())) if n else 0xFF00,
    }[name]()
    assert got == expect


def op_eq(w: World, data: st.DataObject) -> None:
    a, b = handle_for(w, data), handle_for(w, data)
    n = length_for(data, a)
    code, ra, oa = w.validate(a, n)
    if code == 0:
        code, rb, ob = w.validate(b, n)
    got = w.g("eq", a, b, n)
    if code:
        assert got == -1
    else:
        assert got == int(np.array_equal(w.shadow[ra][oa : oa + n], w.shadow[rb][ob : ob + n]))
    assert w.g.last_error() == code


def op_alloc_dealloc(w: World, data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        r = data.draw(st.sampled_from(sorted(w.shadow) + [w.destroyed, 0, 0x1_0000 + 1]))
        w.g("alloc", r, data.draw(st.sampled_from([0, 1, 64, 100, U32, 0x8000_0000])))
    else:
        w.g("dealloc", handle_for(w, data))
    w.g.last_error()


def op_spill(w: World, data: st.DataObject) -> None:
    r = data.draw(st.sampled_from(sorted(w.shadow)))
    w.host.spill_region(r)


OPS = [op_read, op_write, op_typed, op_typed, op_copy, op_copy_region, op_gather, op_gather, op_fill,
       op_histogram, op_reduce, op_eq, op_alloc_dealloc, op_spill]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_nothing_escapes(data):
    world = World()
    with world.host:  # released at once: shrinking makes thousands of hosts
        run_calls(world, data)


def run_calls(world: World, data: st.DataObject) -> None:
    world.verify()
    for _ in range(data.draw(st.integers(1, 25), label="calls")):
        data.draw(st.sampled_from(OPS), label="op")(world, data)
        world.g.last_error()  # clear what a failed call left, for the reducers' checks
        world.verify()


def test_gather_with_destination_over_its_own_indices_stays_inside():
    """An item written over a later index cannot make that index reach another region."""
    world = World()
    g, host = world.g, world.host
    r = sorted(world.shadow)[1]  # 64 bytes; the next region's span follows in the pool
    host.view(r)[:4] = np.frombuffer(struct.pack("<I", 65536), dtype=np.uint8)
    world.shadow[r][:4] = host.view(r)[:4]
    g.put(0, struct.pack("<II", 0, 0))
    world.guest[:8] = 0
    code = g("read_gather", Handle(r, 1, 0), 0, 2, 4, 4)
    assert code == 3
    world.guest[4:8] = world.shadow[r][:4]  # item 0 landed before index 1 was re-checked
    world.verify()


def test_verify_detects_an_escape():
    """The checker is live: a byte changed next to a region, in a pool gap, is noticed."""
    world = World()
    r = sorted(world.shadow)[0]
    span = world.host._regions[r].storage
    world.host.pools[span.pool].view[span.base + span.length] = 1  # just past the region
    try:
        world.verify()
    except AssertionError:
        return
    raise AssertionError("verify() missed a byte written outside every region")
