"""Two real processes over one ``FileCheckpointStore``: process A churns regions (creation, compaction,
rollback, destruction), checkpoints, writes every handle it ever got to a file and exits (or is killed
right after a lease extension); process B reopens the store, restores the checkpoint, creates regions and
checks that none of A's handles is accepted. Shared by the model's and the host's tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tvm_wasm.core import checkpoint_store
from tvm_wasm.core.id_lease import LEASE_NAME

PROCESS_A = textwrap.dedent("""
    import json, os, sys
    from tvm_wasm import Bump, Freelist, Handle, RegionDirectory, RegionKind, TvmHost
    from tvm_wasm.core.checkpoint_store import FileCheckpointStore

    root, out, kind, crash_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = FileCheckpointStore(root, id_block=4, generation_block=3)
    notes = open(out, "w")

    def note(word, *values):
        notes.write(" ".join([word, *map(str, values)]) + "\\n")
        notes.flush()

    extensions = 0
    cover = store.cover

    def crash_after_extension(region_id, generation):  # os._exit right after the n-th lease write
        global extensions
        before = store.lease().high, store.lease().generations.tobytes()
        cover(region_id, generation)
        if (store.lease().high, store.lease().generations.tobytes()) != before:
            extensions += 1
            if extensions == crash_after:
                note("leased", region_id, generation)  # what A was about to hand out
                os._exit(3)

    store.cover = crash_after_extension
    d = TvmHost(pools=1, checkpoint_store=store) if kind == "host" else RegionDirectory(checkpoint_store=store)

    def alloc(rid, size=32):
        h = d.alloc(rid, size)
        note("handle", h.pack())
        d.write(h, bytes([rid % 250 + 1]) * size)
        return h

    regions = [d.create_region(RegionKind.OBJECT_ARENA, 4 * 4096, allocator=Freelist() if i % 2 == 0 else Bump())
               for i in range(6)]
    for rid in regions:
        alloc(rid)
    for _ in range(7):  # churn region 0 through generations by compaction
        h = alloc(regions[0])
        d.dealloc(h)
        d.compact_region(regions[0])
        alloc(regions[0])
    for _ in range(4):  # and region 2 by rollback (an alloc since the checkpoint: a new generation)
        cp = d.checkpoint([regions[2]])
        alloc(regions[2])
        d.rollback(cp)
        alloc(regions[2])
        d.release_checkpoint(cp)
    d.destroy_region(regions[1])
    d.destroy_region(regions[3])
    regions += [d.create_region(RegionKind.BLOB_ARENA, 3 * 4096 + 5) for _ in range(5)]
    for rid in regions[6:]:
        alloc(rid)
    kept = [regions[0], regions[2], regions[6]]
    cp = d.checkpoint(kept)
    expected = {rid: d.read(Handle(rid, d.region_info(rid).generation, 0), d.region_info(rid).capacity).hex()
                for rid in kept}
    alloc(regions[0])  # after the checkpoint: handles the checkpoint does not know
    d.compact_region(regions[0])
    alloc(regions[0])
    alloc(regions[6])
    note("checkpoint", cp.id, json.dumps(expected))
    note("done")
""")

PROCESS_B = textwrap.dedent("""
    import json, sys
    from tvm_wasm import Freelist, Handle, RegionDirectory, RegionKind, StaleHandle, TvmHost
    from tvm_wasm.core.checkpoint_store import FileCheckpointStore

    root, notes, kind = sys.argv[1], sys.argv[2], sys.argv[3]
    old, leased, checkpoint = [], [], None
    for line in open(notes):
        word, *rest = line.split(" ", 2)
        if word == "handle":
            old.append(Handle.unpack(int(rest[0])))
        elif word == "leased":
            leased.append(Handle(int(rest[0]), int(rest[1]), 0))
        elif word == "checkpoint":
            checkpoint = int(rest[0]), {int(k): bytes.fromhex(v) for k, v in json.loads(rest[1]).items()}
    store = FileCheckpointStore(root)
    d = TvmHost(pools=1, checkpoint_store=store) if kind == "host" else RegionDirectory(checkpoint_store=store)
    guest = None
    if kind == "host":
        guest = d.instantiate('''(module
          (import "tvm" "load_u8" (func $load (param i64 i32) (result i32)))
          (import "tvm" "store_u8" (func $store (param i64 i32 i32)))
          (func (export "load") (param i64) (result i32) (call $load (local.get 0) (i32.const 0)))
          (func (export "store") (param i64) (call $store (local.get 0) (i32.const 0) (i32.const 99))))''')
    restored = {}
    if checkpoint is not None:
        (saved,) = [s for s in store.saved_checkpoints() if s.id == checkpoint[0]]
        restored = d.restore_saved(saved)
        for old_id, image in checkpoint[1].items():
            new = restored[old_id]
            assert d.read(Handle(new.region_id, new.generation, 0), len(image)) == image, old_id
    mine = []
    for i in range(12):  # B's own regions, some churned too
        rid = d.create_region(RegionKind.OBJECT_ARENA, 4096, allocator=Freelist())
        h = d.alloc(rid, 16)
        if i % 3 == 0:
            d.compact_region(rid)
            h = d.alloc(rid, 16)
        d.write(h, b"B" * 16)
        mine.append(h)
    for r in restored.values():  # the restored regions take new handles
        info = d.region_info(r.region_id)
        if info.used + 8 <= info.capacity:
            mine.append(d.alloc(r.region_id, 8))
    pairs = {(r.id, r.generation) for r in d.list_regions()}
    refused = 0
    for h in old + leased:
        assert (h.region_id, h.generation) not in pairs, h
        for attempt in (lambda: d.read(h, 1), lambda: d.write(h, b"x")):
            try:
                attempt()
            except StaleHandle:
                refused += 1
            else:
                raise AssertionError(f"old handle {h} accepted")
        if guest is not None:  # the data plane refuses it too, on loads and stores
            for name in ("load", "store"):
                try:
                    d.call(guest, name, h.to_i64())
                except StaleHandle:
                    refused += 1
                else:
                    raise AssertionError(f"old handle {h} accepted by the data plane ({name})")
    for h in mine:
        d.write(h, b"ok")
        assert d.read(h, 2) == b"ok"
        if guest is not None:
            d.call(guest, "store", h.to_i64())
            assert d.call(guest, "load", h.to_i64()) == 99
    print(len(old), len(leased), refused, len(mine))
""")


def run(script: str, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def a_then_b(root: Path, kind: str, crash_after: int = 0) -> tuple[list[str], list[int]]:
    """Run A (killed right after its ``crash_after``-th lease extension, if not 0), then B; (A's notes, B's
    counts: old handles, leased pairs, refusals, B's own handles)."""
    notes = root.parent / f"{root.name}-notes.txt"
    a = run(PROCESS_A, root, notes, kind, crash_after)
    assert a.returncode == (3 if crash_after else 0), a.stderr[-3000:]
    b = run(PROCESS_B, root, notes, kind)
    assert b.returncode == 0, b.stderr[-3000:]
    return notes.read_text().splitlines(), [int(word) for word in b.stdout.split()]



def refuse_lease_writes(monkeypatch) -> None:
    """Make every write of a store's ``LEASE`` fail as a full disk would (other files are written as usual)."""
    real = checkpoint_store.write_parts_durably

    def refuse_lease(final, parts):
        if final.name == LEASE_NAME:
            raise OSError("disk full")
        real(final, parts)

    monkeypatch.setattr(checkpoint_store, "write_parts_durably", refuse_lease)
