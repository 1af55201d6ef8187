"""Checkpoints and rollback of the self-contained module's regions, kept by its embedder (GuestInstance):
the model's rules, with the module's own stores, allocator state and generations."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, settings

from checkpoint_machine import PAGE, CheckpointMachine, check_a_block_born_after_the_checkpoint_stays_dead
from tvm_wasm import Freelist, Handle, RegionKind, Slab, StaleHandle
from tvm_wasm.core.errors import CheckpointError, ReadOnly, error_for_code
from tvm_wasm.guest import build_module
from tvm_wasm.guest.instance import GuestInstance

CLEARS = """(module
  (import "tvm" "clear_dirty" (func $clear (param i32) (result i32)))
  (func (export "clear") (param i32) (result i32) (call $clear (local.get 0))))"""

LOADER = """(module
  (import "tvm" "load_u8" (func $load_u8 (param i64 i32) (result i32)))
  (func (export "load_u8") (param $h i64) (result i32) (call $load_u8 (local.get $h) (i32.const 0))))"""


@functools.cache
def module() -> bytes:
    return build_module(pools=1, max_pages=64).wasm


class ModuleDirectory:
    """GuestInstance with the few directory calls the differential machine makes."""

    def __init__(self) -> None:
        self.g = GuestInstance(module())

    def __getattr__(self, name: str):
        return getattr(self.g, name)

    def create_region(self, kind, capacity, allocator=None):
        return self.g.create_region(kind, capacity, allocator=allocator, max_blocks=64 if allocator else 0)

    def copy(self, src: Handle, dst: Handle, length: int) -> None:
        code = self.g.raw("copy", src.to_i64(), dst.to_i64(), length)
        if code:
            raise error_for_code(self.g.last_error(), "copy")

    def tracks_dirty(self, rid: int) -> bool:
        return self.g._checkpoint_hooks._region(rid).tracks_dirty


def test_module_checkpoint_copies_what_the_module_dirtied_and_rollback_renews_generations() -> None:
    with GuestInstance(module()) as g:
        rid = g.create_region(RegionKind.OBJECT_ARENA, 16 * PAGE, allocator=Freelist(), max_blocks=16)
        kept = g.alloc(rid, 3 * PAGE)
        g.write(kept, b"k" * 3 * PAGE)
        first = g.checkpoint([rid])
        assert first.pages_copied == 16
        g.fill(kept.with_offset(PAGE), 10, 0xEE)  # one page, through the module's write barrier
        later = g.alloc(rid, 64)
        assert g.checkpoint([rid]).pages_copied == 1
        remap = g.rollback(first)[rid]
        assert remap.new_generation == 2 and g.region_info(rid).used == 3 * PAGE
        with pytest.raises(StaleHandle):
            g.read(later, 1)
        assert g.read(remap.migrate(kept), 3 * PAGE) == b"k" * 3 * PAGE
        with pytest.raises(Exception):
            g.migrate(kept)  # renew_generation drops the migrate history: only the remap migrates
        g.protect(rid, True)
        g.rollback(first)  # nothing to change: allowed on a read-only region
        g.protect(rid, False)
        g.write(remap.migrate(kept), b"x")
        g.protect(rid, True)
        with pytest.raises(ReadOnly):
            g.rollback(first)
        g.destroy_region(rid)
        with pytest.raises(CheckpointError):
            g.rollback(first)


def test_a_linked_module_that_clears_dirty_bits_makes_checkpoints_copy_everything() -> None:
    with GuestInstance(module()) as g:
        rid = g.create_region(RegionKind.BLOB_ARENA, 8 * PAGE)
        handle = g.alloc(rid, 8 * PAGE)
        cp = g.checkpoint([rid])
        user = g.link(CLEARS)
        g.write(handle.with_offset(3 * PAGE), b"lost?")
        assert g.call(user, "clear", rid) == 0  # the bits are gone, in wasm
        assert g.checkpoint([rid]).pages_copied == 8
        g.rollback(cp)
        assert g.read(handle.with_offset(3 * PAGE), 5) == bytes(5)


def test_dirty_bits_dropped_through_the_raw_exports_make_rollback_restore_every_page() -> None:
    """``raw("clear_dirty")`` / ``raw("track_dirty", id, 0)`` drop the bits as the Python methods do:
    the rollback must not trust them (it once left the change in place and answered success)."""
    for drop in (("clear_dirty",), ("track_dirty", 0)):
        with GuestInstance(module()) as g:
            rid = g.create_region(RegionKind.BLOB_ARENA, 2 * PAGE)
            handle = Handle(rid, 1, PAGE + 5)
            g.write(handle, b"before")
            cp = g.checkpoint([rid])
            g.write(handle, b"after!")
            assert g.raw(drop[0], rid, *drop[1:]) == 0
            g.rollback(cp)
            assert g.read(handle, 6) == b"before", drop
            g.write(handle, b"again!")
            assert g.raw(drop[0], rid, *drop[1:]) == 0
            g.protect(rid, True)
            with pytest.raises(ReadOnly):
                g.rollback(cp)  # it would change the region: refused, not skipped
            assert g.read(handle, 6) == b"again!"


def test_layout_functions_refuse_bad_input() -> None:
    with GuestInstance(module()) as g:
        assert g.raw("layout_size", 9) == -1 and g.last_error() == 1
        rid = g.create_region(RegionKind.BLOB_ARENA, PAGE)
        assert g.raw("save_layout", rid, -4) == 7  # outside guest memory
        g.last_error()
        g.protect(rid, True)
        assert g.raw("load_layout", rid, 0) == 8
        g.last_error()


class ModuleCheckpoints(CheckpointMachine):
    spills = False  # the module's Cold tier is its embedder's

    def make(self):
        directory = ModuleDirectory()
        self.loader = directory.g.link(LOADER)
        return directory

    def typed_load_u8(self, handle: Handle) -> int:
        return int(self.d.g.call(self.loader, "load_u8", handle.to_i64()))  # type: ignore[arg-type]

    def close(self) -> None:
        self.d.g.close()

    def compact(self, rid: int, offsets: list[int]) -> tuple[int, dict[int, int]]:
        old = self.d.region_info(rid).generation
        self.d.compact_region(rid)
        moved = {offset: self.d.migrate(Handle(rid, old, offset)).offset for offset in offsets}
        return self.d.region_info(rid).generation, moved


TestModuleCheckpoints = ModuleCheckpoints.TestCase
TestModuleCheckpoints.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])


def test_space_a_rollback_wrote_reads_zero_for_the_next_region() -> None:
    with GuestInstance(module()) as g:
        size = 4 * 65536  # whole 64 KiB pool pages: compaction unmarks what it zeroes
        rid = g.create_region(RegionKind.OBJECT_ARENA, size, allocator=Freelist(), max_blocks=8)
        g.alloc(rid, 200 * 1024)
        block = g.alloc(rid, 16)
        g.write(block, b"\xab" * 16)
        cp = g.checkpoint([rid])
        g.dealloc(block)
        g.compact_region(rid)  # zeroes the touched pages and forgets them
        g.rollback(cp)  # the embedder writes the block's page back into the pool
        g.destroy_region(rid)
        fresh = g.create_region(RegionKind.BLOB_ARENA, size)
        assert not g.view(fresh).any()  # freed space reads zero: the rollback's writes were counted


@pytest.mark.parametrize("allocator", [Freelist, lambda: None, lambda: Slab(64)], ids=["blocks", "bump", "slab"])
def test_guest_migrate_refuses_a_block_born_after_the_checkpoint(allocator) -> None:
    check_a_block_born_after_the_checkpoint_stays_dead(GuestInstance(module()), allocator())
