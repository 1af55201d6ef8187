"""Kind: an operation the model refuses is refused the same way on every layer.

One table of refusals (each row: a setup and the refused operation), run on the
model, ``TvmHost``'s Python API, the raw ABI from a guest and the
self-contained module. Python layers must raise the model's exact class; code
layers (raw ABI, module) the same code. After the refusal nothing has changed.
The WIT path runs the same table in ``tests/component/test_wit_refusals.py``.

Rows a layer cannot express are listed with the reason, not skipped silently:
the raw ABI has no control plane (only data rows run there), and the
self-contained module has no imported regions and no Cold/External tier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from layers import LAYERS, GuestModuleLayer, RawAbiLayer

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


def cells():
    for row in ROWS:
        for layer in LAYERS:
            if layer is RawAbiLayer and not row.data:
                continue  # the raw ABI has no control plane: the Python API's row covers it
            if layer is GuestModuleLayer and not row.module:
                continue  # the self-contained module has no imported regions and no Cold/External tier
            yield pytest.param(row, layer, id=f"{row.name}-{layer.name}")


@pytest.mark.parametrize(("row", "layer"), list(cells()))
def test_refusal_is_the_models_on_every_layer(row: Row, layer) -> None:
    L = layer()
    try:
        refused = row.setup(L)
        before = L.state()
        with pytest.raises(Exception) as info:
            refused()
        exc = info.value
        if issubclass(row.error, TvmError):
            assert isinstance(exc, TvmError), f"{layer.name}: {exc!r} is not a TvmError"
            if layer.checks_type:
                assert type(exc) is row.error, f"{layer.name}: {type(exc).__name__}, the model says {row.error.__name__}"
            assert exc.code == row.error.code, f"{layer.name}: code {exc.code}, the model says {row.error.code}"
        else:
            assert type(exc) is row.error, f"{layer.name}: {exc!r}"
        assert L.state() == before, f"{layer.name}: a refused operation changed the directory"
        if row.after is not None:
            row.after(L)
    finally:
        L.close()


def test_every_layer_runs_most_rows() -> None:
    """The table is not silently thin on any layer."""
    counts = {layer.name: sum(1 for p in cells() if p.values[1] is layer) for layer in LAYERS}
    assert counts["model"] == counts["host"] == len(ROWS)
    assert counts["raw-abi"] >= 10 and counts["guest-module"] >= len(ROWS) - 3
