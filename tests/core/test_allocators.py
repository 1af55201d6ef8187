"""Unit tests for the per-region allocators: Bump, Freelist and Slab."""

from __future__ import annotations

import pytest

from tvm_wasm.core.allocators import Allocator, Bump, Freelist, Slab
from tvm_wasm.core.errors import AllocationFailed, OutOfBounds


def attached(allocator: Allocator, capacity: int) -> Allocator:
    allocator.attach(capacity)
    return allocator


BAD_ALIGNS = [0, -1, -4, 3, 6, 12, 1.0, "8", None]


# -- attachment ----------------------------------------------------------------
@pytest.mark.parametrize("make", [Bump, Freelist, lambda: Slab(8)])
def test_capacity_requires_attachment(make) -> None:  # type: ignore[no-untyped-def]
    allocator = make()
    with pytest.raises(RuntimeError, match="not attached"):
        allocator.capacity  # noqa: B018
    allocator.attach(64)
    assert allocator.capacity == 64


@pytest.mark.parametrize("make", [Bump, Freelist, lambda: Slab(8)])
def test_an_allocator_serves_one_region_only(make) -> None:  # type: ignore[no-untyped-def]
    allocator = make()
    allocator.attach(64)
    with pytest.raises(ValueError, match="already serves"):
        allocator.attach(64)
    assert allocator.capacity == 64


@pytest.mark.parametrize(
    ("allocator", "compactable", "description"),
    [(Bump(), False, "bump"), (Freelist(), True, "freelist"), (Slab(16), False, "slab(16)")],
)
def test_compactable_flag_and_description(allocator: Allocator, compactable: bool, description: str) -> None:
    assert allocator.compactable is compactable
    assert allocator.describe() == description


@pytest.mark.parametrize("make", [Bump, lambda: Slab(8)])
def test_only_freelist_offers_compaction_hooks(make) -> None:  # type: ignore[no-untyped-def]
    allocator = attached(make(), 64)
    with pytest.raises(NotImplementedError):
        allocator.live_blocks()
    with pytest.raises(NotImplementedError):
        allocator.rebuild_after_compact([])


# -- Bump ----------------------------------------------------------------------
class TestBump:
    def test_hands_out_consecutive_offsets(self) -> None:
        b = attached(Bump(), 64)
        assert [b.alloc(8), b.alloc(4), b.alloc(1), b.alloc(3)] == [0, 8, 12, 13]
        assert b.used == 16

    def test_alignment_rounds_up(self) -> None:
        b = attached(Bump(), 64)
        assert b.alloc(3) == 0
        assert b.alloc(4, 8) == 8
        assert b.used == 12
        assert b.alloc(1, 16) == 16
        assert b.alloc(1, 1) == 17
        assert b.alloc(2, 2) == 18

    def test_aligned_offset_already_aligned_is_kept(self) -> None:
        b = attached(Bump(), 64)
        b.alloc(8)
        assert b.alloc(8, 8) == 8

    def test_size_zero_is_allowed_and_takes_no_room(self) -> None:
        b = attached(Bump(), 8)
        assert b.alloc(0) == 0
        assert b.alloc(0) == 0
        assert b.used == 0
        b.alloc(8)
        assert b.alloc(0) == 8  # a zero-size block at the very end still fits

    def test_exact_fill_then_failure(self) -> None:
        b = attached(Bump(), 16)
        assert b.alloc(16) == 0
        with pytest.raises(AllocationFailed) as info:
            b.alloc(1)
        assert info.value.code == 5
        assert info.value.length == 1
        assert info.value.capacity == 16
        assert b.used == 16

    def test_too_large_fails_without_moving(self) -> None:
        b = attached(Bump(), 16)
        b.alloc(10)
        with pytest.raises(AllocationFailed):
            b.alloc(7)
        assert b.used == 10
        assert b.alloc(6) == 10

    def test_alignment_padding_that_overflows_fails(self) -> None:
        b = attached(Bump(), 16)
        b.alloc(9)
        with pytest.raises(AllocationFailed):
            b.alloc(4, 16)
        assert b.used == 9

    def test_huge_size_fails(self) -> None:
        b = attached(Bump(), 16)
        with pytest.raises(AllocationFailed):
            b.alloc(1 << 40)
        assert b.used == 0

    def test_negative_size_fails_and_never_rewinds(self) -> None:
        b = attached(Bump(), 16)
        b.alloc(8)
        with pytest.raises(AllocationFailed):
            b.alloc(-4)
        assert b.used == 8
        assert b.alloc(1) == 8

    @pytest.mark.parametrize("align", BAD_ALIGNS)
    def test_alignment_must_be_a_nonzero_power_of_two(self, align: object) -> None:
        b = attached(Bump(), 64)
        with pytest.raises(AllocationFailed, match="power of two"):
            b.alloc(4, align)  # type: ignore[arg-type]
        assert b.used == 0

    def test_dealloc_is_a_successful_no_op(self) -> None:
        b = attached(Bump(), 16)
        off = b.alloc(8)
        assert b.dealloc(off) is None
        assert b.dealloc(12345) is None
        assert b.used == 8
        assert b.alloc(1) == 8

    def test_reset_starts_over(self) -> None:
        b = attached(Bump(), 16)
        b.alloc(16)
        b.reset()
        assert b.used == 0
        assert b.alloc(4) == 0


# -- Freelist ------------------------------------------------------------------
class TestFreelist:
    def test_starts_with_one_free_block(self) -> None:
        f = attached(Freelist(), 64)
        assert f.free_blocks() == [(0, 64)]
        assert f.live_blocks() == []
        assert f.used == 0

    def test_first_fit(self) -> None:
        f = attached(Freelist(), 64)
        a, b, c = f.alloc(8), f.alloc(16), f.alloc(8)
        assert (a, b, c) == (0, 8, 24)
        f.dealloc(b)
        # 4 bytes fit in the first hole (offset 8), not after c
        assert f.alloc(4) == 8
        assert f.alloc(12) == 12
        assert f.alloc(4) == 32
        assert f.used == 8 + 4 + 12 + 8 + 4

    def test_first_fit_skips_holes_that_are_too_small(self) -> None:
        f = attached(Freelist(), 64)
        blocks = [f.alloc(8) for _ in range(4)]  # 0, 8, 16, 24
        f.dealloc(blocks[0])  # hole of 8 at 0
        f.dealloc(blocks[2])  # hole of 8 at 16
        assert f.alloc(12) == 32
        assert f.alloc(8) == 0

    @pytest.mark.parametrize("size", [0, -1, -100])
    def test_size_must_be_positive(self, size: int) -> None:
        f = attached(Freelist(), 64)
        with pytest.raises(AllocationFailed, match="at least 1 byte"):
            f.alloc(size)
        assert f.free_blocks() == [(0, 64)]

    def test_full_region_fails(self) -> None:
        f = attached(Freelist(), 16)
        f.alloc(16)
        assert f.free_blocks() == []
        with pytest.raises(AllocationFailed) as info:
            f.alloc(1)
        assert info.value.length == 1
        assert info.value.capacity == 16

    def test_fragmentation_can_fail_despite_enough_total_space(self) -> None:
        f = attached(Freelist(), 32)
        blocks = [f.alloc(8) for _ in range(4)]
        f.dealloc(blocks[0])
        f.dealloc(blocks[2])
        assert f.used == 16
        with pytest.raises(AllocationFailed):
            f.alloc(16)

    def test_alignment_leaves_padding_as_a_free_fragment(self) -> None:
        f = attached(Freelist(), 64)
        assert f.alloc(3) == 0
        assert f.alloc(8, 16) == 16
        assert f.free_blocks() == [(3, 13), (24, 40)]
        assert f.alloc(4) == 3  # the padding is reusable
        assert f.used == 15

    @pytest.mark.parametrize("align", BAD_ALIGNS)
    def test_alignment_must_be_a_nonzero_power_of_two(self, align: object) -> None:
        f = attached(Freelist(), 64)
        with pytest.raises(AllocationFailed):
            f.alloc(4, align)  # type: ignore[arg-type]

    def test_coalesces_with_right_neighbour(self) -> None:
        f = attached(Freelist(), 32)
        a, b, c = f.alloc(8), f.alloc(8), f.alloc(8)
        f.dealloc(c)  # merges with the tail (24, 8)
        assert f.free_blocks() == [(16, 16)]
        f.dealloc(b)
        assert f.free_blocks() == [(8, 24)]
        assert f.live_blocks() == [(a, 8)]

    def test_coalesces_with_left_neighbour(self) -> None:
        f = attached(Freelist(), 32)
        a, b, c, d = (f.alloc(8) for _ in range(4))
        f.dealloc(a)
        f.dealloc(b)
        assert f.free_blocks() == [(0, 16)]
        assert f.live_blocks() == [(c, 8), (d, 8)]

    def test_coalesces_both_sides(self) -> None:
        f = attached(Freelist(), 40)
        a, b, c, d, e = (f.alloc(8) for _ in range(5))
        f.dealloc(b)
        f.dealloc(d)
        assert f.free_blocks() == [(8, 8), (24, 8)]
        f.dealloc(c)
        assert f.free_blocks() == [(8, 24)]
        f.dealloc(a)
        f.dealloc(e)
        assert f.free_blocks() == [(0, 40)]
        assert f.used == 0
        assert f.alloc(40) == 0

    def test_free_list_stays_sorted_and_non_adjacent(self) -> None:
        f = attached(Freelist(), 80)
        blocks = [f.alloc(8) for _ in range(10)]
        for index in (7, 1, 5, 3, 9):
            f.dealloc(blocks[index])
        free = f.free_blocks()
        assert free == sorted(free)
        assert free == [(8, 8), (24, 8), (40, 8), (56, 8), (72, 8)]
        for (s1, n1), (s2, _) in zip(free, free[1:]):
            assert s1 + n1 < s2

    @pytest.mark.parametrize("offset", [1, 4, 7, 64, 1000, -8])
    def test_dealloc_of_an_unknown_offset_is_out_of_bounds(self, offset: int) -> None:
        f = attached(Freelist(), 64)
        f.alloc(8)
        with pytest.raises(OutOfBounds) as info:
            f.dealloc(offset)
        assert info.value.code == 3
        assert info.value.offset == offset
        assert f.used == 8

    def test_double_free_is_out_of_bounds(self) -> None:
        f = attached(Freelist(), 64)
        a = f.alloc(8)
        f.dealloc(a)
        with pytest.raises(OutOfBounds):
            f.dealloc(a)
        assert f.free_blocks() == [(0, 64)]

    def test_live_blocks_are_sorted_by_offset(self) -> None:
        f = attached(Freelist(), 64)
        a, b, c = f.alloc(4), f.alloc(8), f.alloc(2)
        f.dealloc(a)
        d = f.alloc(2)  # goes into the hole at 0
        assert d == 0
        assert f.live_blocks() == [(0, 2), (b, 8), (c, 2)]

    def test_rebuild_after_compact_packs_and_leaves_one_trailing_free_block(self) -> None:
        f = attached(Freelist(), 64)
        f.alloc(8)
        f.alloc(8)
        f.rebuild_after_compact([(0, 4), (4, 6)])
        assert f.live_blocks() == [(0, 4), (4, 6)]
        assert f.used == 10
        assert f.free_blocks() == [(10, 54)]
        assert f.alloc(54) == 10
        f.dealloc(4)
        assert f.free_blocks() == [(4, 6)]

    def test_rebuild_when_full_or_empty(self) -> None:
        f = attached(Freelist(), 16)
        f.rebuild_after_compact([(0, 16)])
        assert f.free_blocks() == []
        assert f.used == 16
        f.rebuild_after_compact([])
        assert f.free_blocks() == [(0, 16)]
        assert f.used == 0


# -- Slab ----------------------------------------------------------------------
class TestSlab:
    @pytest.mark.parametrize("class_size", [0, -1, 1.5, "8", None, True])
    def test_class_size_must_be_a_positive_int(self, class_size: object) -> None:
        with pytest.raises(ValueError, match="class size"):
            Slab(class_size)  # type: ignore[arg-type]

    def test_slot_count_wastes_a_partial_last_slot(self) -> None:
        s = attached(Slab(16), 70)
        assert s.slots == 4
        assert s.class_size == 16
        offsets = [s.alloc(16) for _ in range(4)]
        assert offsets == [0, 16, 32, 48]
        with pytest.raises(AllocationFailed, match="4 slots"):
            s.alloc(16)

    def test_capacity_below_class_size_has_no_slots(self) -> None:
        s = attached(Slab(32), 16)
        assert s.slots == 0
        with pytest.raises(AllocationFailed):
            s.alloc(32)

    def test_offset_zero_first_then_ascending(self) -> None:
        s = attached(Slab(8), 64)
        assert [s.alloc(8) for _ in range(3)] == [0, 8, 16]
        assert s.used == 24

    def test_freed_slots_are_reused_lifo(self) -> None:
        s = attached(Slab(8), 64)
        offsets = [s.alloc(8) for _ in range(5)]
        s.dealloc(offsets[1])
        s.dealloc(offsets[3])
        s.dealloc(offsets[0])
        assert s.alloc(8) == 0
        assert s.alloc(8) == 24
        assert s.alloc(8) == 8
        assert s.alloc(8) == 40  # then fresh slots again
        assert s.used == 6 * 8

    @pytest.mark.parametrize("size", [0, 1, 7, 9, 16, -8])
    def test_size_must_equal_the_class_size(self, size: int) -> None:
        s = attached(Slab(8), 64)
        with pytest.raises(AllocationFailed, match="slots are 8 byte"):
            s.alloc(size)
        assert s.used == 0

    def test_alignment(self) -> None:
        s = attached(Slab(8), 64)
        assert s.alloc(8, 8) == 0
        assert s.alloc(8, 4) == 8
        with pytest.raises(AllocationFailed, match="align"):
            s.alloc(8, 16)
        with pytest.raises(AllocationFailed):
            s.alloc(8, 3)
        assert s.used == 16

    @pytest.mark.parametrize("offset", [1, 7, 12, 64, 72, -8, -1, 1 << 33])
    def test_dealloc_of_a_non_slot_is_out_of_bounds(self, offset: int) -> None:
        s = attached(Slab(8), 64)
        s.alloc(8)
        with pytest.raises(OutOfBounds) as info:
            s.dealloc(offset)
        assert info.value.offset == offset
        assert info.value.capacity == 64
        assert s.used == 8

    def test_dealloc_of_the_wasted_partial_slot_is_out_of_bounds(self) -> None:
        s = attached(Slab(16), 40)  # slots at 0 and 16; 32..40 is wasted
        with pytest.raises(OutOfBounds):
            s.dealloc(32)

    def test_double_free_is_detected(self) -> None:
        s = attached(Slab(8), 64)
        a = s.alloc(8)
        s.dealloc(a)
        with pytest.raises(OutOfBounds, match="double free"):
            s.dealloc(a)
        assert s.used == 0
        # the slot was returned once only, so it is handed out once only
        assert s.alloc(8) == 0
        assert s.alloc(8) == 8

    def test_dealloc_of_a_never_allocated_slot_is_a_double_free(self) -> None:
        s = attached(Slab(8), 64)
        with pytest.raises(OutOfBounds, match="double free"):
            s.dealloc(16)

    def test_full_cycle(self) -> None:
        s = attached(Slab(4), 16)
        offsets = [s.alloc(4) for _ in range(4)]
        with pytest.raises(AllocationFailed):
            s.alloc(4)
        for off in offsets:
            s.dealloc(off)
        assert s.used == 0
        assert sorted(s.alloc(4) for _ in range(4)) == [0, 4, 8, 12]
