"""Kind: no bare Python or wasmtime exception leaks out of the public API.

Each public entry of ``TvmHost`` (and the self-contained module's
``GuestInstance``) is driven with hostile arguments; the exception must be a
``TvmError`` subclass, or ``ValueError``/``TypeError`` for a malformed
argument, and its message must say something. The two field reports (a copy
whose fault-in would evict its own source under a budget; pools an engine
cannot grow) are pinned down first.
"""

from __future__ import annotations

import pytest
import wasmtime

from tvm_wasm import (
    AllocationFailed,
    FileBackingStore,
    Freelist,
    Handle,
    HostClosed,
    RegionKind,
    TvmError,
    TvmHost,
)
from tvm_wasm.guest import build_module
from tvm_wasm.guest.instance import GuestInstance
from tvm_wasm.host.tvm_host import new_engine

ARENA, BLOB = RegionKind.OBJECT_ARENA, RegionKind.BLOB_ARENA
ALLOWED = (TvmError, ValueError, TypeError)
KiB, MiB = 1024, 1 << 20


def test_copy_whose_fault_in_would_evict_its_source_is_allocation_failed(tmp_path) -> None:
    with TvmHost(backing=FileBackingStore(tmp_path), budget_bytes=64 * KiB, pools=1) as host:
        a = host.create_region(ARENA, 64 * KiB)
        b = host.create_region(ARENA, 64 * KiB)  # spills a to make room
        ha, hb = Handle(a, 1, 0), Handle(b, 1, 0)
        host.write(hb, b"B" * 16)
        host.spill_region(a)
        for copy in (lambda: host.copy(ha, hb, 16), lambda: host.copy_region(a, 0, b, 0, 16)):
            with pytest.raises(AllocationFailed) as info:
                copy()
            message = str(info.value)
            assert f"regions {a} and {b}" in message and "65536-byte budget" in message
        assert host.read(hb, 16) == b"B" * 16  # nothing lost
        assert host.read(ha, 16) == bytes(16)
        host.copy(hb, hb.with_offset(16), 16)  # one region, within the budget: fine


def test_copy_that_fits_the_budget_succeeds_after_faulting_both_in(tmp_path) -> None:
    with TvmHost(backing=FileBackingStore(tmp_path), budget_bytes=128 * KiB, pools=1) as host:
        a, b = host.create_region(ARENA, 64 * KiB), host.create_region(ARENA, 64 * KiB)
        host.write(Handle(a, 1, 0), b"from a")
        host.spill_region(a)
        host.spill_region(b)
        host.copy(Handle(a, 1, 0), Handle(b, 1, 0), 6)
        assert host.read(Handle(b, 1, 0), 6) == b"from a"


def test_pools_the_engine_cannot_grow_give_allocation_failed() -> None:
    config = wasmtime.Config()
    config.memory_reservation = 16 * MiB
    config.memory_reservation_for_growth = 0
    config.memory_may_move = False
    with TvmHost(pools=1, engine=wasmtime.Engine(config)) as host:
        small = host.create_region(BLOB, 64 * KiB)
        with pytest.raises(AllocationFailed, match="cannot grow"):
            host.create_region(BLOB, 32 * MiB)
        assert host.list_regions()[0].id == small and len(host) == 1  # consistent: nothing half-made
        host.write(Handle(small, 1, 0), b"still fine")
        assert host.create_region(BLOB, 4 * MiB) == small + 1


def _host_entries(host: TvmHost, r: int, h: Handle):
    """(name, call) pairs: every public entry with arguments it must refuse."""
    bad_handle = Handle(r, 9, 0)
    yield from [
        ("TvmHost(budget_bytes=-1)", lambda: TvmHost(budget_bytes=-1)),
        ("TvmHost(budget_bytes=2**64)", lambda: TvmHost(budget_bytes=1 << 64)),
        ("TvmHost(budget_bytes='1')", lambda: TvmHost(budget_bytes="1")),
        ("TvmHost(pools=0)", lambda: TvmHost(pools=0)),
        ("TvmHost(pools=65)", lambda: TvmHost(pools=65)),
        ("TvmHost(pools='2')", lambda: TvmHost(pools="2")),
        ("create_region kind", lambda: host.create_region(99, 64)),
        ("create_region capacity 0", lambda: host.create_region(ARENA, 0)),
        ("create_region capacity 2**32", lambda: host.create_region(ARENA, 1 << 32)),
        ("create_region capacity str", lambda: host.create_region(ARENA, "64")),
        ("create_region allocator", lambda: host.create_region(ARENA, 64, allocator=object())),
        ("imported_region capacity 0", lambda: host.imported_region(ARENA, 0)),
        ("destroy_region unknown", lambda: host.destroy_region(999)),
        ("destroy_region str", lambda: host.destroy_region("1")),
        ("alloc negative", lambda: host.alloc(r, -1)),
        ("alloc huge", lambda: host.alloc(r, 1 << 40)),
        ("alloc align", lambda: host.alloc(r, 8, align=3)),
        ("dealloc not a handle", lambda: host.dealloc(5)),
        ("dealloc stale", lambda: host.dealloc(bad_handle)),
        ("read negative", lambda: host.read(h, -1)),
        ("read stale", lambda: host.read(bad_handle, 1)),
        ("read past", lambda: host.read(h, 1 << 20)),
        ("read packed int", lambda: host.read(h.pack(), 1)),
        ("write str", lambda: host.write(h, "text")),
        ("write stale", lambda: host.write(bad_handle, b"x")),
        ("copy negative", lambda: host.copy(h, h, -1)),
        ("copy_region offsets", lambda: host.copy_region(r, -1, r, 0, 1)),
        ("copy_region past", lambda: host.copy_region(r, 0, r, 4090, 16)),
        ("view unknown", lambda: host.view(999)),
        ("imported_memory unknown", lambda: host.imported_memory(r)),
        ("pin unknown", lambda: host.pin(999)),
        ("compact bump", lambda: host.compact_region(r)),
        ("demote_until negative", lambda: host.demote_until(-1)),
        ("demote_until order", lambda: host.demote_until(0, order="random")),
        ("spill without store", lambda: host.spill_region(r)),
        ("load_external bad loader", lambda: (host.mark_external(r), host.load_external(r, lambda *_: "str"))),
        ("snapshot to a missing folder", lambda: host.snapshot_region(r, "/nonexistent/dir/snap.bin")),
        ("restore from a missing file", lambda: host.restore_region(r, "/nonexistent/snap.bin")),
        ("instantiate garbage bytes", lambda: host.instantiate(b"\0asm garbage")),
        ("instantiate bad WAT", lambda: host.instantiate("(module (func (export \"f\") i32.add))")),
        ("instantiate unknown import", lambda: host.instantiate('(module (import "env" "f" (func)))')),
        ("instantiate wrong tvm signature", lambda: host.instantiate(
            '(module (import "tvm" "alloc" (func (param i32))))')),
        ("call unknown export", lambda: host.call(host.instantiate("(module)"), "nope")),
        ("call wrong arity", lambda: host.call(host.instantiate(
            '(module (func (export "f") (param i32)))'), "f")),
        ("region_info unknown", lambda: host.region_info(999)),
        ("metrics unknown", lambda: host.metrics(999)),
    ]


def test_every_host_entry_raises_a_typed_error_for_hostile_arguments() -> None:
    leaks = []
    with TvmHost(pools=1) as host:
        r = host.create_region(ARENA, 4096)
        h = host.alloc(r, 16)
        for name, call in _host_entries(host, r, h):
            try:
                call()
            except ALLOWED as exc:
                if not str(exc).strip():
                    leaks.append(f"{name}: {type(exc).__name__} with no message")
            except Exception as exc:  # noqa: BLE001 - this is what the test looks for
                leaks.append(f"{name}: {type(exc).__module__}.{type(exc).__name__}: {exc}")
            else:
                leaks.append(f"{name}: accepted")
    assert leaks == [], "\n".join(leaks)


def test_every_guest_instance_entry_raises_a_typed_error_for_hostile_arguments() -> None:
    leaks = []
    calls = [
        ("GuestInstance garbage", lambda g: GuestInstance(b"\0asm garbage")),
        ("create_region kind", lambda g: g.create_region(99, 64)),
        ("create_region capacity 0", lambda g: g.create_region(ARENA, 0)),
        ("create_region allocator", lambda g: g.create_region(ARENA, 64, allocator=object())),
        ("alloc negative", lambda g: g.alloc(1, -1)),
        ("read negative", lambda g: g.read(Handle(1, 1, 0), -1)),
        ("read stale", lambda g: g.read(Handle(1, 9, 0), 1)),
        ("write stale", lambda g: g.write(Handle(1, 9, 0), b"x")),
        ("region_info unknown", lambda g: g.region_info(999)),
        ("destroy unknown", lambda g: g.destroy_region(999)),
        ("raw unknown export", lambda g: g.raw("nope")),
        ("link garbage", lambda g: g.link(b"\0asm garbage")),
        ("link unknown import", lambda g: g.link('(module (import "tvm" "nope" (func)))')),
        ("migrate stale", lambda g: g.migrate(Handle(1, 9, 0))),
    ]
    with GuestInstance(build_module(pools=1, max_pages=4)) as g:
        g.create_region(ARENA, 64)
        for name, call in calls:
            try:
                call(g)
            except ALLOWED as exc:
                if not str(exc).strip():
                    leaks.append(f"{name}: {type(exc).__name__} with no message")
            except Exception as exc:  # noqa: BLE001
                leaks.append(f"{name}: {type(exc).__module__}.{type(exc).__name__}: {exc}")
            else:
                leaks.append(f"{name}: accepted")
    assert leaks == [], "\n".join(leaks)


def test_host_on_its_own_engine_still_needs_no_recompile_per_host() -> None:
    engine = new_engine()
    with TvmHost(pools=1, engine=engine) as a, TvmHost(pools=1, engine=engine) as b:
        assert a._modules is b._modules
    with pytest.raises(HostClosed):
        a.list_regions()
