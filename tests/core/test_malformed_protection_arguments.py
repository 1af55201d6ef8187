"""Malformed arguments to protection and checkpoint calls are ``TypeError``s, and a checkpoint released by
destroying one of its regions says so; nothing changes on refusal."""

from __future__ import annotations

import pytest

from tvm_wasm import Handle, MemoryBackingStore, RegionDirectory, RegionKind
from tvm_wasm.core.errors import CheckpointError

PAGE = 65536


def make() -> tuple[RegionDirectory, int]:
    d = RegionDirectory(MemoryBackingStore())
    return d, d.create_region(RegionKind.BLOB_ARENA, PAGE)


@pytest.mark.parametrize("flag", ["yes", "", 1, 0, None])
def test_protect_and_track_dirty_take_only_bools(flag: object) -> None:
    d, rid = make()
    with pytest.raises(TypeError, match="must be True or False"):
        d.protect(rid, read_only=flag)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be True or False"):
        d.track_dirty(rid, flag)  # type: ignore[arg-type]
    assert not d.is_read_only(rid) and not d.tracks_dirty(rid)


@pytest.mark.parametrize("bad", ["x", 1.0, None])
def test_region_ids_are_integers(bad: object) -> None:
    d, _ = make()
    with pytest.raises(TypeError, match="region_id must be an integer, not"):
        d.protect(bad, read_only=True)  # type: ignore[arg-type]


def test_release_of_a_non_checkpoint_is_a_type_error() -> None:
    d, _ = make()
    with pytest.raises(TypeError, match="expected a Checkpoint"):
        d.release_checkpoint(5)  # type: ignore[arg-type]


def test_rollback_after_a_region_was_destroyed_names_the_region() -> None:
    d, a = make()
    b = d.create_region(RegionKind.BLOB_ARENA, PAGE)
    cp = d.checkpoint([a, b])
    d.write(Handle(b, 1, 0), b"after")
    d.destroy_region(a)
    with pytest.raises(CheckpointError, match=f"released when region {a} was destroyed"):
        d.rollback(cp)
    assert bytes(d.read(Handle(b, 1, 0), 5)) == b"after"
