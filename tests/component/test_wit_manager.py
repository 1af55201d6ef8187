"""``tvm:memory/manager`` called from a guest: every function, its success and its errors."""

from __future__ import annotations

import pytest
from wasmtime.component import Variant
from wit_guests import Wit, err, fields, ok

from tvm_wasm import Handle, RegionKind, Residency
from tvm_wasm.core.allocators import Freelist
from tvm_wasm.core.backing import MemoryBackingStore
from tvm_wasm.host.component import instantiate_component
from tvm_wasm.host.component_values import from_handle, to_handle

KINDS = ["hot-heap", "object-arena", "blob-arena", "page-store", "scratch", "device-state", "code-cache"]


class FailingStore(MemoryBackingStore):
    """A store that refuses every spill and load (a full or broken disk)."""

    def spill(self, region_id: int, generation: int, data: bytes) -> None:
        raise OSError("disk full")

    def load(self, region_id: int, generation: int) -> bytes:
        raise OSError("disk on fire")


@pytest.fixture
def backed(make_host, make_wit):
    host = make_host(backing=MemoryBackingStore())
    return host, make_wit(host)


# ---------------------------------------------------------------------- create / destroy
def test_create_region_every_kind(host, wit):
    ids = [ok(wit.manager("create-region", kind, 4096)) for kind in KINDS]
    assert ids == list(range(1, 8))
    for rid, kind in zip(ids, KINDS):
        info = host.region_info(rid)
        assert info.kind is RegionKind[kind.upper().replace("-", "_")] and info.capacity == 4096
    assert host.region_info(ids[3]).residency is Residency.WARM  # page-store starts Warm


def test_create_region_errors(make_host, make_wit):
    host = make_host(budget_bytes=8192)
    wit = make_wit(host)
    assert "capacity must be in 1..4294967295, got 0" in err(wit.manager("create-region", "object-arena", 0), "invalid-argument")
    info = err(wit.manager("create-region", "object-arena", 16384), "allocation-failed")
    assert info.capacity == 16384 and "budget" in info.message
    assert len(host) == 0


def test_create_region_with_each_allocator(host, wit):
    free = ok(wit.manager("create-region-with", "object-arena", 4096, Variant("freelist")))
    slab = ok(wit.manager("create-region-with", "object-arena", 4096, Variant("slab", 64)))
    bump = ok(wit.manager("create-region-with", "blob-arena", 4096, Variant("bump")))
    assert host.dump_layout().splitlines()[free].endswith("freelist")
    assert fields(ok(wit.manager("alloc", slab, 64)))["offset"] % 64 == 0
    err(wit.manager("alloc", slab, 10), "allocation-failed")  # not the class size
    assert fields(ok(wit.manager("alloc", bump, 5)))["offset"] == 0
    assert "positive" in err(wit.manager("create-region-with", "object-arena", 4096, Variant("slab", 0)), "invalid-argument")


def test_destroy_region(host, wit):
    rid = ok(wit.manager("create-region", "object-arena", 4096))
    h = ok(wit.manager("alloc", rid, 8))
    assert ok(wit.manager("destroy-region", rid)) is None
    assert rid not in host
    assert err(wit.manager("destroy-region", rid), "region-not-found") == rid
    err(wit.bytes("read", h, 8), "stale-handle")


# ---------------------------------------------------------------------- alloc / dealloc / describe
def test_alloc(host, wit):
    rid = ok(wit.manager("create-region", "object-arena", 64))
    h = to_handle(ok(wit.manager("alloc", rid, 16)))
    assert h == Handle(rid, 1, 0)
    assert to_handle(ok(wit.manager("alloc", rid, 16))).offset == 16
    info = err(wit.manager("alloc", rid, 100), "allocation-failed")
    assert fields(info) | {"message": ""} == {
        "region-id": rid, "generation": 1, "offset": None, "len": 100, "capacity": 64, "message": "",
    }
    assert err(wit.manager("alloc", 42, 1), "region-not-found") == 42


def test_dealloc(host, wit):
    rid = ok(wit.manager("create-region-with", "object-arena", 64, Variant("freelist")))
    a = ok(wit.manager("alloc", rid, 32))
    ok(wit.manager("alloc", rid, 32))
    err(wit.manager("alloc", rid, 32), "allocation-failed")
    assert ok(wit.manager("dealloc", a)) is None
    assert to_handle(ok(wit.manager("alloc", rid, 32))).offset == 0  # the block came back
    stale = from_handle(Handle(rid, 7, 0))
    err(wit.manager("dealloc", stale), "stale-handle")
    assert err(wit.manager("dealloc", from_handle(Handle(99, 1, 0))), "region-not-found") == 99
    err(wit.manager("dealloc", from_handle(Handle(rid, 1, 3))), "out-of-bounds")  # not a block start


def test_describe_region(host, wit):
    rid = ok(wit.manager("create-region", "hot-heap", 4096))
    ok(wit.manager("alloc", rid, 100))
    ok(wit.manager("pin", rid))
    assert fields(ok(wit.manager("describe-region", rid))) == {
        "id": rid, "generation": 1, "kind": "hot-heap", "capacity": 4096, "used": 100, "residency": "hot", "pinned": True,
    }
    assert err(wit.manager("describe-region", 3), "region-not-found") == 3


# ---------------------------------------------------------------------- tiers
def test_demote_hot_to_warm_needs_no_backing_store(host, wit):
    """The reference required a backing store even for Hot -> Warm (its §14.2 #5)."""
    assert host.backing is None
    rid = ok(wit.manager("create-region", "object-arena", 4096))
    h = ok(wit.manager("alloc", rid, 4))
    ok(wit.bytes("write", h, b"warm"))
    assert ok(wit.manager("demote-region", rid)) is None
    assert host.region_info(rid).residency is Residency.WARM
    assert ok(wit.bytes("read", h, 4)) == b"warm"
    # Warm -> Cold spills, which does need one
    info = err(wit.manager("demote-region", rid), "backing-store")
    assert "no backing store" in info.message and getattr(info, "region-id") == rid
    assert host.region_info(rid).residency is Residency.WARM


def test_demote_region_errors(host, wit):
    heap = ok(wit.manager("create-region", "hot-heap", 4096))
    err(wit.manager("demote-region", heap), "policy-violation")  # hot-heap never leaves memory
    ok(wit.manager("pin", heap))
    err(wit.manager("demote-region", heap), "pinned")
    assert err(wit.manager("demote-region", 77), "region-not-found") == 77
    arena = ok(wit.manager("create-region", "object-arena", 4096))
    ok(wit.manager("mark-external", arena))
    err(wit.manager("demote-region", arena), "not-resident")


def test_demote_warm_to_cold_and_promote_back(backed):
    host, wit = backed
    rid = ok(wit.manager("create-region", "page-store", 4096))  # starts Warm
    h = ok(wit.manager("alloc", rid, 5))
    ok(wit.bytes("write", h, b"pages"))
    ok(wit.manager("demote-region", rid))
    assert host.region_info(rid).residency is Residency.COLD
    ok(wit.manager("demote-region", rid))  # Cold stays Cold
    ok(wit.manager("promote-region", rid))
    assert host.region_info(rid).residency is Residency.HOT
    assert ok(wit.bytes("read", h, 5)) == b"pages"
    assert wit.diagnostics("fault-count", rid) == 1


def test_promote_region(host, wit):
    rid = ok(wit.manager("create-region", "page-store", 4096))
    assert ok(wit.manager("promote-region", rid)) is None
    assert host.region_info(rid).residency is Residency.HOT
    ok(wit.manager("promote-region", rid))  # Hot stays Hot
    assert wit.diagnostics("metrics-snapshot", rid).promotions == 1
    assert err(wit.manager("promote-region", 12), "region-not-found") == 12
    ok(wit.manager("mark-external", rid))
    assert "load_external" in err(wit.manager("promote-region", rid), "not-resident").message


def test_spill_region(backed):
    host, wit = backed
    rid = ok(wit.manager("create-region", "blob-arena", 4096))
    h = ok(wit.manager("alloc", rid, 4))
    ok(wit.bytes("write", h, b"blob"))
    assert ok(wit.manager("spill-region", rid)) is None
    assert host.region_info(rid).residency is Residency.COLD
    assert len(host.backing) == 1
    ok(wit.manager("spill-region", rid))  # already Cold: a no-op
    assert ok(wit.bytes("read", h, 4)) == b"blob"  # faults back in
    scratch = ok(wit.manager("create-region", "scratch", 64))
    err(wit.manager("spill-region", scratch), "policy-violation")
    heap = ok(wit.manager("create-region", "hot-heap", 64))
    ok(wit.manager("pin", heap))
    err(wit.manager("spill-region", heap), "pinned")
    assert err(wit.manager("spill-region", 200), "region-not-found") == 200


def test_failed_spill_loses_nothing(make_host, make_wit):
    """The reference dropped the bytes before the store accepted them (its §14.2 #2)."""
    host = make_host(backing=FailingStore())
    wit = make_wit(host)
    rid = ok(wit.manager("create-region", "object-arena", 4096))
    h = ok(wit.manager("alloc", rid, 12))
    ok(wit.bytes("write", h, b"keep me safe"))
    info = err(wit.manager("spill-region", rid), "backing-store")
    assert "disk full" in info.message and getattr(info, "region-id") == rid
    assert host.region_info(rid).residency is Residency.HOT
    assert ok(wit.bytes("read", h, 12)) == b"keep me safe"
    ok(wit.manager("demote-region", rid))  # Hot -> Warm still fine
    err(wit.manager("demote-region", rid), "backing-store")  # Warm -> Cold spills: refused, kept
    assert ok(wit.bytes("read", h, 12)) == b"keep me safe"
    assert host.metrics(rid).demotions == 1


def test_load_region(backed):
    host, wit = backed
    rid = ok(wit.manager("create-region", "object-arena", 4096))
    h = ok(wit.manager("alloc", rid, 3))
    ok(wit.bytes("write", h, b"old"))
    ok(wit.manager("spill-region", rid))
    assert ok(wit.manager("load-region", rid)) is None
    assert host.region_info(rid).residency is Residency.HOT
    assert ok(wit.bytes("read", h, 3)) == b"old"
    assert err(wit.manager("load-region", 9), "region-not-found") == 9
    ok(wit.manager("mark-external", rid))
    err(wit.manager("load-region", rid), "not-resident")


def test_load_region_leaves_a_resident_region_alone(backed):
    """The reference reloaded a Warm region from backing, overwriting newer bytes (its §14.2 #4)."""
    host, wit = backed
    rid = ok(wit.manager("create-region", "page-store", 4096))
    h = ok(wit.manager("alloc", rid, 3))
    ok(wit.bytes("write", h, b"v1."))
    ok(wit.manager("spill-region", rid))
    ok(wit.manager("load-region", rid))
    ok(wit.manager("demote-region", rid))  # Hot -> Warm
    ok(wit.bytes("write", h, b"v2."))
    ok(wit.manager("load-region", rid))
    assert host.region_info(rid).residency is Residency.WARM
    assert ok(wit.bytes("read", h, 3)) == b"v2."


def test_load_region_store_failure(make_host, make_wit):
    store = MemoryBackingStore()
    host = make_host(backing=store)
    wit = make_wit(host)
    rid = ok(wit.manager("create-region", "object-arena", 4096))
    ok(wit.manager("spill-region", rid))
    store.load = FailingStore.load.__get__(store)  # the disk dies while the region is Cold
    assert "disk on fire" in err(wit.manager("load-region", rid), "backing-store").message
    assert host.region_info(rid).residency is Residency.COLD


# ---------------------------------------------------------------------- pin / unpin
def test_pin_and_unpin(host, wit):
    heap = ok(wit.manager("create-region", "hot-heap", 4096))
    assert ok(wit.manager("pin", heap)) is None
    assert host.region_info(heap).pinned
    assert ok(wit.manager("unpin", heap)) is None
    assert not host.region_info(heap).pinned
    arena = ok(wit.manager("create-region", "object-arena", 4096))
    assert "not pinnable" in err(wit.manager("pin", arena), "policy-violation").message
    ok(wit.manager("mark-external", heap))
    err(wit.manager("pin", heap), "not-resident")
    assert err(wit.manager("pin", 50), "region-not-found") == 50
    assert err(wit.manager("unpin", 51), "region-not-found") == 51


# ---------------------------------------------------------------------- compaction
def test_compact_region(host, wit):
    rid = ok(wit.manager("create-region-with", "object-arena", 4096, Variant("freelist")))
    blocks = [ok(wit.manager("alloc", rid, 8)) for _ in range(4)]
    for i, h in enumerate(blocks):
        ok(wit.bytes("write", h, bytes([i]) * 8))
    ok(wit.manager("dealloc", blocks[0]))
    ok(wit.manager("dealloc", blocks[2]))
    result = fields(ok(wit.manager("compact-region", rid)))
    assert result == {"region-id": rid, "old-generation": 1, "new-generation": 2, "mapping": [(8, 0), (24, 8)]}
    err(wit.bytes("read", blocks[1], 8), "stale-handle")
    moved = from_handle(Handle(rid, 2, 8))
    assert ok(wit.bytes("read", moved, 8)) == bytes([3]) * 8
    assert "cannot be compacted" in err(
        wit.manager("compact-region", ok(wit.manager("create-region", "object-arena", 64))), "unsupported-allocator"
    ).message
    heap = host.create_region(RegionKind.HOT_HEAP, 4096, allocator=Freelist())
    host.pin(heap)
    err(wit.manager("compact-region", heap), "pinned")
    assert err(wit.manager("compact-region", 300), "region-not-found") == 300


# ---------------------------------------------------------------------- External tier
def test_mark_external_and_load_external(host, wit):
    rid = ok(wit.manager("create-region", "blob-arena", 16))
    h = ok(wit.manager("alloc", rid, 16))
    ok(wit.bytes("write", h, b"x" * 16))
    assert ok(wit.manager("mark-external", rid)) is None
    assert host.region_info(rid).residency is Residency.EXTERNAL
    err(wit.bytes("read", h, 4), "not-resident")  # never faulted automatically
    ok(wit.manager("mark-external", rid))  # already External: a no-op
    assert ok(wit.manager("load-external", rid, b"fresh")) is None
    assert host.region_info(rid).residency is Residency.HOT
    assert ok(wit.bytes("read", h, 16)) == b"fresh" + bytes(11)
    ok(wit.manager("load-external", rid, b"ignored"))  # not External: a no-op
    assert ok(wit.bytes("read", h, 5)) == b"fresh"
    ok(wit.manager("mark-external", rid))
    info = err(wit.manager("load-external", rid, b"y" * 17), "out-of-bounds")
    assert info.len == 17 and info.capacity == 16
    assert host.region_info(rid).residency is Residency.EXTERNAL
    assert err(wit.manager("load-external", 70, b""), "region-not-found") == 70
    assert err(wit.manager("mark-external", 71), "region-not-found") == 71
    heap = ok(wit.manager("create-region", "hot-heap", 64))
    ok(wit.manager("pin", heap))
    err(wit.manager("mark-external", heap), "pinned")


def test_load_external_respects_the_transfer_limit(make_host, proxy_component):
    host = make_host()
    linker = host.component_linker(max_transfer=8)
    wit = Wit(instantiate_component(host, proxy_component, linker=linker))
    rid = ok(wit.manager("create-region", "blob-arena", 64))
    ok(wit.manager("mark-external", rid))
    assert err(wit.manager("load-external", rid, b"z" * 9), "transfer-too-large") == 8
    ok(wit.manager("load-external", rid, b"z" * 8))


# ---------------------------------------------------------------------- eviction
def test_demote_until(backed):
    host, wit = backed
    warm = ok(wit.manager("create-region", "page-store", 4096))
    hot = ok(wit.manager("create-region", "object-arena", 8192))
    heap = ok(wit.manager("create-region", "hot-heap", 1024))
    ok(wit.manager("pin", heap))
    report = fields(ok(wit.manager("demote-until", 9216, "largest-first")))
    assert report == {"bytes-freed": 4096, "regions-spilled": 1, "target-met": True}  # Warm goes first
    assert host.region_info(warm).residency is Residency.COLD
    report = fields(ok(wit.manager("demote-until", 0, "lru")))
    assert report == {"bytes-freed": 8192, "regions-spilled": 1, "target-met": False}  # the pinned heap stays
    assert host.region_info(hot).residency is Residency.COLD
    assert wit.diagnostics("resident-bytes") == 1024


def test_demote_until_without_a_store_reports_the_failure(host, wit):
    ok(wit.manager("create-region", "object-arena", 4096))
    err(wit.manager("demote-until", 0, "smallest-first"), "backing-store")
    report = fields(ok(wit.manager("demote-until", 4096, "insertion-order")))
    assert report == {"bytes-freed": 0, "regions-spilled": 0, "target-met": True}
