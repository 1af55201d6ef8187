"""Checkpoints in a ``FileCheckpointStore`` outlive their process: a new process (a real subprocess,
killed with SIGKILL mid-way in one test) reopens the folder, lists the checkpoints the manifest
holds and restores each to exactly the bytes and allocator state it had, or gets ``CheckpointError``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tvm_wasm import CheckpointError, Freelist, Handle, RegionDirectory, RegionKind, TvmHost
from tvm_wasm.core.checkpoint_store import FileCheckpointStore

PAGE = 4096

# One deterministic history, replayed by the writer (a TvmHost in a subprocess) and by the checker
# (the model): step k writes, allocates and sometimes frees, then takes checkpoint k of both regions
# and releases checkpoint k-3 (its pages fold into the next one, so entries are rewritten and dropped).
HISTORY = textwrap.dedent("""
    from tvm_wasm import Freelist, Handle, RegionKind

    def setup(d):
        a = d.create_region(RegionKind.BLOB_ARENA, 40 * 4096 + 123)
        b = d.create_region(RegionKind.OBJECT_ARENA, 16 * 4096, allocator=Freelist())
        return a, b

    def step(d, a, b, k, blocks):
        d.write(Handle(a, 1, (k * 7919) % (40 * 4096)), bytes([k % 251 + 1]) * 3000)
        generation = d.region_info(b).generation
        blocks.append(d.alloc(b, 100 + k))
        d.write(blocks[-1], bytes([k % 200 + 7]) * (100 + k))
        if k % 4 == 0:
            d.dealloc(blocks.pop(0))
        return d.checkpoint([a, b])
""")

WRITER = HISTORY + textwrap.dedent("""
    import sys
    from tvm_wasm import TvmHost
    from tvm_wasm.core.checkpoint_store import FileCheckpointStore

    host = TvmHost(pools=1, checkpoint_store=FileCheckpointStore(sys.argv[1]))
    a, b = setup(host)
    blocks, kept = [], []
    for k in range(1, int(sys.argv[2]) + 1):
        kept.append(step(host, a, b, k, blocks))
        if len(kept) > 3:
            host.release_checkpoint(kept.pop(0))
        print(k, kept[-1].id, flush=True)
""")

CHECKER = HISTORY + textwrap.dedent("""
    import sys
    from tvm_wasm import RegionDirectory, TvmHost
    from tvm_wasm.core.checkpoint_store import FileCheckpointStore

    store = FileCheckpointStore(sys.argv[1])
    saved = store.saved_checkpoints()
    host = TvmHost(pools=1, checkpoint_store=store)
    for cp in saved:
        restored = host.restore_saved(cp)
        model = RegionDirectory()
        a, b = setup(model)
        blocks = []
        for k in range(1, cp.id + 1):
            step(model, a, b, k, blocks)
        for old in (a, b):
            new = restored[old].region_id
            info, expected = host.region_info(new), model.region_info(old)
            assert info.used == expected.used and info.capacity == expected.capacity, (cp.id, old)
            assert host.read(Handle(new, info.generation, 0), info.capacity) == \\
                model.read(Handle(old, expected.generation, 0), expected.capacity), (cp.id, old)
        assert restored[b].migrate(Handle(b, model.region_info(b).generation, blocks[-1].offset)) is not None
        h = host.alloc(restored[b].region_id, 64)  # the allocator goes on where it was
        assert h.offset == model.alloc(b, 64).offset, cp.id
    print(" ".join(str(cp.id) for cp in saved))
""")


def python(script: str, *args: object, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)  # type: ignore[call-overload]


def check(root: Path) -> list[int]:
    """Restore every saved checkpoint in a new process; the ids it verified."""
    checker = python(CHECKER, root)
    out, err = checker.communicate(timeout=300)
    assert checker.returncode == 0, err[-3000:]
    return [int(word) for word in out.split()]


def test_a_new_process_restores_every_checkpoint_a_finished_one_kept(tmp_path):
    writer = python(WRITER, tmp_path, 12)
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err[-3000:]
    assert check(tmp_path) == [10, 11, 12]  # the three kept (1..9 were released)


def test_a_process_killed_mid_way_leaves_restorable_checkpoints(tmp_path):
    writer = python(WRITER, tmp_path, 100000)
    assert writer.stdout is not None
    for _ in range(25):
        line = writer.stdout.readline()
        assert line, writer.stderr.read()[-3000:] if writer.stderr else ""
    os.kill(writer.pid, signal.SIGKILL)  # in the middle of whatever step comes next
    writer.wait(timeout=60)
    last = int(line.split()[0])
    verified = check(tmp_path)
    assert verified and last <= verified[-1] <= last + 1 and len(verified) <= 4  # committed: at most one step more
    assert verified == list(range(verified[0], verified[-1] + 1))
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # reopening cleaned what the kill left


def test_saved_checkpoints_survive_a_second_process_and_can_be_forgotten(tmp_path):
    writer = python(WRITER, tmp_path, 5)
    assert writer.wait(timeout=300) == 0
    store = FileCheckpointStore(tmp_path)
    assert [cp.id for cp in store.saved_checkpoints()] == [3, 4, 5]
    with TvmHost(pools=1, checkpoint_store=store) as host:  # a second process's own checkpoints
        rid = host.create_region(RegionKind.BLOB_ARENA, 2 * PAGE)
        host.write(Handle(rid, 1, 0), b"second process")
        mine = host.checkpoint([rid])
        assert mine.id > 5  # above the saved ids (and unique in this process): nothing saved is overwritten
        store.forget_saved(store.saved_checkpoints()[0])
        host.write(Handle(rid, 1, 0), b"later")
        later = host.checkpoint([rid])
    reopened = FileCheckpointStore(tmp_path)
    assert [cp.id for cp in reopened.saved_checkpoints()] == [4, 5, mine.id, later.id]
    with TvmHost(pools=1, checkpoint_store=reopened) as host:
        restored = host.restore_saved(reopened.saved_checkpoints()[2])
        assert host.read(Handle(restored[rid].region_id, 1, 0), 14) == b"second process"


def test_torn_missing_or_corrupt_parts_are_checkpoint_errors(tmp_path):
    d = RegionDirectory(checkpoint_store=FileCheckpointStore(tmp_path))
    rid = d.create_region(RegionKind.OBJECT_ARENA, 3 * PAGE, allocator=Freelist())
    d.write(d.alloc(rid, 50), b"kept")
    d.protect(rid, True)
    d.checkpoint([rid])
    store = FileCheckpointStore(tmp_path)
    (saved,) = store.saved_checkpoints()
    fresh = RegionDirectory(checkpoint_store=store)
    restored = fresh.restore_saved(saved)[rid]
    assert fresh.read(Handle(restored.region_id, 1, 0), 4) == b"kept" and fresh.is_read_only(restored.region_id)
    assert fresh.region_info(restored.region_id).used == 50
    (entry,) = tmp_path.glob("ckpt-*.bin")
    good = entry.read_bytes()
    entry.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    other = RegionDirectory(checkpoint_store=store)
    with pytest.raises(CheckpointError):
        other.restore_saved(saved)
    assert other.list_regions() == []  # nothing created
    entry.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        other.restore_saved(saved)
    manifest = tmp_path / "MANIFEST"
    data = manifest.read_bytes()
    manifest.write_bytes(data[:-5])  # torn
    with pytest.raises(CheckpointError, match="checksum"):
        FileCheckpointStore(tmp_path)
    with pytest.raises(TypeError):
        other.restore_saved("not a checkpoint")  # type: ignore[arg-type]


def test_a_crash_before_the_manifest_is_written_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    """Dropped entries are unlinked only after the manifest that no longer names them is on disk: a crash
    (here: the manifest write fails) in between leaves the previous manifest's checkpoints restorable."""
    from tvm_wasm.core import checkpoint_store

    store = FileCheckpointStore(tmp_path)
    d = RegionDirectory(checkpoint_store=store)
    rid = d.create_region(RegionKind.BLOB_ARENA, 8 * PAGE)
    kept, images = [], {}
    for k in range(4):
        d.write(Handle(rid, 1, k * PAGE + 100), bytes([k + 1]) * 300)
        kept.append(d.checkpoint([rid]))
        images[kept[-1].id] = d.read(Handle(rid, 1, 0), 8 * PAGE)
    real = checkpoint_store.write_parts_durably

    def crash_on_manifest(final, parts):
        if final.name == "MANIFEST":
            raise OSError("disk gone")
        real(final, parts)

    monkeypatch.setattr(checkpoint_store, "write_parts_durably", crash_on_manifest)
    with pytest.raises(CheckpointError, match="manifest"):
        d.release_checkpoint(kept[1])  # folds 1 into 2 (rewrites entry 2), drops entry 1: not yet on disk
    monkeypatch.setattr(checkpoint_store, "write_parts_durably", real)
    reopened = FileCheckpointStore(tmp_path)
    assert [cp.id for cp in reopened.saved_checkpoints()] == [cp.id for cp in kept]
    fresh = RegionDirectory(checkpoint_store=reopened)
    for saved in reopened.saved_checkpoints():
        new = fresh.restore_saved(saved)[rid].region_id
        assert fresh.read(Handle(new, 1, 0), 8 * PAGE) == images[saved.id], saved.id


def test_forget_saved_is_durable_at_once_and_a_forgotten_checkpoint_cannot_be_restored(tmp_path):
    d = RegionDirectory(checkpoint_store=FileCheckpointStore(tmp_path))
    rid = d.create_region(RegionKind.OBJECT_ARENA, 3 * PAGE, allocator=Freelist())
    d.write(d.alloc(rid, 50), b"kept")
    d.checkpoint([rid])
    store = FileCheckpointStore(tmp_path)  # what a second process opens
    (saved,) = store.saved_checkpoints()
    second = RegionDirectory(checkpoint_store=store)
    mine = second.create_region(RegionKind.OBJECT_ARENA, 3 * PAGE, allocator=Freelist())
    second.checkpoint([mine])
    store.forget_saved(saved)  # nothing else happens in this process afterwards
    with pytest.raises(CheckpointError, match="not a saved checkpoint"):
        second.restore_saved(saved)
    third = FileCheckpointStore(tmp_path)  # a third process: the forgetting reached the disk
    assert [cp.id for cp in third.saved_checkpoints()] == [saved.id + 1]
    assert not store.path_for(saved.regions[0].entries[0]).exists()
