"""Read-only regions and dirty-page tracking in the model (the specification) and TvmHost's Python API."""

from __future__ import annotations

from pathlib import Path

import pytest

from tvm_wasm import (
    Freelist, Handle, MemoryBackingStore, OutOfBounds, PolicyViolation, ReadOnly, RegionDirectory, RegionKind,
)
from tvm_wasm.core.directory import DIRTY_PAGE
from tvm_wasm.host.tvm_host import TvmHost

KINDS = [RegionDirectory, TvmHost]


@pytest.fixture(params=KINDS, ids=["model", "host"])
def d(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    directory = request.param(backing=MemoryBackingStore())
    yield directory
    if isinstance(directory, TvmHost):
        directory.close()


def test_freeze_makes_a_region_read_only_after_its_initial_bytes(d) -> None:  # type: ignore[no-untyped-def]
    r = d.create_region(RegionKind.BLOB_ARENA, 64, initial=b"table", freeze=True)
    assert d.is_read_only(r)
    assert d.read(Handle(r, 1, 0), 6) == b"table\0"
    assert d.metrics(r).bytes_written == 0  # the initial fill is part of creation
    with pytest.raises(ReadOnly) as info:
        d.write(Handle(r, 1, 10), b"x")
    assert info.value.code == 8 and info.value.region_id == r


def test_initial_bytes_larger_than_the_region_are_refused_before_anything_exists(d) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OutOfBounds):
        d.create_region(RegionKind.BLOB_ARENA, 4, initial=b"12345")
    assert len(d) == 0


def test_protect_and_unprotect(d) -> None:  # type: ignore[no-untyped-def]
    r = d.create_region(RegionKind.BLOB_ARENA, 64)
    d.protect(r)
    with pytest.raises(ReadOnly):
        d.fill(Handle(r, 1, 0), 4, 9)
    d.protect(r, read_only=False)
    d.fill(Handle(r, 1, 0), 4, 9)
    assert d.read(Handle(r, 1, 0), 5) == b"\t\t\t\t\0"


def test_a_read_only_region_still_spills_and_faults_back_in(d) -> None:  # type: ignore[no-untyped-def]
    r = d.create_region(RegionKind.BLOB_ARENA, 64, initial=b"kept", freeze=True)
    d.spill_region(r)
    assert d.read(Handle(r, 1, 0), 4) == b"kept"  # faulted in: the bytes did not change
    d.spill_region(r)
    with pytest.raises(ReadOnly):
        d.write(Handle(r, 1, 0), b"no")
    assert d.read(Handle(r, 1, 0), 4) == b"kept"


def test_compaction_restore_and_load_external_are_refused(d, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = d.create_region(RegionKind.BLOB_ARENA, 64, allocator=Freelist())
    d.alloc(r, 8)
    d.snapshot_region(r, tmp_path / "snap")
    d.protect(r)
    before = d.read(Handle(r, 1, 0), 64), d.region_info(r)
    for call in (lambda: d.compact_region(r), lambda: d.restore_region(r, tmp_path / "snap"),
                 lambda: d.mark_external(r), lambda: d.alloc(r, 4)):
        with pytest.raises(ReadOnly):
            call()
    assert (d.read(Handle(r, 1, 0), 64), d.region_info(r)) == before


def test_dirty_pages_are_the_pages_touched(d) -> None:  # type: ignore[no-untyped-def]
    r = d.create_region(RegionKind.BLOB_ARENA, 5 * DIRTY_PAGE, track_dirty=True)
    other = d.create_region(RegionKind.BLOB_ARENA, 5 * DIRTY_PAGE)
    assert d.tracks_dirty(r) and d.dirty_pages(r) == []
    d.write(Handle(r, 1, DIRTY_PAGE - 1), b"ab")  # straddles pages 0 and 1
    d.fill(Handle(r, 1, 4 * DIRTY_PAGE), 1, 1)
    d.copy(Handle(r, 1, 0), Handle(r, 1, 3 * DIRTY_PAGE), 0)  # nothing changes: nothing dirty
    assert d.dirty_pages(r) == [0, 1, 4]
    d.copy(Handle(r, 1, 0), Handle(other, 1, 0), 10)  # reading a tracked region dirties nothing
    assert d.dirty_pages(r) == [0, 1, 4]
    d.copy_region(other, 0, r, 2 * DIRTY_PAGE, DIRTY_PAGE + 1)
    assert d.dirty_pages(r) == [0, 1, 2, 3, 4]
    d.clear_dirty(r)
    assert d.dirty_pages(r) == []


def test_whole_region_changes_dirty_every_page(d, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = d.create_region(RegionKind.BLOB_ARENA, 2 * DIRTY_PAGE + 1, allocator=Freelist(), track_dirty=True)
    d.snapshot_region(r, tmp_path / "snap")
    d.restore_region(r, tmp_path / "snap")
    assert d.dirty_pages(r) == [0, 1, 2]
    d.clear_dirty(r)
    d.alloc(r, 8)
    assert d.dirty_pages(r) == []  # allocation is metadata only
    d.compact_region(r)
    assert d.dirty_pages(r) == [0, 1, 2]


def test_spill_and_fault_in_leave_the_dirty_pages_alone(d) -> None:  # type: ignore[no-untyped-def]
    r = d.create_region(RegionKind.BLOB_ARENA, 3 * DIRTY_PAGE, track_dirty=True)
    d.write(Handle(r, 1, DIRTY_PAGE), b"x")
    d.spill_region(r)
    d.load_region(r)
    assert d.dirty_pages(r) == [1]


def test_tracking_can_start_later_and_stop(d) -> None:  # type: ignore[no-untyped-def]
    r = d.create_region(RegionKind.BLOB_ARENA, 3 * DIRTY_PAGE)
    d.write(Handle(r, 1, 0), b"before")
    with pytest.raises(PolicyViolation):
        d.dirty_pages(r)
    with pytest.raises(PolicyViolation):
        d.clear_dirty(r)
    d.track_dirty(r)
    d.track_dirty(r)  # already on: a no-op, nothing cleared
    assert d.dirty_pages(r) == []  # starts clean
    d.write(Handle(r, 1, 2 * DIRTY_PAGE), b"after")
    assert d.dirty_pages(r) == [2]
    d.track_dirty(r, False)
    assert not d.tracks_dirty(r)
    d.track_dirty(r)
    assert d.dirty_pages(r) == []


def test_destroy_drops_protection_and_tracking(d) -> None:  # type: ignore[no-untyped-def]
    r = d.create_region(RegionKind.BLOB_ARENA, DIRTY_PAGE, freeze=True, track_dirty=True)
    d.destroy_region(r)
    s = d.create_region(RegionKind.BLOB_ARENA, DIRTY_PAGE)
    assert not d.is_read_only(s) and not d.tracks_dirty(s)


def test_the_readme_example_runs() -> None:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Read-only regions, discard and dirty pages", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - running the documented example is the test
