"""Freed spans come back zeroed whatever wrote them: the touched-page map against the Python model.

The module zeroes a freed span only where writes touched it (``tvm_wasm.guest.touched``),
so a write path that forgot to mark its pages would leave old bytes for the next region.
Random sequences create regions (Bump, blocks, Slab; sizes that straddle 64 KiB pages and
share pages with neighbours), write them through every path that changes bytes (each
typed store, ``try_store``, the per-pool stores, ``write``, ``copy``, ``copy_region``,
``fill``, a zero-copy view, compaction with migrate, a Cold spill and restore), destroy
them and create new ones in the freed space. The Python model (``RegionDirectory``) runs
the same byte operations; after every step each live region of the module holds exactly
the model's bytes, so every new region reads all zero; and every page holding a non-zero
byte of a live region is marked in the touched-page map (read through a probe spliced into
the module), so a path that forgot to mark fails at once, not only when its page is reused
unmarked by luck. The checks read the pools directly (not through ``handle_address``,
which would mark what it shows).
"""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from guest_helpers import compiled, engine

from tvm_wasm import Freelist, Handle, RegionKind, Slab
from tvm_wasm.core.directory import RegionDirectory
from tvm_wasm.guest import layout as G
from tvm_wasm.guest.instance import GuestInstance
from tvm_wasm.guest.touched import SPILL_SCAN
from tvm_wasm.host.native import memory_view

POOLS = 2
MAX_PAGES = 8  # 512 KiB per pool: freed spans are reused all the time
GBUF = 4096  # scratch in the module's default memory for `write`
PAGE_SHIFT = G.TOUCHED_SHIFT
PROBE = f"""(func (export "touched") (param $pool i32) (param $page i32) (result i32)
  (i32.load8_u $meta offset={G.TOUCHED}
    (i32.add (i32.mul (local.get $pool) (i32.const {G.TOUCHED_POOL})) (local.get $page))))"""
TYPED = {"u8": ("<B", 1), "u16": ("<H", 2), "u32": ("<I", 4), "i64": ("<q", 8), "f32": ("<f", 4), "f64": ("<d", 8)}
STORES = ["store", "try_store", "store_pool"]

CAPACITIES = st.one_of(
    st.sampled_from([1, 16, 1000, 4096, 65536 - 16, 65536, 65536 + 8, 2 * 65536 - 5, 200_000]),
    st.integers(1, 140_000),
)
FRACTION = st.floats(0, 1, allow_nan=False)
ops = st.one_of(
    st.tuples(st.just("create"), CAPACITIES, st.sampled_from(["bump", "blocks", "slab"])),
    st.tuples(st.just("destroy"), st.integers(0, 7)),
    st.tuples(st.just("typed"), st.sampled_from(STORES), st.sampled_from(list(TYPED)), st.integers(0, 7), FRACTION,
              st.integers(1, 255)),
    st.tuples(st.just("write"), st.integers(0, 7), FRACTION, st.integers(1, 3000), st.integers(1, 255)),
    st.tuples(st.just("view"), st.integers(0, 7), FRACTION, st.integers(1, 70_000), st.integers(1, 255)),
    st.tuples(st.just("fill"), st.integers(0, 7), FRACTION, st.integers(1, 70_000), st.integers(1, 255)),
    st.tuples(st.sampled_from(["copy", "copy_region"]), st.integers(0, 7), FRACTION, st.integers(0, 7), FRACTION,
              st.integers(1, 70_000)),
    st.tuples(st.just("alloc"), st.integers(0, 7), st.integers(1, 70_000), st.sampled_from([0, 0, 0x5A, 0xFF])),
    st.tuples(st.just("compact"), st.integers(0, 7)),
    st.tuples(st.just("spill"), st.integers(0, 7)),
    st.tuples(st.just("restore"), st.integers(0, 7)),
)


class Pair:
    """The module and the model side by side; regions are indexes into ``live``."""

    def __init__(self, g) -> None:
        self.g = g
        self.model = RegionDirectory()
        self.live: list[tuple[int, int]] = []  # (module id, model id)
        self.blocks: dict[int, list[tuple[Handle, bytes]]] = {}  # module id -> live blocks of blocks regions
        self.cold: dict[int, bytes] = {}  # module id -> bytes of a spilled region
        if g.guest_memory.size(g.store) < 2:
            g.guest_memory.grow(g.store, 1)

    # ------------------------------------------------------------------ helpers
    def pick(self, index: int) -> tuple[int, int] | None:
        return self.live[index % len(self.live)] if self.live else None

    def resident(self, index: int) -> tuple[int, int] | None:
        """A live region that is not Cold, as (module id, model id)."""
        pair = self.pick(index)
        return None if pair is None or pair[0] in self.cold else pair

    def span(self, index: int, fraction: float, length: int) -> tuple[int, int, int, int] | None:
        """(module id, model id, offset, length) of a span that fits in a resident region."""
        pair = self.resident(index)
        if pair is None:
            return None
        offset, length = self.at(self.capacity(pair[1]), fraction, length)
        return (*pair, offset, length)

    def capacity(self, mid: int) -> int:
        return self.model.region_info(mid).capacity

    def handle(self, gid: int, offset: int = 0) -> Handle:
        return Handle(gid, self.g.region_info(gid).generation, offset)

    def model_handle(self, mid: int, offset: int = 0) -> Handle:
        return Handle(mid, self.model.region_info(mid).generation, offset)

    def peek(self, gid: int) -> np.ndarray:
        """The region's bytes straight from its pool (no handle_address: nothing gets marked)."""
        info = self.g.region_info(gid)
        return memory_view(self.g.pool_memory(info.pool), self.g.store)[info.base : info.base + info.capacity]

    @staticmethod
    def at(capacity: int, fraction: float, length: int) -> tuple[int, int]:
        """An offset and a length that fit in the region."""
        length = min(length, capacity)
        return int(fraction * (capacity - length)), length

    def model_write(self, mid: int, offset: int, data: bytes) -> None:
        self.model.write(self.model_handle(mid, offset), data)

    def check(self, gid: int, mid: int) -> None:
        if gid in self.cold:
            return
        want = self.model.read(self.model_handle(mid), self.capacity(mid))
        got = self.peek(gid).tobytes()
        if got != want:
            first = next(i for i in range(len(got)) if got[i] != want[i])
            raise AssertionError(f"region {gid} differs from the model at offset {first}: "
                                 f"{got[first]} in the module, {want[first]} in the model")
        self.check_marked(gid)

    def check_marked(self, gid: int) -> None:
        """Every non-zero byte lies in a touched page (or in the first SPILL_SCAN bytes after one)."""
        info = self.g.region_info(gid)
        nonzero = np.flatnonzero(self.peek(gid)) + info.base
        for page in np.unique(nonzero >> PAGE_SHIFT).tolist():
            if self.touched(info.pool, page):
                continue
            inside = nonzero[(nonzero >> PAGE_SHIFT) == page] - (page << PAGE_SHIFT)
            assert inside.max() < SPILL_SCAN and page and self.touched(info.pool, page - 1), (
                f"pool {info.pool} page {page} holds bytes of region {gid} but is not marked touched")

    def touched(self, pool: int, page: int) -> int:
        return int(self.g.call(self.g.instance, "touched", pool, page))

    # ------------------------------------------------------------------ operations
    def create(self, capacity: int, allocator: str) -> None:
        made = {"bump": None, "blocks": Freelist(), "slab": Slab(8)}[allocator]
        try:
            gid = self.g.create_region(RegionKind.OBJECT_ARENA, capacity, allocator=made)
        except Exception as error:  # no room: the pools are small on purpose
            assert type(error).__name__ == "AllocationFailed", error
            return
        mid = self.model.create_region(RegionKind.OBJECT_ARENA, capacity)
        assert not self.peek(gid).any(), f"a new region of {capacity} bytes at {self.g.region_info(gid).base} has old bytes"
        self.live.append((gid, mid))
        if allocator == "blocks":
            self.blocks[gid] = []

    def destroy(self, index: int) -> None:
        pair = self.pick(index)
        if pair is None:
            return
        gid, mid = pair
        self.g.destroy_region(gid)
        self.model.destroy_region(mid)
        self.live.remove(pair)
        self.blocks.pop(gid, None)
        self.cold.pop(gid, None)

    def typed(self, how: str, name: str, index: int, fraction: float, value: int) -> None:
        if (pair := self.resident(index)) is None:
            return
        gid, mid = pair
        fmt, width = TYPED[name]
        capacity = self.capacity(mid)
        if capacity < width:
            return
        offset = int(fraction * (capacity - width))
        number = float(value) if name in ("f32", "f64") else value * 0x01010101 & ((1 << (8 * width)) - 1)
        raw = number if name in ("f32", "f64", "i64") or number < 1 << 31 else number - (1 << 32)
        h = self.handle(gid).to_i64()
        if how == "store":
            self.g.raw(f"store_{name}", h, offset, raw)
        elif how == "try_store":
            assert self.g.raw(f"try_store_{name}", h, offset, raw) == 0
        else:
            self.g.raw(f"store_{name}_p{self.g.region_info(gid).pool}", h, offset, raw)
        self.model_write(mid, offset, struct.pack(fmt, number))

    def write(self, index: int, fraction: float, length: int, byte: int) -> None:
        if (where := self.span(index, fraction, length)) is None:
            return
        gid, mid, offset, length = where
        data = bytes((byte + i) % 251 + 1 for i in range(length))
        self.g.guest_memory.write(self.g.store, data, GBUF)
        assert self.g.raw("write", self.handle(gid, offset).to_i64(), GBUF, length) == 0
        self.model_write(mid, offset, data)

    def view(self, index: int, fraction: float, length: int, byte: int) -> None:
        if (where := self.span(index, fraction, length)) is None:
            return
        gid, mid, offset, length = where
        self.g.handle_view(self.handle(gid, offset), length)[:] = byte
        self.model_write(mid, offset, bytes([byte]) * length)

    def fill(self, index: int, fraction: float, length: int, byte: int) -> None:
        if (where := self.span(index, fraction, length)) is None:
            return
        gid, mid, offset, length = where
        assert self.g.raw("fill", self.handle(gid, offset).to_i64(), length, byte) == 0
        self.model_write(mid, offset, bytes([byte]) * length)

    def copy(self, how: str, src: int, src_fraction: float, dst: int, dst_fraction: float, length: int) -> None:
        a, b = self.resident(src), self.resident(dst)
        if a is None or b is None:
            return
        length = min(length, self.capacity(a[1]), self.capacity(b[1]))
        src_off, _ = self.at(self.capacity(a[1]), src_fraction, length)
        dst_off, _ = self.at(self.capacity(b[1]), dst_fraction, length)
        if how == "copy":
            code = self.g.raw("copy", self.handle(a[0], src_off).to_i64(), self.handle(b[0], dst_off).to_i64(), length)
        else:
            code = self.g.raw("copy_region", a[0], src_off, b[0], dst_off, length)
        assert code == 0
        self.model.copy_region(a[1], src_off, b[1], dst_off, length)

    def alloc(self, index: int, size: int, byte: int) -> None:
        """Allocate a block and fill it with ``byte`` (0: leave it unwritten, so compaction may slide a
        block onto pages nothing wrote); in blocks regions every other block is freed again."""
        if (pair := self.resident(index)) is None:
            return
        gid, mid = pair
        try:
            h = self.g.alloc(gid, size)
        except Exception as error:
            assert type(error).__name__ in ("AllocationFailed", "OutOfBounds"), error
            return
        length = min(size, self.capacity(mid) - h.offset)
        data = bytes([byte]) * length
        if byte:
            self.g.guest_memory.write(self.g.store, data, GBUF)
            assert self.g.raw("write", h.to_i64(), GBUF, length) == 0
            self.model_write(mid, h.offset, data)
        if gid in self.blocks:
            self.blocks[gid].append((h, data))
            if len(self.blocks[gid]) % 2 == 0:
                old, _ = self.blocks[gid].pop(0)
                self.g.dealloc(old)

    def compact(self, index: int) -> None:
        """Compact a blocks region: live blocks keep their bytes (through migrate), the rest reads zero."""
        pair = self.pick(index)
        if pair is None or pair[0] not in self.blocks or pair[0] in self.cold:
            return
        gid, mid = pair
        before = self.peek(gid).tobytes()  # a live block holds what any path last wrote into its span
        blocks = [(h, before[h.offset : h.offset + len(data)]) for h, data in self.blocks[gid]]
        self.g.compact_region(gid)
        moved = [(self.g.migrate(h), data) for h, data in blocks]
        expect = bytearray(self.capacity(mid))
        for h, data in moved:
            expect[h.offset : h.offset + len(data)] = data
        assert self.peek(gid).tobytes() == bytes(expect), "compaction lost a block or left old bytes"
        self.blocks[gid] = moved
        self.model_write(mid, 0, bytes(expect))  # the model's allocator packs differently: take the module's layout

    def spill(self, index: int) -> None:
        """What ColdTier does: begin_spill, keep the bytes, finish_spill (the span is freed)."""
        if (pair := self.resident(index)) is None:
            return
        gid, _ = pair
        held = self.peek(gid).tobytes()
        assert self.g.raw("begin_spill", gid) == 0
        assert self.g.raw("finish_spill", gid) == 0
        self.cold[gid] = held

    def restore(self, index: int) -> None:
        """A fresh span for a Cold region, filled back in directly through the pool (as ColdTier does)."""
        if not self.cold:
            return
        gid = list(self.cold)[index % len(self.cold)]
        if self.g.raw("restore_region", gid) != 0:
            self.g.last_error()
            return  # no room now: stays Cold
        self.peek(gid)[:] = np.frombuffer(self.cold.pop(gid), dtype=np.uint8)


@settings(max_examples=80, deadline=None)
@given(st.lists(ops, min_size=1, max_size=40))
# A block slides onto a page nothing wrote (freed before it was written); a spilled region's
# span reused before it is restored elsewhere; a wide store across a page boundary, then reuse.
@example([("create", 200_000, "blocks"), ("alloc", 0, 70_000, 0), ("alloc", 0, 1000, 0x5A), ("compact", 0),
          ("destroy", 0), ("create", 200_000, "bump")])
@example([("create", 100_000, "bump"), ("fill", 0, 0.5, 30_000, 7), ("spill", 0), ("create", 100_000, "slab"),
          ("restore", 0), ("destroy", 1), ("create", 100_000, "bump")])
@example([("create", 3 * 65536, "bump"), ("typed", "store", "i64", 0, (65536 - 4) / (3 * 65536 - 8), 9),
          ("destroy", 0), ("create", 3 * 65536, "bump")])
def test_every_write_path_leaves_freed_space_zero_for_the_next_region(sequence):
    pair = Pair(GuestInstance(compiled(pools=POOLS, max_pages=MAX_PAGES, user_wat=PROBE), engine=engine()))
    for op in sequence:
        getattr(pair, op[0] if op[0] != "copy_region" else "copy")(*(op if op[0] in ("copy", "copy_region") else op[1:]))
        for gid, mid in pair.live:
            pair.check(gid, mid)


def test_a_store_that_ends_in_the_next_page_is_zeroed_with_its_page(make_guest):
    """Fixed input: an i64 stored 4 bytes before a 64 KiB page boundary marks only its first page."""
    g = make_guest(pools=1, max_pages=4)
    region = g.create_region(RegionKind.BLOB_ARENA, 3 * 65536)
    g.raw("store_i64", Handle(region, 1, 0).to_i64(), 65536 - 4, -1)
    g.destroy_region(region)
    again = g.create_region(RegionKind.BLOB_ARENA, 3 * 65536)
    info = g.region_info(again)
    assert info.base == 0
    assert not memory_view(g.pool_memory(0), g.store)[: 3 * 65536].any()


def test_neighbours_sharing_a_page_keep_their_bytes_when_one_is_freed(make_guest):
    """Fixed input: three regions in one 64 KiB page; freeing the middle one zeroes only its bytes."""
    g = make_guest(pools=1, max_pages=2)
    a, b, c = (g.create_region(RegionKind.BLOB_ARENA, 1000) for _ in range(3))
    for region, byte in ((a, 1), (b, 2), (c, 3)):
        assert g.raw("fill", Handle(region, 1, 0).to_i64(), 1000, byte) == 0
    g.destroy_region(b)
    pool = memory_view(g.pool_memory(0), g.store)
    bases = {r: g.region_info(r).base for r in (a, c)}
    assert (pool[bases[a] : bases[a] + 1000] == 1).all() and (pool[bases[c] : bases[c] + 1000] == 3).all()
    d = g.create_region(RegionKind.BLOB_ARENA, 1000)
    assert g.region_info(d).base == 1008 and not pool[1008:2008].any()
