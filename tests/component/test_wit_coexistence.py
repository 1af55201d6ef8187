"""The WIT path and the raw ABI share one directory: same regions, same bytes, same metrics."""

from __future__ import annotations

from wit_guests import RAW_WAT, err, fields, ok

from tvm_wasm import Handle, RegionKind
from tvm_wasm.core.allocators import Freelist
from tvm_wasm.core.backing import MemoryBackingStore
from tvm_wasm.host.component_values import from_handle, to_handle


def call(host, raw, name, *args):
    return host.call(raw, name, *args)


def test_raw_writes_wit_reads(host, wit, raw):
    rid = ok(wit.manager("create-region", "object-arena", 4096))  # created through WIT
    packed = call(host, raw, "alloc", rid, 32)  # allocated through the raw ABI in it
    assert packed != 0
    assert call(host, raw, "fill_write", packed, 0xAB, 32) == 0
    h = from_handle(Handle.unpack(packed))  # the same handle, as a WIT record
    assert ok(wit.bytes("read", h, 32)) == b"\xab" * 32


def test_wit_writes_raw_reads(host, wit, raw):
    rid = ok(wit.manager("create-region", "blob-arena", 4096))
    h = ok(wit.manager("alloc", rid, 4))
    ok(wit.bytes("write", h, bytes([1, 2, 3, 4])))
    packed = to_handle(h).to_i64()
    assert call(host, raw, "read_sum", packed, 4) == 0x100 | 10


def test_metrics_count_both_paths(host, wit, raw):
    rid = ok(wit.manager("create-region", "object-arena", 4096))
    h = ok(wit.manager("alloc", rid, 64))
    packed = to_handle(h).to_i64()
    assert call(host, raw, "alloc", rid, 16) != 0
    ok(wit.bytes("write", h, bytes(64)))  # 64 written via WIT
    assert call(host, raw, "fill_write", packed, 1, 32) == 0  # 32 written raw
    ok(wit.bytes("read", h, 10))  # 10 read via WIT
    assert call(host, raw, "read_sum", packed, 20) & 0x100  # 20 read raw
    assert wit.diagnostics("allocation-count", rid) == 2
    assert wit.diagnostics("bytes-written-count", rid) == 96
    assert wit.diagnostics("bytes-read-count", rid) == 30
    snapshot = fields(ok(wit.diagnostics("metrics-snapshot", rid)))
    assert snapshot["bytes-allocated"] == 80
    assert host.metrics(rid).bytes_read == 30  # and the Python API agrees


def test_lifecycle_changes_reach_the_raw_path(host, wit, raw):
    rid = ok(wit.manager("create-region", "object-arena", 4096))
    h = ok(wit.manager("alloc", rid, 8))
    packed = to_handle(h).to_i64()
    ok(wit.manager("destroy-region", rid))
    assert call(host, raw, "read_sum", packed, 8) == 2  # stale handle, raw code 2
    assert call(host, raw, "alloc", rid, 8) == 0
    assert call(host, raw, "last_error") == 1  # region not found


def test_wit_compaction_is_seen_by_raw_guests(host, wit, raw):
    rid = host.create_region(RegionKind.OBJECT_ARENA, 4096, allocator=Freelist())
    first = Handle.unpack(call(host, raw, "alloc", rid, 16))
    second = Handle.unpack(call(host, raw, "alloc", rid, 16))
    assert call(host, raw, "fill_write", second.to_i64(), 7, 16) == 0
    ok(wit.manager("dealloc", from_handle(first)))
    mapping = fields(ok(wit.manager("compact-region", rid)))["mapping"]
    assert mapping == [(16, 0)]
    assert call(host, raw, "read_sum", second.to_i64(), 16) == 2  # stale after WIT compaction
    moved = Handle(rid, 2, 0)
    assert call(host, raw, "read_sum", moved.to_i64(), 16) == 0x100 | (7 * 16 & 0xFF)


def test_wit_spill_then_raw_access_faults_in(make_host, make_wit):
    host = make_host(backing=MemoryBackingStore())
    wit = make_wit(host)
    raw = host.instantiate(RAW_WAT)
    rid = ok(wit.manager("create-region", "object-arena", 4096))
    h = ok(wit.manager("alloc", rid, 3))
    ok(wit.bytes("write", h, b"\x01\x02\x03"))
    ok(wit.manager("spill-region", rid))
    assert host.call(raw, "read_sum", to_handle(h).to_i64(), 3) == 0x100 | 6  # the data plane faults it in
    assert wit.diagnostics("fault-count", rid) == 1
    assert fields(ok(wit.manager("describe-region", rid)))["residency"] == "hot"


def test_python_entries_count_wit_calls_not_raw_ones(host, wit, raw):
    rid = host.create_region(RegionKind.BLOB_ARENA, 4096)
    h = host.alloc(rid, 8)
    before = host.python_entries
    assert host.call(raw, "read_sum", h.to_i64(), 8) & 0x100
    assert host.python_entries == before  # the raw data path stays in wasm
    ok(wit.bytes("read", from_handle(h), 8))
    wit.diagnostics("resident-bytes")
    assert host.python_entries == before + 2  # each WIT call enters Python once


def test_two_components_and_a_raw_guest_share_regions(host, make_wit, raw):
    producer, consumer = make_wit(host), make_wit(host)
    rid = ok(producer.manager("create-region", "page-store", 4096))
    h = ok(producer.manager("alloc", rid, 5))
    ok(producer.bytes("write", h, b"share"))
    assert ok(consumer.bytes("read", h, 5)) == b"share"
    ok(consumer.manager("destroy-region", rid))
    err(producer.bytes("read", h, 5), "stale-handle")
    assert call(host, raw, "read_sum", to_handle(h).to_i64(), 5) == 2
