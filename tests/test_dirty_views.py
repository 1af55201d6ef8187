"""Zero-copy views of dirty-tracked regions: a writable view marks its range dirty when it is taken, a
read-only one marks nothing, on the host (``TvmHost.view``) and in the self-contained module
(``GuestInstance.view``/``handle_view`` through the module's ``note_write``). The browser package's views
are checked in ``tvm_wasm/guest/js/test/checks.js``."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tvm_wasm import Handle, NotResident, ReadOnly, RegionKind, TvmHost
from tvm_wasm.core.backing import MemoryBackingStore
from tvm_wasm.core.directory import DIRTY_PAGE
from tvm_wasm.core.errors import OutOfBounds, StaleHandle
from tvm_wasm.guest import build_module
from tvm_wasm.guest.instance import GuestInstance

CAPACITY = 5 * DIRTY_PAGE + 10  # six pages, the last one partial


@functools.cache
def _module() -> bytes:
    return build_module(pools=1, max_pages=16).wasm


def _host() -> TvmHost:
    return TvmHost()


def _guest() -> GuestInstance:
    return GuestInstance(_module())


LAYERS = {"host": _host, "module": _guest}


@pytest.fixture(params=list(LAYERS))
def d(request):  # type: ignore[no-untyped-def]
    layer = LAYERS[request.param]()
    yield layer
    layer.close()


def tracked_region(d, capacity: int = CAPACITY) -> int:  # type: ignore[no-untyped-def]
    """A region with dirty tracking on (the module's create_region takes no options: track_dirty after)."""
    r = d.create_region(RegionKind.BLOB_ARENA, capacity)
    d.track_dirty(r)
    return r


def test_a_writable_view_marks_the_whole_region_a_read_only_one_nothing(d) -> None:  # type: ignore[no-untyped-def]
    r = tracked_region(d)
    ro = d.view(r, writable=False)
    assert not ro.flags.writeable and len(ro) == CAPACITY
    with pytest.raises(ValueError):
        ro[0] = 1
    assert d.dirty_pages(r) == []
    view = d.view(r)
    assert view.flags.writeable and d.dirty_pages(r) == [0, 1, 2, 3, 4, 5]
    d.clear_dirty(r)
    view[3 * DIRTY_PAGE] = 7  # not seen one by one: the view was marked when taken
    assert d.read(Handle(r, 1, 3 * DIRTY_PAGE), 1) == b"\x07" and d.dirty_pages(r) == []
    d.view(r)
    assert d.dirty_pages(r) == [0, 1, 2, 3, 4, 5]


def test_views_of_untracked_and_read_only_regions(d) -> None:  # type: ignore[no-untyped-def]
    plain = d.create_region(RegionKind.BLOB_ARENA, CAPACITY)
    d.view(plain)[:] = 3  # untracked: nothing to mark, nothing refused
    assert d.read(Handle(plain, 1, CAPACITY - 1), 1) == b"\x03"
    frozen = tracked_region(d)
    d.write(Handle(frozen, 1, 0), b"ro")
    d.clear_dirty(frozen)
    d.protect(frozen, True)
    view = d.view(frozen)  # a read-only region's view is read-only and marks nothing
    assert not view.flags.writeable and d.dirty_pages(frozen) == []
    with pytest.raises(TypeError):
        d.view(plain, writable=1)


def test_reads_and_writes_mark_exactly_what_they_change(d) -> None:  # type: ignore[no-untyped-def]
    r = tracked_region(d)
    assert d.read(Handle(r, 1, 0), CAPACITY) == bytes(CAPACITY) and d.dirty_pages(r) == []
    d.write(Handle(r, 1, 2 * DIRTY_PAGE - 1), b"ab")
    assert d.dirty_pages(r) == [1, 2]


def test_a_cold_region_has_no_view() -> None:
    with TvmHost(backing=MemoryBackingStore()) as host:
        r = host.create_region(RegionKind.BLOB_ARENA, CAPACITY, track_dirty=True)
        host.spill_region(r)
        with pytest.raises(NotResident):
            host.view(r)
        assert host.dirty_pages(r) == []


def test_handle_views_in_the_module_mark_their_range() -> None:
    g = _guest()
    try:
        r = tracked_region(g)
        g.handle_view(Handle(r, 1, DIRTY_PAGE - 1), 2)[:] = 1
        assert g.dirty_pages(r) == [0, 1]
        g.clear_dirty(r)
        assert not g.handle_view(Handle(r, 1, 0), CAPACITY, writable=False).flags.writeable
        assert g.dirty_pages(r) == []
        h = Handle(r, 1, 4 * DIRTY_PAGE).to_i64()
        assert g.raw("note_write", h, 0) == 0 and g.dirty_pages(r) == []  # an empty range marks nothing
        assert g.raw("note_write", h, DIRTY_PAGE + 10) == 0 and g.dirty_pages(r) == [4, 5]
        assert g.raw("note_write", h, DIRTY_PAGE + 11) == OutOfBounds.code
        assert g.raw("note_write", Handle(r, 2, 0).to_i64(), 1) == StaleHandle.code
        g.protect(r, True)
        g.clear_dirty(r)
        assert g.raw("note_write", h, 1) == ReadOnly.code and g.dirty_pages(r) == []
        assert np.array_equal(g.view(r), g.view(r, writable=False))
    finally:
        g.close()
