"""Checkpoints and rollback on TvmHost: the model's rules, with guests storing through the data plane
(typed stores and ``tvm.write`` set the dirty bits in wasm, no Python entry)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from checkpoint_machine import PAGE, CheckpointMachine, check_a_block_born_after_the_checkpoint_stays_dead
from host_guests import shared_engine
from tvm_wasm import Freelist, Handle, MemoryBackingStore, RegionKind, Residency, Slab, StaleHandle, TvmHost
from tvm_wasm.core.checkpoint_store import FileCheckpointStore

STORER = """(module
  (import "tvm" "store_u8" (func $store_u8 (param i64 i32 i32)))
  (import "tvm" "write" (func $write (param i64 i32 i32) (result i32)))
  (import "tvm" "fill" (func $fill (param i64 i32 i32) (result i32)))
  (import "tvm" "load_u8" (func $load_u8 (param i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "load_u8") (param $h i64) (result i32) (call $load_u8 (local.get $h) (i32.const 0)))
  ;; up to 16 bytes: one typed store per byte; more: tvm.write from guest memory
  (func (export "put") (param $h i64) (param $len i32) (result i32) (local $i i32)
    (if (i32.gt_u (local.get $len) (i32.const 16)) (then
      (return (call $write (local.get $h) (i32.const 0) (local.get $len)))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (local.get $h) (local.get $i) (i32.load8_u (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.const 0))
  (func (export "fill") (param $h i64) (param $len i32) (param $byte i32) (result i32)
    (call $fill (local.get $h) (local.get $len) (local.get $byte))))"""


class GuestStores:
    """A guest that stores into a host's regions from wasm."""

    def __init__(self, host: TvmHost) -> None:
        self.host = host
        self.instance = host.instantiate(STORER)
        self.memory = self.instance.exports(host.store)["memory"]

    def put(self, handle: Handle, data: bytes) -> None:
        self.memory.write(self.host.store, data, 0)
        entries = self.host.python_entries
        resident = self.host.region_info(handle.region_id).residency.is_resident
        code = self.host.call(self.instance, "put", handle.to_i64(), len(data))
        assert code == 0, code
        if resident:
            assert self.host.python_entries == entries  # the dirty bits are set in wasm


def test_guest_stores_are_what_the_next_checkpoint_copies() -> None:
    with TvmHost(pools=1, engine=shared_engine()) as host:
        rid = host.create_region(RegionKind.BLOB_ARENA, 64 * PAGE)
        handle = host.alloc(rid, 64 * PAGE)
        guest = GuestStores(host)
        first = host.checkpoint([rid])
        assert first.pages_copied == 64
        before = host.read(handle, 64 * PAGE)
        guest.put(handle.with_offset(5 * PAGE + 3), b"typed")  # typed stores
        guest.put(handle.with_offset(9 * PAGE - 10), b"w" * 20)  # tvm.write across pages 8 and 9
        host.call(guest.instance, "fill", handle.with_offset(40 * PAGE).to_i64(), 2 * PAGE, 7)  # 40, 41
        assert host.dirty_pages(rid) == [5, 8, 9, 40, 41]
        second = host.checkpoint([rid])
        assert second.pages_copied == 5 and host.dirty_pages(rid) == []
        host.rollback(first)
        assert host.read(handle, 64 * PAGE) == before


def test_rollback_bumps_the_generation_in_the_data_plane_too() -> None:
    with TvmHost(pools=1, engine=shared_engine()) as host:
        rid = host.create_region(RegionKind.OBJECT_ARENA, 4 * PAGE, allocator=Freelist())
        kept = host.alloc(rid, 64)
        cp = host.checkpoint([rid])
        later = host.alloc(rid, 64)
        guest = GuestStores(host)
        remap = host.rollback(cp)[rid]
        with pytest.raises(StaleHandle):
            guest.put(later, b"x")  # the data plane refuses the abandoned timeline's handle
        guest.put(remap.migrate(kept), b"ok")
        assert host.read(remap.migrate(kept), 2) == b"ok"


def test_spilled_regions_and_budget_on_the_host(tmp_path) -> None:
    with TvmHost(pools=1, engine=shared_engine(), backing=MemoryBackingStore(), budget_bytes=8 * PAGE,
                 checkpoint_store=FileCheckpointStore(tmp_path)) as host:
        a = host.create_region(RegionKind.BLOB_ARENA, 4 * PAGE)
        b = host.create_region(RegionKind.BLOB_ARENA, 4 * PAGE)
        ha, hb = host.alloc(a, 4 * PAGE), host.alloc(b, 4 * PAGE)
        host.write(ha, b"A" * 4 * PAGE)
        host.write(hb, b"B" * 4 * PAGE)
        cp = host.checkpoint([a, b])
        host.write(ha, b"a" * PAGE)
        host.write(hb, b"b" * PAGE)
        host.spill_region(a)
        c = host.create_region(RegionKind.BLOB_ARENA, 8 * PAGE)  # the budget spills b to make room
        assert host.region_info(b).residency is Residency.COLD
        host.rollback(cp)  # both faulted in together: c is spilled to make room, never a or b
        assert host.region_info(c).residency is Residency.COLD
        assert host.read(ha, 4 * PAGE) == b"A" * 4 * PAGE and host.read(hb, 4 * PAGE) == b"B" * 4 * PAGE


class HostCheckpoints(CheckpointMachine):
    def make(self):
        host = TvmHost(pools=1, engine=shared_engine(), backing=MemoryBackingStore())
        self.guest = GuestStores(host)
        return host

    def close(self) -> None:
        self.d.close()

    def guest_write(self, handle: Handle, data: bytes) -> None:
        self.guest.put(handle, data)

    def typed_load_u8(self, handle: Handle) -> int:
        return int(self.d.call(self.guest.instance, "load_u8", handle.to_i64()))  # type: ignore[arg-type]


TestHostCheckpoints = HostCheckpoints.TestCase
TestHostCheckpoints.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])


RAW_GUEST = """(module
  (import "tvm" "checkpoint_add" (func $add (param i32) (result i32)))
  (import "tvm" "checkpoint" (func $checkpoint (result i64)))
  (import "tvm" "rollback" (func $rollback (param i64) (result i32)))
  (import "tvm" "release_checkpoint" (func $release (param i64) (result i32)))
  (import "tvm" "last_error" (func $last_error (result i32)))
  (import "tvm" "alloc" (func $alloc (param i32 i32) (result i64)))
  (import "tvm" "store_u8" (func $store (param i64 i32 i32)))
  (import "tvm" "load_u8" (func $load (param i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "add") (param i32) (result i32) (call $add (local.get 0)))
  (func (export "checkpoint") (result i64) (call $checkpoint))
  (func (export "rollback") (param i64) (result i32) (call $rollback (local.get 0)))
  (func (export "release") (param i64) (result i32) (call $release (local.get 0)))
  (func (export "last_error") (result i32) (call $last_error))
  (func (export "alloc") (param i32 i32) (result i64) (call $alloc (local.get 0) (local.get 1)))
  (func (export "store") (param i64 i32) (call $store (local.get 0) (i32.const 0) (local.get 1)))
  (func (export "load") (param i64) (result i32) (call $load (local.get 0) (i32.const 0))))"""


def test_raw_abi_checkpoints_from_a_guest() -> None:
    with TvmHost(pools=1, engine=shared_engine()) as host:
        a = host.create_region(RegionKind.OBJECT_ARENA, 4 * PAGE, allocator=Freelist())
        b = host.create_region(RegionKind.BLOB_ARENA, 2 * PAGE)
        guest = host.instantiate(RAW_GUEST)

        def call(name, *args):
            return host.call(guest, name, *args)

        assert call("checkpoint") == 0 and call("last_error") == 9  # nothing added
        assert call("add", 77) == 1  # no such region
        ha = call("alloc", a, 16)
        hb = call("alloc", b, 16)
        call("store", ha, 1)
        call("store", hb, 2)
        assert call("add", a) == 0 and call("add", b) == 0
        first = call("checkpoint")
        assert first > 0 and host.checkpoints()[0].region_ids == (a, b)
        call("store", ha, 11)
        call("store", hb, 22)
        later = call("alloc", a, 16)  # a's layout changes; b's does not
        assert call("rollback", first) == 0
        assert call("load", hb) == 2  # b kept its generation: the same handle works
        with pytest.raises(StaleHandle):
            call("load", later)
        with pytest.raises(StaleHandle):
            call("load", ha)
        fresh = Handle(a, host.region_info(a).generation, Handle.unpack(ha).offset)
        assert call("load", fresh.to_i64()) == 1  # same offset, the region's new generation
        assert call("release", first) == 0
        assert call("rollback", first) == 9 and call("last_error") == 9


@pytest.mark.parametrize("allocator", [Freelist, lambda: None, lambda: Slab(64)], ids=["freelist", "bump", "slab"])
def test_host_migrate_refuses_a_block_born_after_the_checkpoint(allocator) -> None:
    with TvmHost(pools=1, engine=shared_engine()) as host:
        check_a_block_born_after_the_checkpoint_stays_dead(host, allocator())
