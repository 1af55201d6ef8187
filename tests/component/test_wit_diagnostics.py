"""``tvm:memory/diagnostics`` called from a guest: every function."""

from __future__ import annotations

from wit_guests import err, fields, ok

from tvm_wasm import RegionKind
from tvm_wasm.core.backing import MemoryBackingStore
from tvm_wasm.host.component import DEFAULT_MAX_TRANSFER


def test_list_regions(host, wit):
    assert wit.diagnostics("list-regions") == []
    a = ok(wit.manager("create-region", "object-arena", 4096))
    b = host.create_region(RegionKind.PAGE_STORE, 8192)  # created from Python: same directory
    ok(wit.manager("alloc", a, 10))
    listed = [fields(info) for info in wit.diagnostics("list-regions")]
    assert listed == [
        {"id": a, "generation": 1, "kind": "object-arena", "capacity": 4096, "used": 10, "residency": "hot", "pinned": False},
        {"id": b, "generation": 1, "kind": "page-store", "capacity": 8192, "used": 0, "residency": "warm", "pinned": False},
    ]


def test_counters_and_snapshot(make_host, make_wit):
    host = make_host(backing=MemoryBackingStore())
    wit = make_wit(host)
    rid = ok(wit.manager("create-region", "object-arena", 4096))
    h = ok(wit.manager("alloc", rid, 100))
    ok(wit.manager("alloc", rid, 28))
    ok(wit.bytes("write", h, bytes(100)))
    ok(wit.bytes("read", h, 60))
    ok(wit.manager("spill-region", rid))
    ok(wit.bytes("read", h, 4))
    assert wit.diagnostics("allocation-count", rid) == 2
    assert wit.diagnostics("bytes-written-count", rid) == 100
    assert wit.diagnostics("bytes-read-count", rid) == 64
    assert wit.diagnostics("fault-count", rid) == 1
    assert fields(ok(wit.diagnostics("metrics-snapshot", rid))) == {
        "allocations": 2, "bytes-allocated": 128, "bytes-read": 64, "bytes-written": 100,
        "faults": 1, "promotions": 1, "demotions": 1, "bytes-discarded": 0,
    }
    for counter in ("fault-count", "allocation-count", "bytes-read-count", "bytes-written-count"):
        assert wit.diagnostics(counter, 500) == 0  # unknown region: counts nothing, no error
    assert err(wit.diagnostics("metrics-snapshot", 500), "region-not-found") == 500


def test_resident_bytes_budget_and_limit(make_host, make_wit):
    host = make_host(backing=MemoryBackingStore(), budget_bytes=16384)
    wit = make_wit(host)
    assert wit.diagnostics("budget-bytes") == 16384
    assert wit.diagnostics("max-transfer") == DEFAULT_MAX_TRANSFER
    assert wit.diagnostics("resident-bytes") == 0
    first = ok(wit.manager("create-region", "object-arena", 8192))
    ok(wit.manager("create-region", "page-store", 8192))
    assert wit.diagnostics("resident-bytes") == 16384
    ok(wit.manager("create-region", "blob-arena", 8192))  # the budget spills the older one
    assert wit.diagnostics("resident-bytes") == 16384 == host.resident_bytes()
    assert [fields(i)["residency"] for i in wit.diagnostics("list-regions")].count("cold") == 1
    assert first in host


def test_no_budget_is_none(wit):
    assert wit.diagnostics("budget-bytes") is None
