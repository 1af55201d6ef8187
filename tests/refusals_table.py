"""The refusals the model specifies, as a table any layer's adapter can run (see ``layers.py``).

Each row: a setup that builds the state and returns the refused operation, the
model's error, and where it can be expressed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tvm_wasm import (
    AllocationFailed,
    Freelist,
    Handle,
    OutOfBounds,
    Pinned,
    PolicyViolation,
    RegionKind,
    RegionNotFound,
    Slab,
    StaleHandle,
    TvmError,
    UnsupportedAllocator,
)

ARENA, HEAP, SCRATCH, BLOB = RegionKind.OBJECT_ARENA, RegionKind.HOT_HEAP, RegionKind.SCRATCH, RegionKind.BLOB_ARENA


@dataclass(frozen=True)
class Row:
    name: str
    error: type[Exception]
    setup: Callable[[object], Callable[[], object]]  # returns the refused operation
    data: bool = False  # a data-plane row: runs on the raw ABI too
    module: bool = True  # expressible on the self-contained module
    after: Callable[[object], None] | None = None


def stale_after_destroy(L):
    r = L.create(ARENA, 64)
    h = L.alloc(r, 8)
    L.destroy_region(r)
    return lambda: L.read(h, 8)


def write_after_destroy(L):
    r = L.create(ARENA, 64)
    h = L.alloc(r, 8)
    L.destroy_region(r)
    return lambda: L.write(h, b"x" * 8)


def stale_after_compaction(L):
    r = L.create(ARENA, 64, Freelist())
    h = L.alloc(r, 8)
    L.compact_region(r)
    return lambda: L.read(h, 8)


def past_capacity(L):
    r = L.create(ARENA, 64)
    h = L.alloc(r, 8)
    return lambda: L.read(h.with_offset(60), 8)


def unknown_region(L):
    L.create(ARENA, 64)
    return lambda: L.read(Handle(7, 1, 0), 1)


def bump_overflow(L):
    r = L.create(ARENA, 64)
    L.alloc(r, 60)
    return lambda: L.alloc(r, 8)


def slab_wrong_size(L):
    r = L.create(ARENA, 256, Slab(64))
    return lambda: L.alloc(r, 32)


def slab_double_free(L):
    r = L.create(ARENA, 256, Slab(64))
    h = L.alloc(r, 64)
    L.alloc(r, 64)
    L.dealloc(h)
    return lambda: L.dealloc(h)


def freelist_not_a_block(L):
    r = L.create(ARENA, 256, Freelist())
    h = L.alloc(r, 32)
    return lambda: L.dealloc(h.with_offset(8))


def freelist_zero_size(L):
    r = L.create(ARENA, 256, Freelist())
    return lambda: L.alloc(r, 0)


def compact_bump(L):
    r = L.create(ARENA, 64)
    return lambda: L.compact_region(r)


def pin_unpinnable(L):
    r = L.create(ARENA, 64)
    return lambda: L.pin(r)


def compact_pinned(L):
    r = L.create(HEAP, 64, Freelist())
    L.alloc(r, 8)
    L.pin(r)
    return lambda: L.compact_region(r)


def demote_pinned(L):
    r = L.create(HEAP, 64)
    L.pin(r)
    return lambda: L.demote_region(r)


def demote_scratch(L):
    r = L.create(SCRATCH, 64)
    return lambda: L.demote_region(r)


def destroy_unknown(L):
    L.create(ARENA, 64)
    return lambda: L.destroy_region(9)


def negative_length(L):
    r = L.create(ARENA, 64)
    h = L.alloc(r, 8)
    return lambda: L.read(h, -1)


def compact_immovable(L):
    """The field report: an imported region's live block must not move from offset 16."""
    r = L.create_immovable(ARENA, 65536, Freelist())
    a, b = L.alloc(r, 16), L.alloc(r, 16)
    L.write(b, b"live block bytes")
    L.dealloc(a)
    L.expect = (b, b"live block bytes")
    return lambda: L.compact_region(r)


def live_block_unmoved(L):
    b, payload = L.expect
    assert b.offset == 16 and L.read(b, 16) == payload


def demote_immovable(L):
    r = L.create_immovable(ARENA, 4096)
    return lambda: L.demote_region(r)


def external_immovable(L):
    r = L.create_immovable(ARENA, 4096)
    return lambda: L.mark_external(r)


def compact_last_generation(L):
    """Generation 65535 is the last: a further compaction would wrap and revive old handles."""
    r = L.create(ARENA, 64, Freelist())
    h = L.alloc(r, 8)
    L.write(h, b"oldbytes")
    L.compact_times(r, 65534)
    L.expect = (r, h)
    return lambda: L.compact_region(r)


def first_handle_stays_stale(L):
    r, h = L.expect
    with pytest.raises(TvmError) as info:
        L.read(h, 8)
    assert info.value.code == StaleHandle.code


ROWS = [
    Row("stale handle after destroy", StaleHandle, stale_after_destroy, data=True),
    Row("write through a destroyed region's handle", StaleHandle, write_after_destroy, data=True),
    Row("stale handle after compaction", StaleHandle, stale_after_compaction, data=True),
    Row("access past the capacity", OutOfBounds, past_capacity, data=True),
    Row("unknown region", RegionNotFound, unknown_region, data=True),
    Row("bump allocation past the capacity", AllocationFailed, bump_overflow, data=True),
    Row("slab allocation of another size", AllocationFailed, slab_wrong_size, data=True),
    Row("slab double free", OutOfBounds, slab_double_free, data=True),
    Row("freelist free of a non-block", OutOfBounds, freelist_not_a_block, data=True),
    Row("freelist allocation of 0 bytes", AllocationFailed, freelist_zero_size, data=True),
    Row("compact a bump region", UnsupportedAllocator, compact_bump),
    Row("pin an unpinnable kind", PolicyViolation, pin_unpinnable),
    Row("compact a pinned region", Pinned, compact_pinned),
    Row("demote a pinned region", Pinned, demote_pinned),
    Row("demote an unspillable kind", PolicyViolation, demote_scratch),
    Row("destroy an unknown region", RegionNotFound, destroy_unknown),
    Row("negative length", ValueError, negative_length),
    Row("compact an imported (immovable) region", PolicyViolation, compact_immovable, module=False,
        after=live_block_unmoved),
    Row("demote an imported region", PolicyViolation, demote_immovable, module=False),
    Row("imported region to External", PolicyViolation, external_immovable, module=False),
    Row("compact past the last generation", AllocationFailed, compact_last_generation,
        after=first_handle_stays_stale),
]
