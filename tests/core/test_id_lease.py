"""The id lease (``tvm_wasm.core.id_lease``): no handle a process handed out while using a
``FileCheckpointStore`` is ever accepted by a later process that opens the store. Real subprocesses
(one killed right after a lease extension), an in-process property test of the lease arithmetic, a
retired id, exhausted fresh ids, and a lease that is corrupted or cannot be written."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lease_processes import a_then_b, refuse_lease_writes
from tvm_wasm import CheckpointError, Freelist, Handle, RegionDirectory, RegionKind, StaleHandle
from tvm_wasm.core import checkpoint_store
from tvm_wasm.core.checkpoint_store import FileCheckpointStore
from tvm_wasm.core.id_lease import LEASE_NAME, Lease

PAGE = 4096


def test_a_later_process_refuses_every_handle_an_earlier_one_handed_out(tmp_path):
    lines, (old, leased, refused, mine) = a_then_b(tmp_path / "store", "model")
    assert lines[-1] == "done" and old >= 30 and leased == 0
    assert refused == 2 * old and mine >= 12  # read and write of each old handle: StaleHandle


def test_a_process_killed_right_after_a_lease_extension_leaves_its_handles_refused(tmp_path):
    for crash_after in (1, 3, 6):  # the first block of ids; in the churn of generations
        lines, (old, leased, refused, _) = a_then_b(tmp_path / f"store{crash_after}", "model", crash_after)
        assert lines[-1].startswith("leased") and leased == 1
        assert refused == 2 * (old + leased)


def directory(root: Path, **blocks: int) -> tuple[FileCheckpointStore, RegionDirectory]:
    store = FileCheckpointStore(root, **blocks)
    return store, RegionDirectory(checkpoint_store=store)


def on_disk(root: Path) -> Lease:
    return Lease.decode((root / LEASE_NAME).read_bytes(), "test")


OPS = st.lists(st.tuples(st.sampled_from(["create", "destroy", "compact", "rollback", "reopen"]),
                         st.integers(0, 7)), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, id_block=st.integers(1, 5), generation_block=st.integers(1, 4))
def test_no_id_and_generation_is_handed_out_by_two_processes(ops, id_block, generation_block):
    """Random churn over "processes" (each a new store object and directory on the same folder): the lease on
    disk covers every (id, generation) a region had at every instant, no pair of a later process is a pair of
    an earlier one, and every earlier handle is StaleHandle in the later directory."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        store, d = directory(root, id_block=id_block, generation_block=generation_block)
        earlier: set[tuple[int, int]] = set()
        current: set[tuple[int, int]] = set()

        def observe() -> None:
            lease = on_disk(root) if (root / LEASE_NAME).exists() else Lease()
            for info in d.list_regions():
                assert lease.covers(info.id, info.generation), (info.id, info.generation, lease.high)
                assert (info.id, info.generation) not in earlier
                current.add((info.id, info.generation))

        for op, pick in ops:
            live = list(d)
            target = live[pick % len(live)] if live else None
            if op == "create":
                d.create_region(RegionKind.OBJECT_ARENA, PAGE, allocator=Freelist())
            elif op == "destroy" and target is not None:
                d.destroy_region(target)
            elif op == "compact" and target is not None:
                d.compact_region(target)
            elif op == "rollback" and target is not None:
                cp = d.checkpoint([target])
                d.alloc(target, 8)
                d.rollback(cp)
                d.release_checkpoint(cp)
            elif op == "reopen":
                earlier |= current
                current = set()
                store, d = directory(root, id_block=id_block, generation_block=generation_block)
                for region_id, generation in earlier:
                    with pytest.raises(StaleHandle):
                        d.read(Handle(region_id, generation, 0), 1)
            observe()


def test_an_id_at_the_last_generation_is_retired_for_later_processes(tmp_path):
    store, d = directory(tmp_path, generation_block=16384)
    rid = d.create_region(RegionKind.OBJECT_ARENA, 64, allocator=Freelist())
    for _ in range(0xFFFE):
        d.compact_region(rid)
    assert d.region_info(rid).generation == 0xFFFF
    last = d.alloc(rid, 8)
    _, later = directory(tmp_path)
    with pytest.raises(StaleHandle, match="destroyed"):
        later.read(last, 1)
    made = [later.create_region(RegionKind.BLOB_ARENA, 64) for _ in range(70)]
    assert rid not in made


def test_when_fresh_ids_run_out_old_ids_come_back_above_their_lease(tmp_path):
    store, d = directory(tmp_path, id_block=16384)
    ids = [d.create_region(RegionKind.BLOB_ARENA, 1) for _ in range(0xFFFF)]
    assert ids[-1] == 0xFFFF
    kept = [Handle(rid, 1, 0) for rid in ids[:5]]
    _, later = directory(tmp_path, id_block=16384)
    again = later.create_region(RegionKind.BLOB_ARENA, 1)  # no fresh id left: the oldest leased one
    info = later.region_info(again)
    assert (info.id, info.generation) == (1, 16384 // 16384 * 32 + 1)  # ids came 32 generations at a time
    for handle in kept:
        with pytest.raises(StaleHandle):
            later.read(handle, 1)


def test_a_corrupted_or_torn_lease_is_a_checkpoint_error_on_open(tmp_path):
    _, d = directory(tmp_path)
    d.create_region(RegionKind.BLOB_ARENA, PAGE)
    path = tmp_path / LEASE_NAME
    good = path.read_bytes()
    for bad in (good[:-1] + bytes([good[-1] ^ 1]), good[:20], good[: len(good) - 2], b"XXXXXXXX" + good[8:], b""):
        path.write_bytes(bad)
        with pytest.raises(CheckpointError, match="lease"):
            FileCheckpointStore(tmp_path)
    path.write_bytes(good)
    _, later = directory(tmp_path)
    assert later.create_region(RegionKind.BLOB_ARENA, PAGE) == 64  # above the first block (ids 1..63)


def test_a_lease_that_cannot_be_written_hands_out_nothing(tmp_path, monkeypatch):
    store, d = directory(tmp_path, id_block=1, generation_block=1)
    rid = d.create_region(RegionKind.OBJECT_ARENA, PAGE, allocator=Freelist())
    h = d.alloc(rid, 8)
    d.write(h, b"kept")
    cp = d.checkpoint([rid])
    d.alloc(rid, 8)
    refuse_lease_writes(monkeypatch)
    regions = d.list_regions()
    for attempt in (lambda: d.create_region(RegionKind.BLOB_ARENA, PAGE), lambda: d.compact_region(rid),
                    lambda: d.rollback(cp)):
        with pytest.raises(CheckpointError, match="lease"):
            attempt()
        assert d.list_regions() == regions  # no region, no new generation, nothing moved
    assert d.read(h, 4) == b"kept"
    monkeypatch.undo()  # the lease can be written again
    assert d.create_region(RegionKind.BLOB_ARENA, PAGE) == rid + 1
    assert d.rollback(cp)[rid].new_generation == 2


def test_malformed_blocks_are_value_errors(tmp_path):
    for bad in (0, -1, 1 << 16, True, 2.0):
        with pytest.raises(ValueError):
            FileCheckpointStore(tmp_path, id_block=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            FileCheckpointStore(tmp_path, generation_block=bad)  # type: ignore[arg-type]


def test_blocks_double_so_churn_rarely_writes_and_a_restart_burns_less_than_it_used(tmp_path, monkeypatch):
    writes = []
    real = checkpoint_store.write_parts_durably

    def count(final, parts):
        writes.extend([final.name] if final.name == LEASE_NAME else [])
        real(final, parts)

    monkeypatch.setattr(checkpoint_store, "write_parts_durably", count)
    store, d = directory(tmp_path)
    rid = d.create_region(RegionKind.OBJECT_ARENA, 64, allocator=Freelist())
    for _ in range(3000):
        d.compact_region(rid)
    ids = [d.create_region(RegionKind.BLOB_ARENA, 1) for _ in range(3000)]
    generation = d.region_info(rid).generation
    assert generation == 3001
    assert len(writes) <= 1 + 7 + 6  # 32, 64, .. 1024, 1024: eight for the generations; 64 .. 1024: six for ids
    lease = on_disk(tmp_path)
    assert generation <= lease.generations[rid] < generation + 1024  # unused: below one capped block
    assert max(ids) < lease.high <= max(ids) + 1024
    _, later = directory(tmp_path)
    assert later.create_region(RegionKind.BLOB_ARENA, 1) == lease.high
