"""TvmHost's resources are released when the program says so, and hosts share compiled code.

``close()`` (or leaving a ``with`` block) frees the store, its pool
reservations, the table and the runtime instances at once; a closed host
refuses every use with ``HostClosed``. Hosts made without an engine share one
process-wide engine, so the runtime compiles once per pool count.
"""

from __future__ import annotations

import gc

import pytest

from tvm_wasm import Freelist, HostClosed, RegionKind, TvmHost
from tvm_wasm.guest import build_module
from tvm_wasm.guest.instance import GuestInstance
from tvm_wasm.host import runtime as runtime_cache
from tvm_wasm.host.tvm_host import default_engine
from tvm_wasm.runtime.layout import PAGE, WASM32_MAX_PAGES

POOL_RESERVATION = PAGE * WASM32_MAX_PAGES  # each pool reserves at least its 4 GiB maximum


def virtual_bytes() -> int:
    """This process's virtual address space (VmSize), which pool reservations show up in."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize in /proc/self/status")


def test_close_releases_the_pool_reservations_at_once() -> None:
    gc.collect()
    before = virtual_bytes()
    host = TvmHost(pools=4)
    host.create_region(RegionKind.OBJECT_ARENA, 1 << 20)
    assert virtual_bytes() - before >= 4 * POOL_RESERVATION
    gc.disable()  # the release must not wait for the collector
    try:
        host.close()
        assert virtual_bytes() - before < POOL_RESERVATION
    finally:
        gc.enable()


def test_many_short_lived_hosts_do_not_accumulate() -> None:
    gc.collect()
    before = virtual_bytes()
    gc.disable()
    try:
        for _ in range(200):  # 200 x 4 pools x >= 4 GiB would be 3.2 TiB of reservations if kept
            with TvmHost() as host:
                r = host.create_region(RegionKind.OBJECT_ARENA, 4096, allocator=Freelist())
                host.write(host.alloc(r, 8), b"12345678")
            assert virtual_bytes() - before < 2 * 4 * POOL_RESERVATION
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "use",
    [
        lambda h: h.create_region(RegionKind.OBJECT_ARENA, 64),
        lambda h: h.region_info(1),
        lambda h: h.list_regions(),
        lambda h: h.view(1),
        lambda h: h.instantiate(b"\0asm\1\0\0\0"),
        lambda h: h.store,
        lambda h: h.resident_bytes(),
        lambda h: h.demote_until(0),
        lambda h: setattr(h, "strict", True) or h.strict,
        lambda h: len(h),
    ],
)
def test_a_closed_host_refuses_every_use(use) -> None:
    host = TvmHost(pools=1)
    host.create_region(RegionKind.OBJECT_ARENA, 64)
    host.close()
    assert host.closed
    with pytest.raises(HostClosed, match="closed"):
        use(host)
    host.close()  # twice is fine
    assert repr(host) == "<TvmHost (closed)>"


def test_context_manager_closes_even_on_error() -> None:
    with pytest.raises(RuntimeError), TvmHost(pools=1) as host:
        assert not host.closed
        raise RuntimeError("boom")
    assert host.closed and isinstance(host, TvmHost)


def test_hosts_share_one_engine_and_its_compiled_runtime() -> None:
    a, b = TvmHost(pools=3), TvmHost(pools=3)
    try:
        assert a.engine is b.engine is default_engine()
        assert a._modules is b._modules is runtime_cache.runtime_modules(default_engine(), 3)
    finally:
        a.close()
        b.close()


def test_guest_instance_closes_its_store() -> None:
    gc.collect()
    before = virtual_bytes()
    g = GuestInstance(build_module(pools=2, max_pages=WASM32_MAX_PAGES))
    r = g.create_region(RegionKind.OBJECT_ARENA, 64)
    assert virtual_bytes() - before >= 2 * POOL_RESERVATION
    with g:
        assert g.region_info(r).capacity == 64
    assert virtual_bytes() - before < POOL_RESERVATION
    with pytest.raises(HostClosed):
        g.region_info(r)


USER = """(module (import "tvm" "load_u8" (func $load_u8 (param i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "first") (param i64) (result i32) local.get 0 i32.const 0 call $load_u8))"""


def host_embedder() -> tuple[object, object]:
    host = TvmHost(pools=1)
    return host, host.instantiate(USER)


def guest_embedder() -> tuple[object, object]:
    g = GuestInstance(build_module(pools=1, max_pages=16))
    return g, g.link(USER.replace('(memory (export "memory") 1)', ""))


@pytest.mark.parametrize("make", [host_embedder, guest_embedder], ids=["TvmHost", "GuestInstance"])
@pytest.mark.parametrize(
    ("method", "use"),
    [
        ("call", lambda e, user, h: e.call(user, "first", h.to_i64())),
        ("read", lambda e, user, h: e.read(h, 4)),
        ("write", lambda e, user, h: e.write(h, b"abcd")),
        ("alloc", lambda e, user, h: e.alloc(h.region_id, 8)),
        ("compact_region", lambda e, user, h: e.compact_region(h.region_id)),
        ("migrate", lambda e, user, h: e.migrate(h)),
        ("create_region", lambda e, user, h: e.create_region(RegionKind.OBJECT_ARENA, 64)),
    ],
)
def test_a_closed_embedder_names_the_method_the_caller_used(make, method, use) -> None:
    """Both embedders word it alike, naming the public method, never an export reached on the way
    (a closed GuestInstance said "used: trap_seq" for call and "used: handle_address" for read)."""
    embedder, user = make()
    r = embedder.create_region(RegionKind.OBJECT_ARENA, 4096, allocator=Freelist())
    h = embedder.alloc(r, 16)
    embedder.close()
    embedder.close()  # twice is fine
    assert embedder.closed
    name = type(embedder).__mro__[2].__name__  # ClosedX(Closed, X): X is the public class
    with pytest.raises(HostClosed) as closed:
        use(embedder, user, h)
    assert str(closed.value) == f"this {name} is closed (used: {method})"
    assert repr(embedder) == f"<{name} (closed)>"


def test_internal_objects_kept_past_close_fail_cleanly_instead_of_reading_freed_memory() -> None:
    """A traceback's locals (a Region with table-backed counters) outlive the host: repr must not crash."""
    host = TvmHost(pools=1)
    r = host.create_region(RegionKind.OBJECT_ARENA, 4096, allocator=Freelist())
    host.alloc(r, 8)
    region = host._regions[r]
    host.close()
    with pytest.raises(IndexError):
        region.counters.allocations  # noqa: B018 - the read is the test
    with pytest.raises(IndexError):
        repr(region)
