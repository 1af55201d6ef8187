"""Checkpoints and rollback in the model: the rules of ``tvm_wasm.core.checkpoints``."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from tvm_wasm import (
    AllocationFailed,
    Freelist,
    Handle,
    MemoryBackingStore,
    NotResident,
    RegionDirectory,
    RegionKind,
    Residency,
    Slab,
    StaleHandle,
)
from tvm_wasm.core.checkpoint_store import HEADER_SIZE, FileCheckpointStore, MemoryCheckpointStore
from tvm_wasm.core.errors import CheckpointError, ReadOnly

from checkpoint_machine import PAGE, CheckpointMachine, check_a_block_born_after_the_checkpoint_stays_dead

KIB = 1024


def directory(**kwargs) -> RegionDirectory:
    return RegionDirectory(MemoryBackingStore(), **kwargs)


def test_first_checkpoint_copies_every_page_then_only_dirty_ones() -> None:
    d = directory()
    rid = d.create_region(RegionKind.BLOB_ARENA, 10 * PAGE + 1)
    first = d.checkpoint([rid])
    assert first.pages_copied == 11 and d.tracks_dirty(rid)
    handle = d.alloc(rid, 10 * PAGE + 1)
    d.write(handle.with_offset(3 * PAGE + 5), b"x" * (PAGE + 1))  # pages 3 and 4
    d.write(handle.with_offset(10 * PAGE), b"y")  # the partial last page
    second = d.checkpoint([rid])
    assert (second.pages_copied, second.bytes_copied) == (3, 3 * PAGE)
    assert d.checkpoint([rid]).pages_copied == 0


def test_rollback_restores_bytes_and_keeps_the_generation_when_the_layout_is_unchanged() -> None:
    d = directory()
    rid = d.create_region(RegionKind.BLOB_ARENA, 3 * PAGE)
    handle = d.alloc(rid, 3 * PAGE)
    d.write(handle, b"a" * 3 * PAGE)
    cp = d.checkpoint([rid])
    d.write(handle.with_offset(PAGE), b"b" * 10)
    assert d.rollback(cp) == {}
    assert d.read(handle, 3 * PAGE) == b"a" * 3 * PAGE  # the same handle still works: same blocks
    d.write(handle, b"c")
    d.rollback(cp)  # again and again
    assert d.read(handle, 1) == b"a"


def test_a_layout_change_moves_the_region_to_a_new_generation_and_old_handles_are_stale() -> None:
    d = directory()
    rid = d.create_region(RegionKind.OBJECT_ARENA, 4 * PAGE, allocator=Freelist())
    kept = d.alloc(rid, 100)
    d.write(kept, b"k" * 100)
    cp = d.checkpoint([rid])
    later = d.alloc(rid, 100)  # a block the checkpoint does not have
    d.write(later, b"l" * 100)
    remaps = d.rollback(cp)
    remap = remaps[rid]
    assert (remap.old_generation, remap.new_generation) == (1, 2)
    for stale in (kept, later):
        with pytest.raises(StaleHandle):
            d.read(stale, 1)
    migrated = remap.migrate(kept)
    assert migrated == Handle(rid, 2, kept.offset) and d.read(migrated, 100) == b"k" * 100
    assert d.alloc(rid, 100).offset == later.offset  # the allocator is back where it was
    assert remap.migrate(Handle(rid + 1, 1, 0)) is None


def test_rollback_across_compaction_never_revives_a_generation() -> None:
    d = directory()
    rid = d.create_region(RegionKind.OBJECT_ARENA, 2 * PAGE, allocator=Freelist())
    a, b = d.alloc(rid, 64), d.alloc(rid, 64)
    d.write(b, b"B" * 64)
    cp = d.checkpoint([rid])
    d.dealloc(a)
    compacted = d.compact_region(rid)  # generation 2
    moved = compacted.migrate(b)
    remap = d.rollback(cp)[rid]
    assert remap.new_generation == 3  # never back to 1, never 2 again
    for old in (a, b, moved):
        with pytest.raises(StaleHandle):
            d.read(old, 1)
    assert d.read(remap.migrate(b), 64) == b"B" * 64


def test_regions_spilled_in_between_are_restored_exactly() -> None:
    d = directory()
    rid = d.create_region(RegionKind.BLOB_ARENA, 5 * PAGE)
    handle = d.alloc(rid, 5 * PAGE)
    d.write(handle, bytes(range(256)) * (5 * PAGE // 256))
    image = d.read(handle, 5 * PAGE)
    d.spill_region(rid)
    cp = d.checkpoint([rid])  # read from the spilled copy: it stays Cold
    assert d.region_info(rid).residency is Residency.COLD
    d.write(handle.with_offset(2 * PAGE), b"\xff" * PAGE)  # faults in
    d.spill_region(rid)
    d.rollback(cp)
    assert d.region_info(rid).residency is Residency.HOT
    assert d.read(handle, 5 * PAGE) == image


def test_external_regions_cannot_be_checkpointed_but_are_rolled_back() -> None:
    d = directory()
    rid = d.create_region(RegionKind.BLOB_ARENA, 2 * PAGE)
    handle = d.alloc(rid, 2 * PAGE)
    d.write(handle, b"e" * 2 * PAGE)
    cp = d.checkpoint([rid])
    d.mark_external(rid)
    with pytest.raises(NotResident):
        d.checkpoint([rid])
    d.rollback(cp)
    assert d.read(handle, 2 * PAGE) == b"e" * 2 * PAGE


def test_later_checkpoints_are_superseded_and_others_survive() -> None:
    d = directory()
    r1 = d.create_region(RegionKind.BLOB_ARENA, PAGE)
    r2 = d.create_region(RegionKind.BLOB_ARENA, PAGE)
    h1 = d.alloc(r1, PAGE)
    first = d.checkpoint([r1])
    d.write(h1, b"1")
    later = d.checkpoint([r1, r2])
    other = d.checkpoint([r2])
    d.rollback(first)
    with pytest.raises(CheckpointError, match="superseded"):
        d.rollback(later)
    assert d.checkpoints() == [first, other]
    d.rollback(other)
    with pytest.raises(CheckpointError, match=f"checkpoint {later.id} was superseded by the rollback to checkpoint "
                                              f"{first.id}"):
        d.release_checkpoint(later)  # not live: refused like a rollback, nothing changes
    assert d.checkpoints() == [first, other]
    with pytest.raises(CheckpointError, match="not a checkpoint of this RegionDirectory"):
        directory().rollback(first)


def test_releasing_checkpoints_folds_their_pages_into_the_next_one() -> None:
    d = directory()
    rid = d.create_region(RegionKind.BLOB_ARENA, 8 * PAGE)
    handle = d.alloc(rid, 8 * PAGE)
    images, cps = [], []
    for step in range(6):
        d.write(handle.with_offset(step * PAGE + 7), bytes([step + 1]) * 9)
        cps.append(d.checkpoint([rid]))
        images.append(d.read(handle, 8 * PAGE))
    for gone in (0, 2, 5, 1):  # oldest, middle, newest, the new oldest
        d.release_checkpoint(cps[gone])
    for keep in (4, 3):
        d.write(handle, b"\x00" * 8 * PAGE)
        d.rollback(cps[keep])
        assert d.read(handle, 8 * PAGE) == images[keep]
    # releasing the newest left its pages pending: the next checkpoint still restores exactly
    d.write(handle.with_offset(PAGE), b"z")
    after = d.checkpoint([rid])
    d.write(handle, b"\x00" * 8 * PAGE)
    d.rollback(after)
    assert d.read(handle, 2 * PAGE)[PAGE] == ord("z")


def test_clear_dirty_by_the_caller_makes_the_next_checkpoint_full() -> None:
    d = directory()
    rid = d.create_region(RegionKind.BLOB_ARENA, 4 * PAGE)
    handle = d.alloc(rid, 4 * PAGE)
    d.checkpoint([rid])
    d.write(handle, b"q")
    d.clear_dirty(rid)
    cp = d.checkpoint([rid])
    assert cp.pages_copied == 4
    d.write(handle, b"r")
    d.rollback(cp)
    assert d.read(handle, 1) == b"q"


def test_refusals_change_nothing() -> None:
    d = directory()
    rid = d.create_region(RegionKind.BLOB_ARENA, 2 * PAGE)
    handle = d.alloc(rid, PAGE)
    cp = d.checkpoint([rid])
    d.write(handle, b"w")
    d.protect(rid, read_only=True)
    with pytest.raises(ReadOnly):
        d.rollback(cp)
    assert d.read(handle, 1) == b"w"
    d.protect(rid, read_only=False)
    for bad, error in (([], ValueError), ([rid, rid], ValueError), (rid, TypeError), ([99], Exception)):
        with pytest.raises(error):
            d.checkpoint(bad)
    with pytest.raises(TypeError):
        d.rollback("checkpoint")  # type: ignore[arg-type]
    d.destroy_region(rid)
    with pytest.raises(CheckpointError):
        d.rollback(cp)


def test_generation_exhaustion_refuses_a_rollback_that_needs_a_new_generation() -> None:
    d = directory()
    rid = d.create_region(RegionKind.OBJECT_ARENA, PAGE, allocator=Freelist())
    cp = d.checkpoint([rid])
    d._region(rid).generation = 0xFFFF
    d.alloc(rid, 8)
    with pytest.raises(AllocationFailed, match="last one"):
        d.rollback(cp)


def test_file_store_restores_and_refuses_torn_or_corrupted_entries(tmp_path) -> None:
    store = FileCheckpointStore(tmp_path)
    d = directory(checkpoint_store=store)
    rid = d.create_region(RegionKind.BLOB_ARENA, 3 * PAGE)
    handle = d.alloc(rid, 3 * PAGE)
    d.write(handle, b"f" * 3 * PAGE)
    cp = d.checkpoint([rid])
    d.write(handle, b"g" * 10)
    d.rollback(cp)
    assert d.read(handle, 3 * PAGE) == b"f" * 3 * PAGE
    (entry,) = [p for p in tmp_path.iterdir() if p.name.startswith("ckpt-")]
    good = entry.read_bytes()
    corruptions = {
        "flipped": good[:HEADER_SIZE + 40] + bytes([good[HEADER_SIZE + 40] ^ 1]) + good[HEADER_SIZE + 41:],
        "torn": good[: len(good) // 2],
        "header": good[:20],
        "magic": b"XXXXXXXX" + good[8:],
    }
    for name, bad in corruptions.items():
        entry.write_bytes(bad)
        d.write(handle, b"h" * 10)
        with pytest.raises(CheckpointError):
            d.rollback(cp)
        assert d.read(handle, 10) == b"h" * 10, name  # nothing changed
    entry.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        d.rollback(cp)
    # a crashed writer's temporary file is removed when a store opens the directory
    (tmp_path / f".{entry.name}.tmp-0123456789abcdef").write_bytes(b"partial")
    FileCheckpointStore(tmp_path)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_memory_store_holds_one_full_copy_plus_deltas() -> None:
    store = MemoryCheckpointStore()
    d = directory(checkpoint_store=store)
    rid = d.create_region(RegionKind.BLOB_ARENA, 64 * PAGE)
    handle = d.alloc(rid, 64 * PAGE)
    kept = []
    for step in range(20):
        d.write(handle.with_offset((step % 64) * PAGE), b"s")
        kept.append(d.checkpoint([rid]))
        if len(kept) > 4:
            d.release_checkpoint(kept.pop(0))
    assert store.nbytes() == 64 * PAGE + 3 * PAGE  # the oldest kept is full, the 3 others hold 1 page


class ModelCheckpoints(CheckpointMachine):
    def make(self):
        return RegionDirectory(MemoryBackingStore())


TestModelCheckpoints = ModelCheckpoints.TestCase
TestModelCheckpoints.settings = settings(max_examples=120, stateful_step_count=40, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("allocator", [Freelist, lambda: None, lambda: Slab(64)], ids=["freelist", "bump", "slab"])
def test_migrate_refuses_a_block_born_after_the_checkpoint(allocator) -> None:
    check_a_block_born_after_the_checkpoint_stays_dead(RegionDirectory(), allocator())


def test_restored_region_refuses_a_block_born_after_the_saved_checkpoint(tmp_path) -> None:
    """Cross-process: a saved checkpoint's RestoredRegion migrates only blocks live in the saved layout."""
    from tvm_wasm.core.checkpoint_store import FileCheckpointStore

    d = RegionDirectory(checkpoint_store=FileCheckpointStore(tmp_path))
    rid = d.create_region(RegionKind.OBJECT_ARENA, 3 * 4096, allocator=Freelist())
    kept = d.alloc(rid, 50)
    d.write(kept, b"kept")
    d.checkpoint([rid])
    later = d.alloc(rid, 50)
    store = FileCheckpointStore(tmp_path)
    (saved,) = store.saved_checkpoints()
    fresh = RegionDirectory(checkpoint_store=store)
    restored = fresh.restore_saved(saved)[rid]
    assert restored.migrate(later) is None
    assert fresh.read(restored.migrate(kept), 4) == b"kept"
    fresh.alloc(restored.region_id, 50)
    assert restored.migrate(later) is None
