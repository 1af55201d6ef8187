"""Unit tests for RegionDirectory, the executable specification.

Covers lifecycle and ids, alloc/dealloc, bounds-checked data access, handles
going stale (compaction, destroy, generation wrap), pinning, the residency
state machine in every state, spill/fault/external tiers, compaction,
demote_until, snapshots, the layout dump, the ``_on_change`` hook and the
metrics counters.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from tvm_wasm.core.allocators import Bump, Freelist, Slab
from tvm_wasm.core.backing import MemoryBackingStore
from tvm_wasm.core.directory import FIRST_REGION_ID, MAX_REGION_ID, Region, RegionDirectory
from tvm_wasm.core.errors import (
    AllocationFailed,
    BackingStoreError,
    NotResident,
    OutOfBounds,
    Pinned,
    PolicyViolation,
    RegionNotFound,
    StaleHandle,
    TvmError,
    UnsupportedAllocator,
)
from tvm_wasm.core.handle import U16_MAX, U32_MAX, Handle
from tvm_wasm.core.types import EvictionReport, PlacementPolicy, RegionInfo, RegionKind, RegionMetrics, Residency

HOT, WARM, COLD, EXTERNAL = Residency.HOT, Residency.WARM, Residency.COLD, Residency.EXTERNAL
ARENA = RegionKind.OBJECT_ARENA  # Hot, spillable, not pinnable
PIN_AND_SPILL = PlacementPolicy(HOT, pinnable=True, spillable=True)
WARM_PINNABLE = PlacementPolicy(WARM, pinnable=True, spillable=True)


# -- helpers -------------------------------------------------------------------
class CountingDirectory(RegionDirectory):
    """Counts ``_on_change`` calls per region and records the state each call saw."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self.changes: Counter[int] = Counter()
        self.seen: list[tuple[int, int, Residency, bool, bool]] = []
        super().__init__(*args, **kwargs)

    def _on_change(self, region: Region) -> None:
        self.changes[region.id] += 1
        self.seen.append(
            (region.id, region.generation, region.residency, region.storage is not None, region.pinned)
        )


class FailingStore(MemoryBackingStore):
    """A store whose spill (and optionally load) raises ``exc``."""

    def __init__(self, exc: BaseException, *, fail_spill: bool = True, fail_load: bool = False) -> None:
        super().__init__()
        self.exc = exc
        self.fail_spill = fail_spill
        self.fail_load = fail_load
        self.spill_calls = 0

    def spill(self, region_id: int, generation: int, data: bytes) -> None:
        self.spill_calls += 1
        if self.fail_spill:
            raise self.exc
        super().spill(region_id, generation, data)

    def load(self, region_id: int, generation: int) -> bytes:
        if self.fail_load:
            raise self.exc
        return super().load(region_id, generation)


class SpyStore(MemoryBackingStore):
    """Records the order of spills, loads and deletes."""

    def __init__(self) -> None:
        super().__init__()
        self.spilled: list[int] = []
        self.loaded: list[int] = []
        self.deleted: list[tuple[int, int]] = []

    def spill(self, region_id: int, generation: int, data: bytes) -> None:
        self.spilled.append(region_id)
        super().spill(region_id, generation, data)

    def load(self, region_id: int, generation: int) -> bytes:
        self.loaded.append(region_id)
        return super().load(region_id, generation)

    def delete(self, region_id: int, generation: int) -> None:
        self.deleted.append((region_id, generation))
        super().delete(region_id, generation)


def pattern(length: int, seed: int = 1) -> bytes:
    return bytes((i * 7 + seed) % 251 + 1 for i in range(length))


def whole(d: RegionDirectory, region_id: int) -> bytes:
    """Every byte of a region, through a fresh handle."""
    info = d.region_info(region_id)
    return d.read(Handle(region_id, info.generation, 0), info.capacity)


def h0(d: RegionDirectory, region_id: int, offset: int = 0) -> Handle:
    """A handle at ``offset`` with the region's current generation."""
    return Handle(region_id, d.region_info(region_id).generation, offset)


def residency(d: RegionDirectory, region_id: int) -> Residency:
    return d.region_info(region_id).residency


def bring_to(d: RegionDirectory, region_id: int, state: Residency) -> None:
    """Move a Hot region to ``state`` by the ordinary operations."""
    assert residency(d, region_id) is HOT
    if state is WARM:
        d.demote_region(region_id)
    elif state is COLD:
        d.spill_region(region_id)
    elif state is EXTERNAL:
        d.mark_external(region_id)
    assert residency(d, region_id) is state


@pytest.fixture
def store() -> MemoryBackingStore:
    return MemoryBackingStore()


@pytest.fixture
def d(store: MemoryBackingStore) -> CountingDirectory:
    return CountingDirectory(store)


@pytest.fixture
def bare() -> CountingDirectory:
    """A directory without a backing store."""
    return CountingDirectory()


# ==============================================================================
# lifecycle
# ==============================================================================
class TestLifecycle:
    def test_ids_start_at_one_and_count_up(self, d: CountingDirectory) -> None:
        ids = [d.create_region(ARENA, 16) for _ in range(4)]
        assert ids == [1, 2, 3, 4]
        assert FIRST_REGION_ID == 1
        assert MAX_REGION_ID == 65535

    def test_new_region_info(self, d: CountingDirectory) -> None:
        r = d.create_region(RegionKind.BLOB_ARENA, 128)
        assert d.region_info(r) == RegionInfo(r, 1, RegionKind.BLOB_ARENA, 128, 0, HOT, False)

    @pytest.mark.parametrize("kind", list(RegionKind))
    def test_initial_residency_follows_the_kind_policy(self, d: CountingDirectory, kind: RegionKind) -> None:
        r = d.create_region(kind, 8)
        assert residency(d, r) is PlacementPolicy.for_kind(kind).initial_residency
        assert d.region_info(r).kind is kind

    def test_kind_may_be_given_as_int(self, d: CountingDirectory) -> None:
        r = d.create_region(3, 8)  # type: ignore[arg-type]
        assert d.region_info(r).kind is RegionKind.PAGE_STORE
        assert residency(d, r) is WARM

    def test_explicit_policy_overrides_the_kind(self, d: CountingDirectory) -> None:
        r = d.create_region(RegionKind.HOT_HEAP, 8, policy=PlacementPolicy(WARM, pinnable=False, spillable=True))
        assert residency(d, r) is WARM
        with pytest.raises(PolicyViolation):
            d.pin(r)
        d.spill_region(r)
        assert residency(d, r) is COLD

    def test_new_regions_are_zeroed(self, d: CountingDirectory) -> None:
        for kind in (ARENA, RegionKind.PAGE_STORE):
            r = d.create_region(kind, 100)
            assert whole(d, r) == bytes(100)

    def test_default_allocator_is_bump(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 64)
        d.alloc(r, 8)
        assert "bump" in d.dump_layout()
        with pytest.raises(UnsupportedAllocator):
            d.compact_region(r)

    @pytest.mark.parametrize("capacity", [0, -1, U32_MAX + 1])
    def test_capacity_must_be_1_to_u32_max(self, d: CountingDirectory, capacity: int) -> None:
        with pytest.raises(ValueError):
            d.create_region(ARENA, capacity)
        assert len(d) == 0
        assert d.create_region(ARENA, 1) == 1  # no id was consumed

    @pytest.mark.parametrize("capacity", [1.0, "8", None, True])
    def test_capacity_must_be_an_int(self, d: CountingDirectory, capacity: object) -> None:
        with pytest.raises(TypeError):
            d.create_region(ARENA, capacity)  # type: ignore[arg-type]
        assert len(d) == 0

    @pytest.mark.parametrize("kind", [7, -1, 100])
    def test_unknown_kind_is_rejected(self, d: CountingDirectory, kind: int) -> None:
        with pytest.raises(ValueError):
            d.create_region(kind, 8)  # type: ignore[arg-type]
        assert len(d) == 0

    def test_an_allocator_serving_another_region_is_refused(self, d: CountingDirectory) -> None:
        shared = Freelist()
        assert d.create_region(ARENA, 16, allocator=shared) == 1
        with pytest.raises(ValueError, match="already serves"):
            d.create_region(ARENA, 16, allocator=shared)
        assert len(d) == 1
        assert list(d) == [1]
        assert shared.capacity == 16

    def test_len_contains_iter_and_list(self, d: CountingDirectory) -> None:
        assert len(d) == 0
        assert list(d) == []
        a, b, c = (d.create_region(ARENA, 8 * (i + 1)) for i in range(3))
        d.destroy_region(b)
        assert len(d) == 2
        assert a in d and c in d and b not in d and 99 not in d
        assert list(d) == [a, c]
        assert [info.id for info in d.list_regions()] == [a, c]
        assert [info.capacity for info in d.list_regions()] == [8, 24]

    def test_destroy_forgets_the_region(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 16)
        d.destroy_region(r)
        with pytest.raises(RegionNotFound) as info:
            d.region_info(r)
        assert info.value.code == 1
        assert info.value.region_id == r
        with pytest.raises(RegionNotFound):
            d.destroy_region(r)
        with pytest.raises(RegionNotFound):
            d.metrics(r)

    @pytest.mark.parametrize("region_id", [0, 1, 2, 65535])
    def test_unknown_regions_raise_region_not_found(self, d: CountingDirectory, region_id: int) -> None:
        if region_id != 1:
            d.create_region(ARENA, 8)  # id 1 exists; everything else does not
        else:
            pass
        ops = [
            lambda: d.region_info(region_id),
            lambda: d.metrics(region_id),
            lambda: d.destroy_region(region_id),
            lambda: d.alloc(region_id, 1),
            lambda: d.read(Handle(region_id, 1, 0), 1),
            lambda: d.write(Handle(region_id, 1, 0), b"x"),
            lambda: d.dealloc(Handle(region_id, 1, 0)),
            lambda: d.pin(region_id),
            lambda: d.unpin(region_id),
            lambda: d.demote_region(region_id),
            lambda: d.promote_region(region_id),
            lambda: d.spill_region(region_id),
            lambda: d.load_region(region_id),
            lambda: d.mark_external(region_id),
            lambda: d.load_external(region_id, lambda i, g: b""),
            lambda: d.compact_region(region_id),
            lambda: d.snapshot_region(region_id, "/nonexistent/never-written"),
            lambda: d.restore_region(region_id, "/nonexistent/never-read"),
            lambda: d.copy_region(region_id, 0, region_id, 0, 0),
        ]
        for op in ops:
            with pytest.raises(RegionNotFound) as info:
                op()
            assert f"region={region_id}" in str(info.value)

    def test_null_handle_names_no_region(self, d: CountingDirectory) -> None:
        d.create_region(ARENA, 8)
        with pytest.raises(RegionNotFound):
            d.read(Handle.NULL, 0)

    def test_handles_to_a_destroyed_region_are_stale(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 16)
        other = d.create_region(ARENA, 16)
        h = d.alloc(r, 8)
        d.write(h, b"12345678")
        d.destroy_region(r)
        for op in (
            lambda: d.read(h, 1),
            lambda: d.write(h, b"x"),
            lambda: d.dealloc(h),
            lambda: d.copy(h, h0(d, other), 1),
            lambda: d.copy(h0(d, other), h, 1),
            lambda: d.read(Handle(r, 99, 0), 1),  # any generation
        ):
            with pytest.raises(StaleHandle) as info:
                op()
            assert info.value.code == 2
            assert info.value.region_id == r
        # but the id-based API reports the region as missing
        with pytest.raises(RegionNotFound):
            d.alloc(r, 1)
        with pytest.raises(RegionNotFound):
            d.copy_region(r, 0, other, 0, 1)

    def test_destroyed_ids_are_not_reused_while_fresh_ids_remain(self, d: CountingDirectory) -> None:
        a = d.create_region(ARENA, 8)
        d.create_region(ARENA, 8)
        d.destroy_region(a)
        assert d.create_region(ARENA, 8) == 3
        assert a not in d

    def test_destroy_deletes_the_spilled_copy(self) -> None:
        store = SpyStore()
        d = RegionDirectory(store)
        r = d.create_region(ARENA, 16)
        d.spill_region(r)
        assert (r, 1) in store
        d.destroy_region(r)
        assert (r, 1) not in store
        assert store.deleted == [(r, 1)]

    def test_destroy_tolerates_a_failing_delete(self) -> None:
        class BadDelete(MemoryBackingStore):
            def delete(self, region_id: int, generation: int) -> None:
                raise OSError("disk gone")

        d = RegionDirectory(BadDelete())
        r = d.create_region(ARENA, 16)
        d.spill_region(r)
        d.destroy_region(r)
        assert r not in d

    def test_destroying_a_cold_or_external_region(self, d: CountingDirectory) -> None:
        a, b = d.create_region(ARENA, 8), d.create_region(ARENA, 8)
        d.spill_region(a)
        d.mark_external(b)
        d.destroy_region(a)
        d.destroy_region(b)
        assert len(d) == 0


class TestIdExhaustion:
    def test_65535_ids_then_reuse_of_the_longest_destroyed_with_generation_carried(self) -> None:
        d = RegionDirectory()
        for expected in range(1, MAX_REGION_ID + 1):
            assert d.create_region(RegionKind.SCRATCH, 1) == expected
        assert len(d) == 65535
        with pytest.raises(AllocationFailed) as info:
            d.create_region(RegionKind.SCRATCH, 1)
        assert info.value.code == 5
        assert len(d) == 65535

        old5 = d.alloc(5, 1)
        d._regions[9].generation = U16_MAX  # the last generation: destroying it retires id 9
        d.destroy_region(5)
        d.destroy_region(9)
        d.destroy_region(2)

        assert d.create_region(RegionKind.SCRATCH, 4) == 5
        assert d.region_info(5).generation == 2
        assert d.region_info(5).capacity == 4
        assert d.create_region(RegionKind.SCRATCH, 1) == 2  # 9 is retired, never handed out again
        assert d.region_info(2).generation == 2
        with pytest.raises(AllocationFailed, match="1 retired"):
            d.create_region(RegionKind.SCRATCH, 1)
        for generation in (1, U16_MAX):  # no handle to a retired id is ever valid
            with pytest.raises(StaleHandle):
                d.read(Handle(9, generation, 0), 1)

        # handles to the old incarnation cannot reach the new one
        with pytest.raises(StaleHandle):
            d.read(old5, 1)
        assert d.read(Handle(5, 2, 0), 4) == bytes(4)  # the reused region is zeroed


# ==============================================================================
# allocation
# ==============================================================================
class TestAlloc:
    def test_alloc_returns_generation_checked_handles(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 64)
        a, b = d.alloc(r, 10), d.alloc(r, 6)
        assert a == Handle(r, 1, 0)
        assert b == Handle(r, 1, 10)
        assert d.region_info(r).used == 16

    def test_alloc_aligned(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 64, allocator=Freelist())
        d.alloc(r, 3)
        assert d.alloc(r, 4, align=8).offset == 8
        assert d.region_info(r).used == 7

    def test_alloc_counts(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 64)
        d.alloc(r, 10)
        d.alloc(r, 0)
        d.alloc(r, 5)
        m = d.metrics(r)
        assert (m.allocations, m.bytes_allocated) == (3, 15)

    def test_failed_alloc_names_the_region_and_is_not_counted(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 64)
        d.alloc(r, 60)
        with pytest.raises(AllocationFailed) as info:
            d.alloc(r, 8)
        err = info.value
        assert (err.region_id, err.generation, err.length, err.capacity) == (r, 1, 8, 64)
        assert f"region={r}" in str(err) and "len=8" in str(err) and "capacity=64" in str(err)
        assert d.metrics(r).allocations == 1
        assert d.region_info(r).used == 60

    @pytest.mark.parametrize("align", [0, 3, -2, 1 << 32])
    def test_bad_alignment(self, d: CountingDirectory, align: int) -> None:
        """A malformed argument (core.arguments), checked before anything changes: ValueError, as on every layer."""
        r = d.create_region(ARENA, 64)
        with pytest.raises(ValueError, match=f"align must be a power of two in 1..2147483648, got {align}"):
            d.alloc(r, 1, align=align)
        assert d.region_info(r).used == 0 and d.metrics(r).allocations == 0

    @pytest.mark.parametrize("size", [-1, U32_MAX + 1])
    def test_size_out_of_u32_range(self, d: CountingDirectory, size: int) -> None:
        r = d.create_region(ARENA, 64)
        with pytest.raises(ValueError):
            d.alloc(r, size)
        assert d.region_info(r).used == 0

    def test_size_larger_than_capacity_fails(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 64)
        with pytest.raises(AllocationFailed):
            d.alloc(r, U32_MAX)

    @pytest.mark.parametrize("state", [HOT, WARM, COLD, EXTERNAL])
    def test_alloc_works_in_any_residency_without_faulting(self, d: CountingDirectory, state: Residency) -> None:
        r = d.create_region(ARENA, 64, allocator=Freelist())
        bring_to(d, r, state)
        before = d.changes[r]
        h = d.alloc(r, 8)
        assert h == Handle(r, 1, 0)
        assert residency(d, r) is state
        assert d.metrics(r).faults == 0
        assert d.region_info(r).used == 8
        d.dealloc(h)  # dealloc is metadata only, too
        assert d.region_info(r).used == 0
        assert residency(d, r) is state
        assert d.changes[r] == before

    def test_dealloc_frees_freelist_blocks(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 32, allocator=Freelist())
        a = d.alloc(r, 16)
        d.alloc(r, 16)
        d.dealloc(a)
        assert d.region_info(r).used == 16
        assert d.alloc(r, 16) == a

    def test_dealloc_unknown_block_is_out_of_bounds_with_context(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 32, allocator=Freelist())
        a = d.alloc(r, 8)
        d.dealloc(a)
        with pytest.raises(OutOfBounds) as info:
            d.dealloc(a)
        err = info.value
        assert (err.region_id, err.generation, err.offset) == (r, 1, 0)
        with pytest.raises(OutOfBounds):
            d.dealloc(Handle(r, 1, 4))

    def test_dealloc_beyond_capacity_is_out_of_bounds(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 32)  # Bump: dealloc would be a no-op, but the handle is out of range
        with pytest.raises(OutOfBounds):
            d.dealloc(Handle(r, 1, 33))
        with pytest.raises(OutOfBounds):
            d.dealloc(Handle(r, 1, U32_MAX))
        d.dealloc(Handle(r, 1, 32))  # one past the end is a valid (empty) position

    def test_dealloc_on_bump_is_a_no_op(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 32)
        h = d.alloc(r, 8)
        d.dealloc(h)
        d.dealloc(h)
        assert d.region_info(r).used == 8

    def test_slab_region(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 64, allocator=Slab(16))
        a, b = d.alloc(r, 16), d.alloc(r, 16)
        assert (a.offset, b.offset) == (0, 16)
        with pytest.raises(AllocationFailed):
            d.alloc(r, 8)
        d.dealloc(a)
        with pytest.raises(OutOfBounds, match="double free"):
            d.dealloc(a)
        with pytest.raises(OutOfBounds):
            d.dealloc(Handle(r, 1, 8))
        assert d.alloc(r, 16) == a
        assert "slab(16)" in d.dump_layout()

    def test_dealloc_with_a_stale_handle(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 32, allocator=Freelist())
        a = d.alloc(r, 8)
        d.compact_region(r)
        with pytest.raises(StaleHandle):
            d.dealloc(a)
        assert d.region_info(r).used == 8


# ==============================================================================
# data access
# ==============================================================================
# (offset, length) pairs that must be refused for a 64-byte region
OUT_OF_RANGE = [
    (60, 5),
    (63, 2),
    (64, 1),
    (65, 0),
    (0, 65),
    (1, 64),
    (0xFFFF_FFFF, 0),
    (0xFFFF_FFFF, 1),
    (0xFFFF_FFFF, 0xFFFF_FFFF),
    (1, 0xFFFF_FFFF),
    (0, 0xFFFF_FFFF),
    (64, 0xFFFF_FFFF),
    (0x8000_0000, 0x8000_0000),
    (0xFFFF_FFC0, 0x40),
]


class TestReadWrite:
    def test_round_trip(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 64)
        h = d.alloc(r, 16)
        d.write(h, b"hello, regions!!")
        assert d.read(h, 16) == b"hello, regions!!"
        assert d.read(h.with_offset(7), 7) == b"regions"
        assert whole(d, r) == b"hello, regions!!" + bytes(48)

    def test_write_accepts_bytes_like(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 16)
        d.write(h0(d, r), bytearray(b"ab"))
        d.write(h0(d, r, 2), memoryview(b"cd"))
        import array

        d.write(h0(d, r, 4), array.array("H", [0x4645]))  # little-endian "EF"
        assert d.read(h0(d, r), 6) == b"abcdEF"

    def test_read_returns_an_independent_copy(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.write(h0(d, r), b"abcd")
        data = d.read(h0(d, r), 4)
        d.write(h0(d, r), b"wxyz")
        assert data == b"abcd"
        assert isinstance(data, bytes)

    def test_bounds_are_the_region_capacity_not_the_allocation(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 64)
        h = d.alloc(r, 4)
        d.write(h.with_offset(60), b"tail")
        assert d.read(h, 64)[-4:] == b"tail"

    def test_edges_that_fit(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 64)
        assert d.read(h0(d, r, 64), 0) == b""
        d.write(h0(d, r, 64), b"")
        d.write(h0(d, r, 63), b"z")
        assert d.read(h0(d, r, 63), 1) == b"z"
        assert d.read(h0(d, r), 64)[-1:] == b"z"

    @pytest.mark.parametrize(("offset", "length"), OUT_OF_RANGE)
    def test_read_out_of_bounds(self, d: CountingDirectory, offset: int, length: int) -> None:
        r = d.create_region(ARENA, 64)
        with pytest.raises(OutOfBounds) as info:
            d.read(Handle(r, 1, offset), length)
        err = info.value
        assert err.code == 3
        assert (err.region_id, err.generation, err.offset, err.length, err.capacity) == (r, 1, offset, length, 64)
        assert f"offset={offset:#x}" in str(err) and f"len={length}" in str(err) and "capacity=64" in str(err)
        assert d.metrics(r).bytes_read == 0

    @pytest.mark.parametrize(("offset", "length"), [(o, n) for o, n in OUT_OF_RANGE if n <= 65])
    def test_write_out_of_bounds_changes_nothing(self, d: CountingDirectory, offset: int, length: int) -> None:
        before = d.create_region(ARENA, 64)
        r = d.create_region(ARENA, 64)
        after = d.create_region(ARENA, 64)
        for region in (before, r, after):
            d.write(h0(d, region), pattern(64, region))
        with pytest.raises(OutOfBounds):
            d.write(Handle(r, 1, offset), b"\xee" * length)
        for region in (before, r, after):
            assert whole(d, region) == pattern(64, region)
        assert d.metrics(r).bytes_written == 64

    @pytest.mark.parametrize("length", [-1, U32_MAX + 1, 1 << 64])
    def test_read_length_outside_u32_is_refused(self, d: CountingDirectory, length: int) -> None:
        r = d.create_region(ARENA, 64)
        with pytest.raises(ValueError):
            d.read(h0(d, r), length)

    @pytest.mark.parametrize("handle", [0, (1, 1, 0), None, "r1@1+0"])
    def test_handles_must_be_handles(self, d: CountingDirectory, handle: object) -> None:
        d.create_region(ARENA, 64)
        with pytest.raises(TypeError):
            d.read(handle, 1)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            d.write(handle, b"x")  # type: ignore[arg-type]

    def test_no_handle_reaches_another_region(self, d: CountingDirectory) -> None:
        small = d.create_region(ARENA, 8)
        big = d.create_region(ARENA, 8)
        d.write(h0(d, big), b"SECRET!!")
        for offset in (0, 1, 7, 8):
            with pytest.raises(OutOfBounds):
                d.read(Handle(small, 1, offset), 9 - offset if offset < 8 else 1)
        assert d.read(h0(d, small), 8) == bytes(8)

    def test_check_order_region_then_generation_then_bounds(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        with pytest.raises(RegionNotFound):
            d.read(Handle(r + 1, 9, 0xFFFF_FFFF), 5)
        with pytest.raises(StaleHandle):
            d.read(Handle(r, 9, 0xFFFF_FFFF), 5)
        with pytest.raises(OutOfBounds):
            d.read(Handle(r, 1, 0xFFFF_FFFF), 5)

    def test_bounds_are_checked_before_faulting(self, d: CountingDirectory, store: MemoryBackingStore) -> None:
        r = d.create_region(ARENA, 8)
        d.spill_region(r)
        with pytest.raises(OutOfBounds):
            d.read(Handle(r, 1, 4), 5)
        with pytest.raises(StaleHandle):
            d.read(Handle(r, 2, 0), 1)
        assert residency(d, r) is COLD
        assert d.metrics(r).faults == 0

    def test_stale_generation_message(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        with pytest.raises(StaleHandle) as info:
            d.write(Handle(r, 7, 2), b"x")
        err = info.value
        assert (err.region_id, err.generation, err.offset) == (r, 7, 2)
        assert "7" in err.message and "1" in err.message
        assert d.read(h0(d, r), 8) == bytes(8)

    def test_read_and_write_count_bytes(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 64)
        d.write(h0(d, r), b"abc")
        d.write(h0(d, r, 10), b"defgh")
        d.read(h0(d, r), 2)
        d.read(h0(d, r), 0)
        d.read(h0(d, r), 64)
        m = d.metrics(r)
        assert (m.bytes_written, m.bytes_read) == (8, 66)

    def test_warm_regions_are_readable_and_stay_warm(self, d: CountingDirectory) -> None:
        r = d.create_region(RegionKind.PAGE_STORE, 16)
        d.write(h0(d, r), b"warm")
        assert d.read(h0(d, r), 4) == b"warm"
        assert residency(d, r) is WARM
        assert d.metrics(r).faults == 0


class TestCopy:
    def test_copy_between_regions(self, d: CountingDirectory) -> None:
        a, b = d.create_region(ARENA, 32), d.create_region(ARENA, 32)
        d.write(h0(d, a), pattern(32))
        d.copy(h0(d, a, 4), h0(d, b, 10), 8)
        assert whole(d, b) == bytes(10) + pattern(32)[4:12] + bytes(14)
        assert d.metrics(a).bytes_read == 8
        assert d.metrics(b).bytes_written == 8

    def test_overlapping_copy_forward_and_backward(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 16)
        d.write(h0(d, r), b"0123456789abcdef")
        d.copy(h0(d, r, 0), h0(d, r, 4), 8)
        assert whole(d, r) == b"012301234567cdef"
        d.write(h0(d, r), b"0123456789abcdef")
        d.copy(h0(d, r, 4), h0(d, r, 0), 8)
        assert whole(d, r) == b"456789ab89abcdef"

    def test_copy_zero_bytes(self, d: CountingDirectory) -> None:
        a, b = d.create_region(ARENA, 8), d.create_region(ARENA, 8)
        d.copy(h0(d, a, 8), h0(d, b, 8), 0)
        assert whole(d, b) == bytes(8)

    def test_copy_checks_both_generations(self, d: CountingDirectory) -> None:
        a = d.create_region(ARENA, 16, allocator=Freelist())
        b = d.create_region(ARENA, 16)
        stale = d.alloc(a, 4)
        d.compact_region(a)
        d.write(h0(d, b), b"keep")
        with pytest.raises(StaleHandle):
            d.copy(stale, h0(d, b), 4)
        with pytest.raises(StaleHandle):
            d.copy(h0(d, b), stale, 4)
        assert d.metrics(b).bytes_read == 0
        assert d.metrics(a).bytes_written == 0
        assert d.read(h0(d, b), 4) == b"keep"

    @pytest.mark.parametrize(("offset", "length"), OUT_OF_RANGE)
    def test_copy_bounds_on_either_side(self, d: CountingDirectory, offset: int, length: int) -> None:
        a, b = d.create_region(ARENA, 64), d.create_region(ARENA, 64)
        d.write(h0(d, a), pattern(64))
        with pytest.raises(OutOfBounds):
            d.copy(Handle(a, 1, offset), h0(d, b), length)
        with pytest.raises(OutOfBounds):
            d.copy(h0(d, a), Handle(b, 1, offset), length)
        assert whole(d, b) == bytes(64)
        assert d.metrics(a).bytes_read == 0

    def test_copy_faults_in_cold_regions(self, d: CountingDirectory) -> None:
        a, b = d.create_region(ARENA, 8), d.create_region(ARENA, 8)
        d.write(h0(d, a), b"ABCDEFGH")
        d.spill_region(a)
        d.spill_region(b)
        d.copy(h0(d, a, 2), h0(d, b, 0), 4)
        assert residency(d, a) is HOT and residency(d, b) is HOT
        assert d.metrics(a).faults == 1 and d.metrics(b).faults == 1
        assert whole(d, b) == b"CDEF" + bytes(4)

    def test_copy_strict_cold_is_not_resident(self, store: MemoryBackingStore) -> None:
        d = RegionDirectory(store, strict=True)
        a, b = d.create_region(ARENA, 8), d.create_region(ARENA, 8)
        d.spill_region(b)
        with pytest.raises(NotResident):
            d.copy(h0(d, a), h0(d, b), 4)
        with pytest.raises(NotResident):
            d.copy(h0(d, b), h0(d, a), 4)
        assert residency(d, b) is COLD

    def test_copy_region_uses_raw_offsets_without_generation_checks(self, d: CountingDirectory) -> None:
        a = d.create_region(ARENA, 16, allocator=Freelist())
        b = d.create_region(ARENA, 16)
        h = d.alloc(a, 4)
        d.write(h, b"data")
        d.compact_region(a)  # generation 2 now
        d.copy_region(a, 0, b, 12, 4)
        assert whole(d, b)[12:] == b"data"
        assert d.metrics(a).bytes_read == 4
        assert d.metrics(b).bytes_written == 4

    def test_copy_region_overlap(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.write(h0(d, r), b"abcdefgh")
        d.copy_region(r, 0, r, 2, 6)
        assert whole(d, r) == b"ababcdef"

    @pytest.mark.parametrize(("offset", "length"), OUT_OF_RANGE)
    def test_copy_region_bounds(self, d: CountingDirectory, offset: int, length: int) -> None:
        a, b = d.create_region(ARENA, 64), d.create_region(ARENA, 64)
        d.write(h0(d, a), pattern(64))
        with pytest.raises(OutOfBounds) as info:
            d.copy_region(a, offset, b, 0, length)
        assert info.value.region_id == a
        with pytest.raises(OutOfBounds) as info:
            d.copy_region(a, 0, b, offset, length)
        # a length longer than the source itself is reported against the source
        assert info.value.region_id == (b if length <= 64 else a)
        assert whole(d, b) == bytes(64)

    @pytest.mark.parametrize(
        "args",
        [(-1, 0, 1), (U32_MAX + 1, 0, 1), (0, -1, 1), (0, U32_MAX + 1, 1), (0, 0, -1), (0, 0, U32_MAX + 1)],
    )
    def test_copy_region_arguments_outside_u32(self, d: CountingDirectory, args: tuple[int, int, int]) -> None:
        a, b = d.create_region(ARENA, 64), d.create_region(ARENA, 64)
        src_off, dst_off, length = args
        with pytest.raises(ValueError):
            d.copy_region(a, src_off, b, dst_off, length)

    def test_copy_region_faults_and_strict(self, store: MemoryBackingStore) -> None:
        d = RegionDirectory(store)
        a, b = d.create_region(ARENA, 8), d.create_region(ARENA, 8)
        d.write(h0(d, a), b"12345678")
        d.spill_region(a)
        d.copy_region(a, 0, b, 0, 8)
        assert whole(d, b) == b"12345678"
        assert d.metrics(a).faults == 1
        d.strict = True
        d.spill_region(a)
        with pytest.raises(NotResident):
            d.copy_region(a, 0, b, 0, 8)

    def test_copy_region_external_is_not_resident(self, d: CountingDirectory) -> None:
        a, b = d.create_region(ARENA, 8), d.create_region(ARENA, 8)
        d.mark_external(a)
        with pytest.raises(NotResident):
            d.copy_region(a, 0, b, 0, 1)
        with pytest.raises(NotResident):
            d.copy_region(b, 0, a, 0, 1)


# ==============================================================================
# generations
# ==============================================================================
class TestGenerations:
    def test_compaction_makes_every_older_handle_stale(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 32, allocator=Freelist())
        handles = [d.alloc(r, 4) for _ in range(3)]
        d.compact_region(r)
        d.compact_region(r)
        assert d.region_info(r).generation == 3
        for h in handles:
            with pytest.raises(StaleHandle):
                d.read(h, 1)
            with pytest.raises(StaleHandle):
                d.write(h, b"x")
        with pytest.raises(StaleHandle):
            d.read(Handle(r, 2, 0), 1)
        assert d.read(Handle(r, 3, 0), 1) == b"\x00"

    def test_compaction_at_the_last_generation_is_refused_set_directly(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 16, allocator=Freelist())
        a = d.alloc(r, 4)
        d._regions[r].generation = U16_MAX
        h = d.alloc(r, 4)
        d.dealloc(Handle(r, U16_MAX, 0))  # frees a: a compaction would move h
        d.write(h, b"last")
        with pytest.raises(AllocationFailed, match="generation space exhausted") as info:
            d.compact_region(r)
        assert info.value.generation == U16_MAX
        assert d.region_info(r).generation == U16_MAX
        assert d.read(h, 4) == b"last" and h.offset == 4  # nothing moved
        with pytest.raises(StaleHandle):
            d.read(a, 4)  # generation 1 stays stale

    def test_compacting_65535_times_never_revives_the_first_handle(self) -> None:
        """The field report: alloc, compact 65,535 times, read the first handle: stale, always."""
        d = RegionDirectory()
        r = d.create_region(ARENA, 8, allocator=Freelist())
        first = d.alloc(r, 8)
        d.write(first, b"original")
        h = first
        for _ in range(U16_MAX - 1):
            h = d.compact_region(r).migrate(h)  # type: ignore[assignment]
        assert h.generation == U16_MAX
        with pytest.raises(AllocationFailed, match="generation space exhausted"):
            d.compact_region(r)  # the 65,535th
        with pytest.raises(StaleHandle):
            d.read(first, 8)
        assert d.read(h, 8) == b"original"

    def test_destroy_at_65535_retires_the_id(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d._regions[r].generation = U16_MAX
        d.destroy_region(r)
        for gen in (0, 1, U16_MAX):
            with pytest.raises(StaleHandle):
                d.read(Handle(r, gen, 0), 1)
        d._next_fresh_id = MAX_REGION_ID + 1  # every fresh id used: only the retired one is left
        with pytest.raises(AllocationFailed, match="retired"):
            d.create_region(ARENA, 8)


# ==============================================================================
# pinning
# ==============================================================================
class TestPinning:
    @pytest.mark.parametrize("kind", [RegionKind.HOT_HEAP, RegionKind.CODE_CACHE, RegionKind.DEVICE_STATE])
    def test_pinnable_kinds(self, d: CountingDirectory, kind: RegionKind) -> None:
        r = d.create_region(kind, 8)
        d.pin(r)
        assert d.region_info(r).pinned
        d.pin(r)  # idempotent
        d.unpin(r)
        assert not d.region_info(r).pinned

    @pytest.mark.parametrize(
        "kind", [RegionKind.OBJECT_ARENA, RegionKind.BLOB_ARENA, RegionKind.PAGE_STORE, RegionKind.SCRATCH]
    )
    def test_unpinnable_kinds(self, d: CountingDirectory, kind: RegionKind) -> None:
        r = d.create_region(kind, 8)
        with pytest.raises(PolicyViolation) as info:
            d.pin(r)
        assert info.value.code == 9
        assert info.value.region_id == r
        assert not d.region_info(r).pinned

    def test_unpin_of_an_unpinned_region_succeeds(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.unpin(r)
        assert not d.region_info(r).pinned

    def test_pin_a_warm_region(self, d: CountingDirectory) -> None:
        r = d.create_region(RegionKind.PAGE_STORE, 8, policy=WARM_PINNABLE)
        d.pin(r)
        assert d.region_info(r).pinned
        assert residency(d, r) is WARM
        d.promote_region(r)  # pinning keeps it resident; promotion is allowed
        assert residency(d, r) is HOT

    @pytest.mark.parametrize("state", [COLD, EXTERNAL])
    def test_pin_of_a_non_resident_region_is_not_resident(self, d: CountingDirectory, state: Residency) -> None:
        r = d.create_region(ARENA, 8, policy=PIN_AND_SPILL)
        bring_to(d, r, state)
        with pytest.raises(NotResident) as info:
            d.pin(r)
        assert info.value.code == 4
        assert not d.region_info(r).pinned

    def test_pinned_regions_never_leave_memory_or_compact(self, d: CountingDirectory, store: MemoryBackingStore) -> None:
        r = d.create_region(ARENA, 16, allocator=Freelist(), policy=PIN_AND_SPILL)
        h = d.alloc(r, 4)
        d.write(h, b"pin!")
        d.pin(r)
        for op in (
            lambda: d.demote_region(r),
            lambda: d.spill_region(r),
            lambda: d.compact_region(r),
            lambda: d.mark_external(r),
        ):
            with pytest.raises(Pinned) as info:
                op()
            assert info.value.code == 6
            assert info.value.region_id == r
        assert residency(d, r) is HOT
        assert d.region_info(r).generation == 1
        assert d.read(h, 4) == b"pin!"
        assert len(store) == 0
        report = d.demote_until(0)
        assert report == EvictionReport(0, 0, False)
        d.unpin(r)
        d.demote_region(r)
        assert residency(d, r) is WARM
        d.pin(r)
        with pytest.raises(Pinned):
            d.demote_region(r)  # Warm -> Cold is refused as well
        d.unpin(r)
        d.demote_region(r)
        assert residency(d, r) is COLD

    def test_pinned_check_precedes_the_policy_check(self, d: CountingDirectory) -> None:
        r = d.create_region(RegionKind.HOT_HEAP, 8)
        d.pin(r)
        with pytest.raises(Pinned):
            d.demote_region(r)
        with pytest.raises(Pinned):
            d.compact_region(r)  # pinned is reported before the Bump allocator

    def test_pinned_region_can_be_destroyed(self, d: CountingDirectory) -> None:
        r = d.create_region(RegionKind.HOT_HEAP, 8)
        d.pin(r)
        d.destroy_region(r)
        assert r not in d


# ==============================================================================
# residency state machine
# ==============================================================================
STATES = [HOT, WARM, COLD, EXTERNAL]


class TestDemote:
    def test_hot_to_warm_needs_no_backing(self, bare: CountingDirectory) -> None:
        r = bare.create_region(ARENA, 8)
        bare.write(h0(bare, r), b"still ok")
        bare.demote_region(r)
        assert residency(bare, r) is WARM
        assert bare.metrics(r).demotions == 1
        assert whole(bare, r) == b"still ok"

    def test_warm_to_cold_spills(self, d: CountingDirectory, store: MemoryBackingStore) -> None:
        r = d.create_region(ARENA, 8)
        d.write(h0(d, r), b"to disk!")
        d.demote_region(r)
        d.demote_region(r)
        assert residency(d, r) is COLD
        assert store.load(r, 1) == b"to disk!"
        assert d.metrics(r).demotions == 2

    def test_warm_to_cold_without_backing_fails_and_stays_warm(self, bare: CountingDirectory) -> None:
        r = bare.create_region(RegionKind.PAGE_STORE, 8)
        bare.write(h0(bare, r), b"warmdata")
        with pytest.raises(BackingStoreError, match="no backing"):
            bare.demote_region(r)
        assert residency(bare, r) is WARM
        assert whole(bare, r) == b"warmdata"
        assert bare.metrics(r).demotions == 0

    def test_cold_is_a_no_op(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.spill_region(r)
        before = (d.metrics(r), d.changes[r])
        d.demote_region(r)
        assert residency(d, r) is COLD
        assert (d.metrics(r), d.changes[r]) == before

    def test_external_is_not_resident(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.mark_external(r)
        with pytest.raises(NotResident):
            d.demote_region(r)
        assert residency(d, r) is EXTERNAL

    @pytest.mark.parametrize("kind", [RegionKind.HOT_HEAP, RegionKind.CODE_CACHE, RegionKind.DEVICE_STATE, RegionKind.SCRATCH])
    def test_non_spillable_is_a_policy_violation(self, d: CountingDirectory, kind: RegionKind) -> None:
        r = d.create_region(kind, 8)
        with pytest.raises(PolicyViolation):
            d.demote_region(r)
        with pytest.raises(PolicyViolation):
            d.spill_region(r)
        assert residency(d, r) is HOT
        assert d.metrics(r).demotions == 0

    def test_non_spillable_warm_region_cannot_spill(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8, policy=PlacementPolicy(WARM, pinnable=False, spillable=False))
        with pytest.raises(PolicyViolation):
            d.demote_region(r)
        assert residency(d, r) is WARM


class TestPromote:
    def test_hot_is_a_no_op(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.promote_region(r)
        assert residency(d, r) is HOT
        assert d.metrics(r) == RegionMetrics()

    def test_warm_to_hot(self, bare: CountingDirectory) -> None:
        r = bare.create_region(RegionKind.PAGE_STORE, 8)
        bare.write(h0(bare, r), b"pagedata")
        bare.promote_region(r)
        assert residency(bare, r) is HOT
        m = bare.metrics(r)
        assert (m.promotions, m.faults) == (1, 0)
        assert whole(bare, r) == b"pagedata"

    def test_cold_to_hot_loads(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.write(h0(d, r), b"roundtrp")
        d.spill_region(r)
        d.promote_region(r)
        assert residency(d, r) is HOT
        m = d.metrics(r)
        assert (m.promotions, m.faults, m.demotions) == (1, 1, 1)
        assert whole(d, r) == b"roundtrp"

    def test_cold_without_backing_fails(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.spill_region(r)
        d.backing = None
        with pytest.raises(BackingStoreError):
            d.promote_region(r)
        assert residency(d, r) is COLD

    def test_external_is_not_resident(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.mark_external(r)
        with pytest.raises(NotResident):
            d.promote_region(r)
        assert residency(d, r) is EXTERNAL


class TestSpill:
    @pytest.mark.parametrize("state", [HOT, WARM])
    def test_resident_to_cold(self, d: CountingDirectory, store: MemoryBackingStore, state: Residency) -> None:
        r = d.create_region(ARENA, 32)
        d.write(h0(d, r), pattern(32))
        bring_to(d, r, state)
        demotions = d.metrics(r).demotions
        d.spill_region(r)
        assert residency(d, r) is COLD
        assert d.metrics(r).demotions == demotions + 1
        assert store.load(r, 1) == pattern(32)  # the full capacity, keyed by (id, generation)
        assert d._regions[r].storage is None

    def test_cold_is_a_no_op(self) -> None:
        store = SpyStore()
        d = RegionDirectory(store)
        r = d.create_region(ARENA, 8)
        d.spill_region(r)
        d.spill_region(r)
        assert store.spilled == [r]
        assert d.metrics(r).demotions == 1

    def test_external_is_not_resident(self, d: CountingDirectory, store: MemoryBackingStore) -> None:
        r = d.create_region(ARENA, 8)
        d.mark_external(r)
        with pytest.raises(NotResident):
            d.spill_region(r)
        assert len(store) == 0

    def test_without_backing(self, bare: CountingDirectory) -> None:
        r = bare.create_region(ARENA, 8)
        bare.write(h0(bare, r), b"12345678")
        with pytest.raises(BackingStoreError) as info:
            bare.spill_region(r)
        assert info.value.region_id == r
        assert residency(bare, r) is HOT
        assert whole(bare, r) == b"12345678"

    @pytest.mark.parametrize(
        "exc",
        [OSError("disk full"), BackingStoreError("refused"), RuntimeError("bug in store"), ValueError("bad")],
        ids=["oserror", "backingstoreerror", "runtimeerror", "valueerror"],
    )
    @pytest.mark.parametrize("state", [HOT, WARM])
    def test_failed_spill_loses_nothing(self, exc: Exception, state: Residency) -> None:
        store = FailingStore(exc)
        d = CountingDirectory(store)
        r = d.create_region(ARENA, 32)
        d.write(h0(d, r), pattern(32, 5))
        bring_to(d, r, state)
        before_metrics, before_changes = d.metrics(r), d.changes[r]
        with pytest.raises(BackingStoreError) as info:
            d.spill_region(r)
        if isinstance(exc, BackingStoreError):
            assert info.value is exc  # the store's own error passes through
        else:
            assert info.value.region_id == r
            assert info.value.__cause__ is exc
            assert str(exc) in str(info.value)
        assert residency(d, r) is state
        assert d.metrics(r) == before_metrics
        assert d.changes[r] == before_changes
        assert len(store) == 0
        # the same through demote (Warm -> Cold) when Warm
        if state is WARM:
            with pytest.raises(BackingStoreError):
                d.demote_region(r)
            assert residency(d, r) is WARM
        assert whole(d, r) == pattern(32, 5)
        # and once the store recovers, the region spills normally
        store.fail_spill = False
        d.spill_region(r)
        assert residency(d, r) is COLD
        d.load_region(r)
        assert whole(d, r) == pattern(32, 5)

    def test_respill_after_compaction_drops_the_old_generation_copy(self) -> None:
        store = SpyStore()
        d = RegionDirectory(store)
        r = d.create_region(ARENA, 16, allocator=Freelist())
        d.alloc(r, 4)
        d.spill_region(r)
        d.compact_region(r)  # faults in, bumps to generation 2, drops (r, 1)
        assert (r, 1) not in store
        d.spill_region(r)
        assert (r, 2) in store
        assert len(store) == 1


class TestLoad:
    def test_cold_to_hot(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.write(h0(d, r), b"cold->ok")
        d.spill_region(r)
        d.load_region(r)
        assert residency(d, r) is HOT
        m = d.metrics(r)
        assert (m.faults, m.promotions) == (1, 1)
        assert whole(d, r) == b"cold->ok"

    def test_a_demoted_then_spilled_warm_region_comes_back_hot(self, d: CountingDirectory) -> None:
        r = d.create_region(RegionKind.PAGE_STORE, 8)
        d.demote_region(r)
        d.load_region(r)
        assert residency(d, r) is HOT

    @pytest.mark.parametrize("state", [HOT, WARM])
    def test_resident_is_a_no_op_that_never_overwrites(self, d: CountingDirectory, store: MemoryBackingStore, state: Residency) -> None:
        r = d.create_region(ARENA, 8)
        d.write(h0(d, r), b"old copy")
        d.spill_region(r)
        d.load_region(r)
        d.write(h0(d, r), b"new data")  # the store still holds "old copy"
        assert store.load(r, 1) == b"old copy"
        if state is WARM:
            d.demote_region(r)
        before_metrics, before_changes = d.metrics(r), d.changes[r]
        d.load_region(r)
        assert residency(d, r) is state
        assert d.metrics(r) == before_metrics
        assert d.changes[r] == before_changes
        assert whole(d, r) == b"new data"

    def test_resident_without_backing_is_a_no_op(self, bare: CountingDirectory) -> None:
        r = bare.create_region(RegionKind.PAGE_STORE, 8)
        bare.load_region(r)
        assert residency(bare, r) is WARM

    def test_external_is_not_resident(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.mark_external(r)
        with pytest.raises(NotResident):
            d.load_region(r)
        assert residency(d, r) is EXTERNAL

    def test_without_backing(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.spill_region(r)
        d.backing = None
        with pytest.raises(BackingStoreError, match="no backing"):
            d.load_region(r)
        assert residency(d, r) is COLD

    def test_missing_copy(self, d: CountingDirectory, store: MemoryBackingStore) -> None:
        r = d.create_region(ARENA, 8)
        d.spill_region(r)
        store.delete(r, 1)
        before = d.changes[r]
        with pytest.raises(BackingStoreError):
            d.load_region(r)
        assert residency(d, r) is COLD
        assert d.metrics(r).faults == 0
        assert d.changes[r] == before

    @pytest.mark.parametrize("size", [0, 7, 9, 16])
    def test_wrong_sized_copy_is_refused(self, d: CountingDirectory, store: MemoryBackingStore, size: int) -> None:
        r = d.create_region(ARENA, 8)
        d.spill_region(r)
        store.spill(r, 1, b"\x01" * size)
        with pytest.raises(BackingStoreError) as info:
            d.load_region(r)
        assert info.value.capacity == 8
        assert residency(d, r) is COLD
        assert d.metrics(r).faults == 0

    @pytest.mark.parametrize("exc", [OSError("io"), KeyError("k"), RuntimeError("x")])
    def test_load_exceptions_become_backing_store_errors(self, exc: Exception) -> None:
        store = FailingStore(exc, fail_spill=False, fail_load=True)
        d = RegionDirectory(store)
        r = d.create_region(ARENA, 8)
        d.spill_region(r)
        with pytest.raises(BackingStoreError) as info:
            d.load_region(r)
        assert info.value.__cause__ is exc
        assert (info.value.region_id, info.value.generation) == (r, 1)
        assert residency(d, r) is COLD
        store.fail_load = False
        d.load_region(r)
        assert residency(d, r) is HOT


class TestFault:
    def test_read_faults_a_cold_region_in_once(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 16)
        h = d.alloc(r, 16)
        d.write(h, pattern(16))
        d.spill_region(r)
        assert d.read(h, 16) == pattern(16)
        assert residency(d, r) is HOT
        m = d.metrics(r)
        assert (m.faults, m.promotions) == (1, 1)
        d.read(h, 4)
        assert d.metrics(r).faults == 1

    def test_write_faults_a_cold_region_in(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.write(h0(d, r), b"abcdefgh")
        d.spill_region(r)
        d.write(h0(d, r, 2), b"XY")
        assert residency(d, r) is HOT
        assert d.metrics(r).faults == 1
        assert whole(d, r) == b"abXYefgh"

    def test_repeated_spill_and_fault_cycles_count(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 4)
        for i in range(5):
            d.write(h0(d, r), bytes([i]) * 4)
            d.spill_region(r)
            assert d.read(h0(d, r), 4) == bytes([i]) * 4
        m = d.metrics(r)
        assert (m.faults, m.promotions, m.demotions) == (5, 5, 5)

    def test_strict_raises_not_resident(self, store: MemoryBackingStore) -> None:
        d = RegionDirectory(store, strict=True)
        r = d.create_region(ARENA, 8)
        d.write(h0(d, r), b"strict!!")
        d.spill_region(r)
        with pytest.raises(NotResident, match="strict") as info:
            d.read(h0(d, r), 1)
        assert info.value.code == 4
        assert (info.value.region_id, info.value.generation) == (r, 1)
        with pytest.raises(NotResident):
            d.write(h0(d, r), b"x")
        assert residency(d, r) is COLD
        assert d.metrics(r).faults == 0
        assert d.metrics(r).bytes_read == 0
        d.load_region(r)  # an explicit load works in strict mode
        assert whole(d, r) == b"strict!!"
        assert d.metrics(r).faults == 1

    def test_strict_warm_reads_fine(self, store: MemoryBackingStore) -> None:
        d = RegionDirectory(store, strict=True)
        r = d.create_region(RegionKind.PAGE_STORE, 8)
        assert d.read(h0(d, r), 8) == bytes(8)

    def test_cold_without_backing_is_not_resident(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.spill_region(r)
        d.backing = None
        with pytest.raises(NotResident):
            d.read(h0(d, r), 1)
        assert residency(d, r) is COLD

    def test_external_is_never_auto_faulted(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.mark_external(r)
        with pytest.raises(NotResident, match="EXTERNAL"):
            d.read(h0(d, r), 1)
        with pytest.raises(NotResident):
            d.write(h0(d, r), b"x")
        assert residency(d, r) is EXTERNAL
        assert d.metrics(r).faults == 0

    def test_fault_failure_propagates_and_stays_cold(self, store: MemoryBackingStore) -> None:
        d = RegionDirectory(store)
        r = d.create_region(ARENA, 8)
        d.spill_region(r)
        store.delete(r, 1)
        with pytest.raises(BackingStoreError):
            d.read(h0(d, r), 1)
        assert residency(d, r) is COLD


class TestExternal:
    @pytest.mark.parametrize("state", STATES)
    def test_mark_external_from_every_state(self, d: CountingDirectory, store: MemoryBackingStore, state: Residency) -> None:
        r = d.create_region(ARENA, 8)
        bring_to(d, r, state)
        d.mark_external(r)
        assert residency(d, r) is EXTERNAL
        assert d._regions[r].storage is None
        assert len(store) == 0  # a spilled copy (from Cold) is forgotten too

    def test_mark_external_twice_is_a_no_op(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.mark_external(r)
        before = d.changes[r]
        d.mark_external(r)
        assert d.changes[r] == before

    def test_mark_external_ignores_spillability(self, d: CountingDirectory) -> None:
        r = d.create_region(RegionKind.SCRATCH, 8)
        d.mark_external(r)
        assert residency(d, r) is EXTERNAL

    def test_mark_external_of_a_pinned_region(self, d: CountingDirectory) -> None:
        r = d.create_region(RegionKind.HOT_HEAP, 8)
        d.pin(r)
        with pytest.raises(Pinned):
            d.mark_external(r)
        assert residency(d, r) is HOT

    def test_load_external_full_payload(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.write(h0(d, r), b"original")
        d.mark_external(r)
        calls: list[tuple[int, int]] = []

        def loader(region_id: int, generation: int) -> bytes:
            calls.append((region_id, generation))
            return b"external"

        d.load_external(r, loader)
        assert calls == [(r, 1)]
        assert residency(d, r) is HOT
        assert whole(d, r) == b"external"
        m = d.metrics(r)
        assert (m.faults, m.promotions) == (1, 1)

    @pytest.mark.parametrize("payload", [b"", b"ab", bytearray(b"abc"), memoryview(b"abcdefg")])
    def test_short_payload_gets_a_zero_tail(self, d: CountingDirectory, payload: bytes) -> None:
        r = d.create_region(ARENA, 8)
        d.write(h0(d, r), b"\xff" * 8)
        d.mark_external(r)
        d.load_external(r, lambda i, g: payload)
        assert whole(d, r) == bytes(payload) + bytes(8 - len(payload))

    def test_too_long_payload_is_out_of_bounds(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.mark_external(r)
        with pytest.raises(OutOfBounds) as info:
            d.load_external(r, lambda i, g: b"123456789")
        assert (info.value.region_id, info.value.length, info.value.capacity) == (r, 9, 8)
        assert residency(d, r) is EXTERNAL
        assert d.metrics(r).faults == 0

    @pytest.mark.parametrize("exc", [OSError("net"), RuntimeError("loader bug"), KeyError("missing")])
    def test_loader_failure_is_a_backing_store_error(self, d: CountingDirectory, exc: Exception) -> None:
        r = d.create_region(ARENA, 8)
        d.mark_external(r)
        before = d.changes[r]

        def loader(region_id: int, generation: int) -> bytes:
            raise exc

        with pytest.raises(BackingStoreError) as info:
            d.load_external(r, loader)
        assert info.value.__cause__ is exc
        assert info.value.region_id == r
        assert residency(d, r) is EXTERNAL
        assert d.changes[r] == before
        assert d.metrics(r).faults == 0

    def test_loader_tvm_errors_pass_through(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8)
        d.mark_external(r)
        err = NotResident("upstream not ready")

        def loader(region_id: int, generation: int) -> bytes:
            raise err

        with pytest.raises(NotResident) as info:
            d.load_external(r, loader)
        assert info.value is err
        assert residency(d, r) is EXTERNAL

    @pytest.mark.parametrize("bad", [None, 5, "text"])
    def test_loader_returning_non_bytes(self, d: CountingDirectory, bad: object) -> None:
        r = d.create_region(ARENA, 8)
        d.mark_external(r)
        with pytest.raises(BackingStoreError):
            d.load_external(r, lambda i, g: bad)  # type: ignore[arg-type, return-value]
        assert residency(d, r) is EXTERNAL

    @pytest.mark.parametrize("state", [HOT, WARM, COLD])
    def test_load_external_is_a_no_op_unless_external(self, d: CountingDirectory, state: Residency) -> None:
        r = d.create_region(ARENA, 8)
        d.write(h0(d, r), b"mine!!!!")
        bring_to(d, r, state)
        calls = []
        d.load_external(r, lambda i, g: calls.append(1) or b"theirs!!")  # type: ignore[func-returns-value]
        assert calls == []
        assert residency(d, r) is state
        assert d.metrics(r).faults == 0


# ==============================================================================
# compaction
# ==============================================================================
class TestCompaction:
    def test_packs_live_blocks_remaps_and_zeroes_the_tail(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 64, allocator=Freelist())
        a, b, c, e = d.alloc(r, 8), d.alloc(r, 8), d.alloc(r, 8), d.alloc(r, 4)
        for h, seed in ((a, 1), (b, 2), (c, 3)):
            d.write(h, pattern(8, seed))
        d.write(e, b"EEEE")
        d.write(Handle(r, 1, 40), b"junk in free space")
        d.dealloc(b)
        d.dealloc(e)
        remap = d.compact_region(r)
        assert remap.region_id == r
        assert (remap.old_generation, remap.new_generation) == (1, 2)
        assert remap.mapping == {0: 0, 16: 8}
        assert d.region_info(r).generation == 2
        assert d.region_info(r).used == 16
        new_a, new_c = remap.migrate(a), remap.migrate(c)
        assert new_a == Handle(r, 2, 0) and new_c == Handle(r, 2, 8)
        assert remap.migrate(b) is None and remap.migrate(e) is None
        assert d.read(new_a, 8) == pattern(8, 1)
        assert d.read(new_c, 8) == pattern(8, 3)
        assert whole(d, r)[16:] == bytes(48)
        for h in (a, c):
            with pytest.raises(StaleHandle):
                d.read(h, 8)
        assert d.alloc(r, 48) == Handle(r, 2, 16)  # one trailing free block
        with pytest.raises(AllocationFailed):
            d.alloc(r, 1)
        d.dealloc(new_a)  # the rebuilt allocator knows the moved blocks
        d.dealloc(new_c)
        assert d.region_info(r).used == 48

    def test_alignment_gaps_are_squeezed_out(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 64, allocator=Freelist())
        a = d.alloc(r, 3)
        b = d.alloc(r, 5, align=16)
        d.write(a, b"abc")
        d.write(b, b"defgh")
        remap = d.compact_region(r)
        assert remap.mapping == {0: 0, 16: 3}
        assert d.read(Handle(r, 2, 0), 8) == b"abcdefgh"
        assert whole(d, r)[8:] == bytes(56)

    def test_empty_region_is_zeroed(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 16, allocator=Freelist())
        d.write(h0(d, r), b"unallocated data")
        remap = d.compact_region(r)
        assert remap.mapping == {}
        assert whole(d, r) == bytes(16)
        assert d.region_info(r).used == 0

    def test_full_region_is_unchanged_but_regenerated(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 8, allocator=Freelist())
        h = d.alloc(r, 8)
        d.write(h, b"fullfull")
        remap = d.compact_region(r)
        assert remap.mapping == {0: 0}
        assert d.read(remap.migrate(h), 8) == b"fullfull"  # type: ignore[arg-type]

    @pytest.mark.parametrize("allocator", [Bump, lambda: Slab(8)], ids=["bump", "slab"])
    def test_unsupported_allocators(self, d: CountingDirectory, allocator) -> None:  # type: ignore[no-untyped-def]
        r = d.create_region(ARENA, 64, allocator=allocator())
        h = d.alloc(r, 8)
        with pytest.raises(UnsupportedAllocator) as info:
            d.compact_region(r)
        assert info.value.code == 9
        assert info.value.region_id == r
        assert d.region_info(r).generation == 1
        d.read(h, 8)  # still valid

    def test_warm_region_stays_warm(self, d: CountingDirectory) -> None:
        r = d.create_region(RegionKind.PAGE_STORE, 16, allocator=Freelist())
        d.compact_region(r)
        assert residency(d, r) is WARM
        assert d.metrics(r).faults == 0

    def test_cold_region_is_faulted_in(self, d: CountingDirectory, store: MemoryBackingStore) -> None:
        r = d.create_region(ARENA, 16, allocator=Freelist())
        a, b = d.alloc(r, 4), d.alloc(r, 4)
        d.write(b, b"keep")
        d.dealloc(a)
        d.spill_region(r)
        remap = d.compact_region(r)
        assert residency(d, r) is HOT
        assert d.metrics(r).faults == 1
        assert d.read(remap.migrate(b), 4) == b"keep"  # type: ignore[arg-type]
        assert (r, 1) not in store  # the old generation's copy is gone

    def test_cold_region_in_strict_mode(self, store: MemoryBackingStore) -> None:
        d = RegionDirectory(store, strict=True)
        r = d.create_region(ARENA, 16, allocator=Freelist())
        d.spill_region(r)
        with pytest.raises(NotResident):
            d.compact_region(r)
        assert d.region_info(r).generation == 1
        assert residency(d, r) is COLD

    def test_external_region(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 16, allocator=Freelist())
        d.mark_external(r)
        with pytest.raises(NotResident):
            d.compact_region(r)
        assert d.region_info(r).generation == 1

    def test_remap_ignores_other_regions(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 16, allocator=Freelist())
        other = d.create_region(ARENA, 16, allocator=Freelist())
        h = d.alloc(other, 4)
        remap = d.compact_region(r)
        assert remap.migrate(h) is None
        assert d.read(h, 4) == bytes(4)  # the other region's handles are untouched


# ==============================================================================
# demote_until
# ==============================================================================
class TestDemoteUntil:
    def make(self, store: SpyStore, capacities: list[int], kind: RegionKind = ARENA) -> tuple[RegionDirectory, list[int]]:
        d = RegionDirectory(store)
        return d, [d.create_region(kind, cap) for cap in capacities]

    def test_resident_bytes_is_capacity_of_hot_and_warm(self) -> None:
        d, (a, b, c, e) = self.make(SpyStore(), [10, 20, 40, 80])
        d.alloc(a, 1)
        assert d.resident_bytes() == 150
        d.demote_region(b)
        assert d.resident_bytes() == 150
        d.spill_region(c)
        d.mark_external(e)
        assert d.resident_bytes() == 30

    def test_already_met_spills_nothing(self) -> None:
        store = SpyStore()
        d, _ = self.make(store, [10, 20])
        assert d.demote_until(30) == EvictionReport(0, 0, True)
        assert d.demote_until(1 << 40) == EvictionReport(0, 0, True)
        assert store.spilled == []

    @pytest.mark.parametrize(
        ("order", "expected"),
        [
            ("largest_first", [3, 2, 4, 1]),
            ("smallest_first", [1, 4, 2, 3]),
            ("insertion_order", [1, 2, 3, 4]),
        ],
    )
    def test_orders_within_a_tier(self, order: str, expected: list[int]) -> None:
        store = SpyStore()
        d, ids = self.make(store, [10, 30, 40, 20])
        report = d.demote_until(0, order=order)  # type: ignore[arg-type]
        assert store.spilled == expected
        assert report == EvictionReport(100, 4, True)
        assert all(residency(d, r) is COLD for r in ids)

    def test_equal_sizes_break_ties_by_id(self) -> None:
        for order in ("largest_first", "smallest_first"):
            store = SpyStore()
            d, _ = self.make(store, [8, 8, 8])
            d.demote_until(0, order=order)  # type: ignore[arg-type]
            assert store.spilled == [1, 2, 3]

    def test_lru_order_spills_least_recently_used_first(self) -> None:
        store = SpyStore()
        d, (a, b, c) = self.make(store, [10, 10, 10])
        d.read(h0(d, b), 1)
        d.write(h0(d, a), b"x")
        d.read(h0(d, c), 1)
        d.read(h0(d, b), 1)
        report = d.demote_until(10, order="lru")
        assert store.spilled == [a, c]
        assert report == EvictionReport(20, 2, True)
        assert residency(d, b) is HOT

    def test_warm_is_spilled_before_hot(self) -> None:
        store = SpyStore()
        d, (big, small) = self.make(store, [100, 10])
        d.demote_region(small)
        report = d.demote_until(100, order="largest_first")
        assert store.spilled == [small]
        assert report == EvictionReport(10, 1, True)
        assert residency(d, big) is HOT

    def test_every_warm_region_goes_before_any_hot_one(self) -> None:
        store = SpyStore()
        d, (h1, w1, h2, w2) = self.make(store, [50, 5, 60, 6])
        d.demote_region(w1)
        d.demote_region(w2)
        d.demote_until(0, order="smallest_first")
        assert store.spilled == [w1, w2, h1, h2]

    def test_stops_as_soon_as_the_target_is_met(self) -> None:
        store = SpyStore()
        d, ids = self.make(store, [40, 30, 20, 10])
        report = d.demote_until(35)
        assert store.spilled == [1, 2]
        assert report == EvictionReport(70, 2, True)
        assert d.resident_bytes() == 30
        assert [residency(d, r) for r in ids] == [COLD, COLD, HOT, HOT]

    def test_skips_pinned_and_non_spillable_and_reports_target_not_met(self) -> None:
        store = SpyStore()
        d = RegionDirectory(store)
        heap = d.create_region(RegionKind.HOT_HEAP, 50)  # not spillable
        scratch = d.create_region(RegionKind.SCRATCH, 25)  # not spillable
        pinned = d.create_region(ARENA, 30, policy=PIN_AND_SPILL)
        d.pin(pinned)
        warm_pinned = d.create_region(ARENA, 7, policy=WARM_PINNABLE)
        d.pin(warm_pinned)
        free = d.create_region(ARENA, 20)
        d.spill_region(d.create_region(ARENA, 1000))  # Cold: neither counted nor touched
        store.spilled.clear()
        report = d.demote_until(10)
        assert report == EvictionReport(bytes_freed=20, regions_spilled=1, target_met=False)
        assert store.spilled == [free]
        assert d.resident_bytes() == 50 + 25 + 30 + 7
        for r in (heap, scratch, pinned):
            assert residency(d, r) is HOT
        assert residency(d, warm_pinned) is WARM

    def test_nothing_eligible(self) -> None:
        d = RegionDirectory(SpyStore())
        d.create_region(RegionKind.HOT_HEAP, 64)
        assert d.demote_until(0) == EvictionReport(0, 0, False)

    def test_empty_directory_meets_any_target(self) -> None:
        assert RegionDirectory().demote_until(0) == EvictionReport(0, 0, True)

    @pytest.mark.parametrize("order", ["oldest", "", "LRU", None])
    def test_unknown_order(self, order: object) -> None:
        d, _ = self.make(SpyStore(), [8])
        with pytest.raises(ValueError, match="order"):
            d.demote_until(0, order=order)  # type: ignore[arg-type]

    @pytest.mark.parametrize("target", [-1, (1 << 64) + 1])
    def test_target_out_of_range(self, target: int) -> None:
        d, _ = self.make(SpyStore(), [8])
        with pytest.raises(ValueError):
            d.demote_until(target)

    def test_target_must_be_an_int(self) -> None:
        d, _ = self.make(SpyStore(), [8])
        with pytest.raises(TypeError):
            d.demote_until(1.5)  # type: ignore[arg-type]

    def test_without_backing_raises(self) -> None:
        d = RegionDirectory()
        r = d.create_region(ARENA, 8)
        with pytest.raises(BackingStoreError):
            d.demote_until(0)
        assert residency(d, r) is HOT

    def test_failed_spill_propagates_and_loses_nothing(self) -> None:
        store = FailingStore(OSError("disk full"))
        d = RegionDirectory(store)
        r = d.create_region(ARENA, 8)
        d.write(h0(d, r), b"precious")
        with pytest.raises(BackingStoreError):
            d.demote_until(0)
        assert residency(d, r) is HOT
        assert whole(d, r) == b"precious"


# ==============================================================================
# snapshots
# ==============================================================================
class TestSnapshots:
    def test_snapshot_writes_raw_capacity_bytes(self, d: CountingDirectory, tmp_path: Path) -> None:
        r = d.create_region(ARENA, 32)
        d.write(h0(d, r), pattern(20))
        path = tmp_path / "r.bin"
        d.snapshot_region(r, path)
        assert path.read_bytes() == pattern(20) + bytes(12)
        assert os.listdir(tmp_path) == ["r.bin"]  # no temp file left behind

    def test_snapshot_replaces_an_existing_file(self, d: CountingDirectory, tmp_path: Path) -> None:
        r = d.create_region(ARENA, 4)
        path = tmp_path / "r.bin"
        path.write_bytes(b"older and longer")
        d.snapshot_region(r, str(path))
        assert path.read_bytes() == bytes(4)

    def test_round_trip_into_another_region(self, d: CountingDirectory, tmp_path: Path) -> None:
        a, b = d.create_region(ARENA, 16), d.create_region(ARENA, 16)
        d.write(h0(d, a), pattern(16, 3))
        d.write(h0(d, b), b"\xff" * 16)
        d.snapshot_region(a, tmp_path / "a")
        d.restore_region(b, tmp_path / "a")
        assert whole(d, b) == pattern(16, 3)
        assert d.region_info(b).generation == 1

    def test_restore_shorter_file_zeroes_the_tail(self, d: CountingDirectory, tmp_path: Path) -> None:
        r = d.create_region(ARENA, 16)
        d.write(h0(d, r), b"\xff" * 16)
        (tmp_path / "s").write_bytes(b"abc")
        d.restore_region(r, tmp_path / "s")
        assert whole(d, r) == b"abc" + bytes(13)
        assert d.metrics(r).bytes_written == 16 + 3

    def test_restore_oversized_file_is_out_of_bounds(self, d: CountingDirectory, tmp_path: Path) -> None:
        r = d.create_region(ARENA, 8)
        d.write(h0(d, r), b"untouchd")
        (tmp_path / "big").write_bytes(b"x" * 9)
        before = d.changes[r]
        with pytest.raises(OutOfBounds) as info:
            d.restore_region(r, tmp_path / "big")
        err = info.value
        assert (err.region_id, err.length, err.capacity) == (r, 9, 8)
        assert whole(d, r) == b"untouchd"
        assert d.changes[r] == before

    def test_restore_missing_file(self, d: CountingDirectory, tmp_path: Path) -> None:
        r = d.create_region(ARENA, 8)
        with pytest.raises(BackingStoreError, match="cannot read snapshot") as info:
            d.restore_region(r, tmp_path / "nope")
        assert isinstance(info.value.__cause__, FileNotFoundError)
        assert residency(d, r) is HOT

    @pytest.mark.parametrize("state", STATES)
    def test_restore_makes_the_region_hot_from_every_state(self, d: CountingDirectory, store: MemoryBackingStore, tmp_path: Path, state: Residency) -> None:
        r = d.create_region(ARENA, 8)
        bring_to(d, r, state)
        (tmp_path / "s").write_bytes(b"restored")
        d.restore_region(r, tmp_path / "s")
        assert residency(d, r) is HOT
        assert whole(d, r) == b"restored"
        assert d.region_info(r).generation == 1
        assert d.metrics(r).faults == 0
        assert len(store) == 0  # a spilled Cold copy is now out of date and gone

    def test_snapshot_of_a_cold_region_faults_it_in(self, d: CountingDirectory, tmp_path: Path) -> None:
        r = d.create_region(ARENA, 8)
        d.write(h0(d, r), b"coldsnap")
        d.spill_region(r)
        d.snapshot_region(r, tmp_path / "c")
        assert (tmp_path / "c").read_bytes() == b"coldsnap"
        assert d.metrics(r).faults == 1

    def test_snapshot_of_a_cold_region_in_strict_mode(self, store: MemoryBackingStore, tmp_path: Path) -> None:
        d = RegionDirectory(store, strict=True)
        r = d.create_region(ARENA, 8)
        d.spill_region(r)
        with pytest.raises(NotResident):
            d.snapshot_region(r, tmp_path / "c")
        assert not (tmp_path / "c").exists()

    def test_snapshot_of_an_external_region(self, d: CountingDirectory, tmp_path: Path) -> None:
        r = d.create_region(ARENA, 8)
        d.mark_external(r)
        with pytest.raises(NotResident):
            d.snapshot_region(r, tmp_path / "e")
        assert os.listdir(tmp_path) == []

    def test_snapshot_into_a_missing_directory(self, d: CountingDirectory, tmp_path: Path) -> None:
        r = d.create_region(ARENA, 8)
        with pytest.raises(BackingStoreError, match="cannot write snapshot") as info:
            d.snapshot_region(r, tmp_path / "missing" / "x")
        assert isinstance(info.value.__cause__, FileNotFoundError)


# ==============================================================================
# dump_layout
# ==============================================================================
def test_dump_layout(d: CountingDirectory) -> None:
    assert d.dump_layout() == "regions: 0  (id gen kind residency pin used/cap allocator)"
    heap = d.create_region(RegionKind.HOT_HEAP, 64)
    pages = d.create_region(RegionKind.PAGE_STORE, 128, allocator=Freelist())
    slab = d.create_region(ARENA, 96, allocator=Slab(32))
    d.alloc(heap, 10)
    d.alloc(pages, 20)
    d.alloc(slab, 32)
    d.pin(heap)
    d.spill_region(slab)
    d._regions[pages].generation = 7
    lines = d.dump_layout().splitlines()
    assert lines[0] == "regions: 3  (id gen kind residency pin used/cap allocator)"
    assert len(lines) == 4
    assert lines[1].split() == ["r1", "gen", "1", "HOT_HEAP", "HOT", "pinned", "10/64", "bump"]
    assert lines[2].split() == ["r2", "gen", "7", "PAGE_STORE", "WARM", "-", "20/128", "freelist"]
    assert lines[3].split() == ["r3", "gen", "1", "OBJECT_ARENA", "COLD", "-", "32/96", "slab(32)"]
    d.destroy_region(pages)
    assert d.dump_layout().splitlines()[0].startswith("regions: 2 ")
    assert "r2 " not in d.dump_layout()


# ==============================================================================
# _on_change
# ==============================================================================
class TestOnChange:
    def delta(self, d: CountingDirectory, region_id: int, op) -> int:  # type: ignore[no-untyped-def]
        before = d.changes[region_id]
        op()
        return d.changes[region_id] - before

    def test_each_state_change_calls_the_hook_once_for_its_region(self, d: CountingDirectory, tmp_path: Path) -> None:
        r = d.create_region(ARENA, 16, allocator=Freelist(), policy=PIN_AND_SPILL)
        other = d.create_region(ARENA, 16)
        assert d.changes[r] == 1  # create
        assert self.delta(d, r, lambda: d.demote_region(r)) == 1  # Hot -> Warm
        assert self.delta(d, r, lambda: d.promote_region(r)) == 1  # Warm -> Hot
        assert self.delta(d, r, lambda: d.demote_region(r)) == 1
        assert self.delta(d, r, lambda: d.demote_region(r)) == 1  # Warm -> Cold
        assert self.delta(d, r, lambda: d.promote_region(r)) == 1  # Cold -> Hot
        assert self.delta(d, r, lambda: d.spill_region(r)) == 1
        assert self.delta(d, r, lambda: d.load_region(r)) == 1
        assert self.delta(d, r, lambda: d.spill_region(r)) == 1
        assert self.delta(d, r, lambda: d.read(h0(d, r), 1)) == 1  # the fault
        assert self.delta(d, r, lambda: d.pin(r)) == 1
        assert self.delta(d, r, lambda: d.unpin(r)) == 1
        assert self.delta(d, r, lambda: d.compact_region(r)) == 1
        assert self.delta(d, r, lambda: d.mark_external(r)) == 1
        assert self.delta(d, r, lambda: d.load_external(r, lambda i, g: b"x")) == 1
        (tmp_path / "s").write_bytes(b"snap")
        assert self.delta(d, r, lambda: d.restore_region(r, tmp_path / "s")) == 1
        assert self.delta(d, r, lambda: d.destroy_region(r)) == 1
        assert d.changes[other] == 1  # nothing above touched the other region

    def test_a_fault_during_compaction_is_reported_too(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 16, allocator=Freelist())
        d.spill_region(r)
        assert self.delta(d, r, lambda: d.compact_region(r)) == 2  # load, then compaction

    def test_demote_until_reports_every_spilled_region(self, d: CountingDirectory) -> None:
        ids = [d.create_region(ARENA, 8) for _ in range(3)]
        d.demote_until(8)
        assert [d.changes[r] for r in ids] == [2, 2, 1]

    def test_copy_into_a_cold_region_reports_both_faults(self, d: CountingDirectory) -> None:
        a, b = d.create_region(ARENA, 8), d.create_region(ARENA, 8)
        d.spill_region(a)
        d.spill_region(b)
        d.copy_region(a, 0, b, 0, 8)
        assert (d.changes[a], d.changes[b]) == (3, 3)

    def test_the_hook_sees_the_state_after_the_change(self, d: CountingDirectory) -> None:
        r = d.create_region(ARENA, 16, allocator=Freelist())
        d.spill_region(r)
        d.load_region(r)
        d.compact_region(r)
        d.mark_external(r)
        d.destroy_region(r)
        assert d.seen == [
            (r, 1, HOT, True, False),
            (r, 1, COLD, False, False),
            (r, 1, HOT, True, False),
            (r, 2, HOT, True, False),
            (r, 2, EXTERNAL, False, False),
            (r, 3, EXTERNAL, False, False),  # destroy: storage gone, old handles' generation retired
        ]

    def test_failed_operations_report_nothing(self, tmp_path: Path) -> None:
        store = FailingStore(OSError("nope"))
        d = CountingDirectory(store)
        r = d.create_region(ARENA, 8, allocator=Freelist())
        heap = d.create_region(RegionKind.HOT_HEAP, 8)
        (tmp_path / "big").write_bytes(b"123456789")
        failures = [
            lambda: d.spill_region(r),
            lambda: d.pin(r),
            lambda: d.demote_region(heap),
            lambda: d.compact_region(heap),
            lambda: d.restore_region(r, tmp_path / "big"),
            lambda: d.read(Handle(r, 1, 8), 1),
            lambda: d.read(Handle(r, 2, 0), 1),
        ]
        for op in failures:
            before = dict(d.changes)
            with pytest.raises((TvmError, ValueError)):
                op()
            assert dict(d.changes) == before
        d.demote_region(r)
        before = dict(d.changes)
        with pytest.raises(BackingStoreError):
            d.demote_region(r)  # Warm -> Cold fails
        assert dict(d.changes) == before

    def test_every_visible_change_is_reported(self, tmp_path: Path) -> None:
        """Drive a scripted workload and check, after every step, that any region
        whose generation, residency, storage or pin changed got an ``_on_change``."""
        store = MemoryBackingStore()
        d = CountingDirectory(store)

        def fingerprint() -> dict[int, tuple[object, ...]]:
            return {
                r.id: (r.generation, r.residency, id(r.storage), r.storage is None, r.pinned)
                for r in d._regions.values()
            }

        a = d.create_region(ARENA, 32, allocator=Freelist(), policy=PIN_AND_SPILL)
        b = d.create_region(RegionKind.PAGE_STORE, 16, allocator=Freelist())
        c = d.create_region(RegionKind.BLOB_ARENA, 24)
        (tmp_path / "s").write_bytes(b"restore")
        ha = d.alloc(a, 8)
        steps = [
            lambda: d.write(ha, b"abcdefgh"),
            lambda: d.demote_region(a),
            lambda: d.demote_region(a),
            lambda: d.read(ha, 8),
            lambda: d.spill_region(b),
            lambda: d.copy_region(b, 0, c, 0, 4),
            lambda: d.demote_until(0, order="lru"),
            lambda: d.promote_region(c),
            lambda: d.compact_region(a),
            lambda: d.pin(c) if False else d.unpin(a),
            lambda: d.mark_external(c),
            lambda: d.load_external(c, lambda i, g: b"ext"),
            lambda: d.restore_region(b, tmp_path / "s"),
            lambda: d.load_region(a),
            lambda: d.destroy_region(b),
        ]
        for step in steps:
            before_fp, before_changes = fingerprint(), Counter(d.changes)
            step()
            after_fp = fingerprint()
            for region_id, state in before_fp.items():
                if after_fp.get(region_id) != state:
                    assert d.changes[region_id] > before_changes[region_id], (step, region_id)


# ==============================================================================
# metrics
# ==============================================================================
def test_metrics_counters_through_a_full_lifecycle(d: CountingDirectory, tmp_path: Path) -> None:
    r = d.create_region(ARENA, 32, allocator=Freelist())
    other = d.create_region(ARENA, 32)
    assert d.metrics(r) == RegionMetrics()
    h = d.alloc(r, 16)
    d.alloc(r, 8)
    d.write(h, b"0123456789abcdef")  # written 16
    d.read(h, 10)  # read 10
    d.demote_region(r)  # demotions 1
    d.promote_region(r)  # promotions 1
    d.demote_region(r)  # demotions 2
    d.demote_region(r)  # demotions 3 (spill)
    d.read(h, 4)  # fault: faults 1, promotions 2, read 14
    d.copy_region(r, 0, other, 0, 6)  # read 20; other written 6
    d.spill_region(r)  # demotions 4
    d.load_region(r)  # faults 2, promotions 3
    d.mark_external(r)
    d.load_external(r, lambda i, g: b"e")  # faults 3, promotions 4
    (tmp_path / "s").write_bytes(b"snap")
    d.restore_region(r, tmp_path / "s")  # written 20
    assert d.metrics(r) == RegionMetrics(
        allocations=2,
        bytes_allocated=24,
        bytes_read=20,
        bytes_written=20,
        faults=3,
        promotions=4,
        demotions=4,
    )
    assert d.metrics(other) == RegionMetrics(bytes_written=6)


def test_metrics_are_snapshots(d: CountingDirectory) -> None:
    r = d.create_region(ARENA, 8)
    snap = d.metrics(r)
    d.write(h0(d, r), b"x")
    assert snap.bytes_written == 0
    assert d.metrics(r).bytes_written == 1


def test_compaction_keeps_counters(d: CountingDirectory) -> None:
    r = d.create_region(ARENA, 8, allocator=Freelist())
    d.alloc(r, 4)
    d.write(h0(d, r), b"ab")
    d.compact_region(r)
    m = d.metrics(r)
    assert (m.allocations, m.bytes_allocated, m.bytes_written) == (1, 4, 2)
