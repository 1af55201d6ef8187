"""The id lease on TvmHost: process A (a real subprocess) churns regions on a host with a
``FileCheckpointStore`` and exits, or is killed right after a lease extension; process B's host, on the
same store, refuses every handle A handed out with ``StaleHandle``, in Python and in the data plane (a
guest's typed loads and stores), while B's own handles and the restored bytes work. A ``GuestInstance``
refuses a leasing store (its module hands out ids and generations outside the lease)."""

from __future__ import annotations

import pytest

from lease_processes import a_then_b, refuse_lease_writes
from tvm_wasm import CheckpointError, Freelist, Handle, RegionKind, StaleHandle, TvmHost
from tvm_wasm.core.checkpoint_store import FileCheckpointStore
from tvm_wasm.guest import build_module
from tvm_wasm.guest.instance import GuestInstance

LOADER = """(module
  (import "tvm" "load_u8" (func $load (param i64 i32) (result i32)))
  (func (export "load") (param i64) (result i32) (call $load (local.get 0) (i32.const 0))))"""


def test_a_later_host_refuses_every_handle_an_earlier_one_handed_out(tmp_path):
    lines, (old, leased, refused, mine) = a_then_b(tmp_path / "store", "host")
    assert lines[-1] == "done" and old >= 30 and leased == 0
    assert refused == 4 * old and mine >= 12  # read, write, guest load, guest store


def test_a_host_killed_right_after_a_lease_extension_leaves_its_handles_refused(tmp_path):
    lines, (old, leased, refused, _) = a_then_b(tmp_path / "store", "host", crash_after=4)
    assert lines[-1].startswith("leased") and leased == 1 and refused == 4 * (old + leased)


def test_leased_ids_are_tombstones_in_the_host_table(tmp_path):
    store = FileCheckpointStore(tmp_path, id_block=8)
    with TvmHost(pools=1, checkpoint_store=store) as host:
        first = host.alloc(host.create_region(RegionKind.BLOB_ARENA, 4096), 8)
    with TvmHost(pools=1, checkpoint_store=FileCheckpointStore(tmp_path)) as host:
        assert host.create_region(RegionKind.BLOB_ARENA, 4096) == 8
        never = Handle(5, 1, 0)  # leased by the first host's block, never handed out: refused the same way
        guest = host.instantiate(LOADER)
        for handle in (first, never):
            with pytest.raises(StaleHandle):
                host.read(handle, 1)
            with pytest.raises(StaleHandle):  # the slot is a tombstone: the data plane says so too
                host.call(guest, "load", handle.to_i64())


def test_a_guest_instance_refuses_a_leasing_store(tmp_path):
    with pytest.raises(CheckpointError, match="lease"):
        GuestInstance(build_module(pools=1), checkpoint_store=FileCheckpointStore(tmp_path))


CONTROL = """(module
  (import "tvm" "create_region" (func $create (param i32 i32) (result i32)))
  (import "tvm" "compact_region" (func $compact (param i32) (result i32)))
  (import "tvm" "last_error" (func $last_error (result i32)))
  (func (export "create") (result i32) (call $create (i32.const 1) (i32.const 4096)))
  (func (export "compact") (param i32) (result i32) (call $compact (local.get 0)))
  (func (export "last_error") (result i32) (call $last_error)))"""


def test_a_host_whose_lease_cannot_be_written_hands_out_nothing_in_python_or_the_raw_abi(tmp_path, monkeypatch):
    store = FileCheckpointStore(tmp_path, id_block=1, generation_block=1)
    with TvmHost(pools=1, checkpoint_store=store) as host:
        rid = host.create_region(RegionKind.OBJECT_ARENA, 4096, allocator=Freelist())
        kept = host.alloc(rid, 8)
        host.write(kept, b"kept")
        guest = host.instantiate(CONTROL)
        refuse_lease_writes(monkeypatch)
        regions = host.list_regions()
        with pytest.raises(CheckpointError, match="lease"):
            host.create_region(RegionKind.BLOB_ARENA, 4096)
        with pytest.raises(CheckpointError, match="lease"):
            host.compact_region(rid)
        assert host.call(guest, "create") == 0 and host.call(guest, "last_error") == CheckpointError.code
        assert host.call(guest, "compact", rid) == CheckpointError.code
        assert host.list_regions() == regions and host.read(kept, 4) == b"kept"
        monkeypatch.undo()  # the lease can be written again
        assert host.call(guest, "create") == rid + 1
        assert host.call(guest, "compact", rid) == 0 and host.region_info(rid).generation == 2
