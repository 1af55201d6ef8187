"""``tvm:memory/bytes`` called from a guest: every function, its success and its errors."""

from __future__ import annotations

import pytest
from wasmtime.component import Variant
from wit_guests import Wit, err, fields, ok

from tvm_wasm import Handle
from tvm_wasm.core.backing import MemoryBackingStore
from tvm_wasm.host.component import DEFAULT_MAX_TRANSFER, instantiate_component
from tvm_wasm.host.component_values import from_handle


@pytest.fixture
def region(wit):
    """A 4 KiB object arena and a 64-byte block at offset 0."""
    rid = ok(wit.manager("create-region", "object-arena", 4096))
    return rid, ok(wit.manager("alloc", rid, 64))


def at(rid: int, offset: int, generation: int = 1):
    return from_handle(Handle(rid, generation, offset))


def test_read_and_write(host, wit, region):
    rid, h = region
    assert ok(wit.bytes("write", h, b"hello")) is None
    assert ok(wit.bytes("read", h, 5)) == b"hello"
    assert ok(wit.bytes("read", h, 0)) == b""
    assert ok(wit.bytes("write", at(rid, 4090), b"edge!!")) is None  # up to the last byte
    assert ok(wit.bytes("read", at(rid, 4090), 6)) == b"edge!!"
    assert host.read(Handle(rid, 1, 0), 5) == b"hello"  # the Python API sees the same bytes
    every = bytes(range(256)) * 16
    ok(wit.bytes("write", at(rid, 0), every))
    assert ok(wit.bytes("read", at(rid, 0), 4096)) == every


def test_read_errors(wit, region):
    rid, h = region
    assert err(wit.bytes("read", at(9, 0), 4), "region-not-found") == 9
    info = err(wit.bytes("read", at(rid, 0, generation=2), 4), "stale-handle")
    assert (getattr(info, "region-id"), info.generation, info.offset) == (rid, 2, 0)
    info = err(wit.bytes("read", at(rid, 4000), 97), "out-of-bounds")
    assert fields(info) | {"message": ""} == {
        "region-id": rid, "generation": 1, "offset": 4000, "len": 97, "capacity": 4096, "message": "",
    }
    err(wit.bytes("read", at(rid, 0xFFFF_FFFF), 1), "out-of-bounds")  # offset + len past 2^32: no wrap
    assert err(wit.bytes("read", h, 0xFFFF_FFFF), "transfer-too-large") == DEFAULT_MAX_TRANSFER


def test_write_errors(wit, region):
    rid, _ = region
    assert err(wit.bytes("write", at(11, 0), b"x"), "region-not-found") == 11
    err(wit.bytes("write", at(rid, 0, generation=5), b"x"), "stale-handle")
    info = err(wit.bytes("write", at(rid, 4000), b"y" * 200), "out-of-bounds")  # a list longer than the room left
    assert info.len == 200 and info.capacity == 4096
    assert ok(wit.bytes("read", at(rid, 4000), 96)) == bytes(96)  # nothing was written


def test_oversized_lists_hit_the_transfer_limit(make_host, proxy_component):
    host = make_host()
    wit = Wit(instantiate_component(host, proxy_component, linker=host.component_linker(max_transfer=1024)))
    assert wit.diagnostics("max-transfer") == 1024
    rid = ok(wit.manager("create-region", "blob-arena", 1 << 20))
    h = ok(wit.manager("alloc", rid, 1 << 20))
    assert err(wit.bytes("write", h, bytes(1025)), "transfer-too-large") == 1024
    assert err(wit.bytes("read", h, 1025), "transfer-too-large") == 1024
    ok(wit.bytes("write", h, b"\x01" * 1024))
    assert ok(wit.bytes("read", h, 1024)) == b"\x01" * 1024
    ok(wit.bytes("copy-region", rid, 0, rid, 4096, 65536))  # region-to-region moves are not capped
    assert host.metrics(rid).bytes_written == 1024 + 65536


def test_reads_and_writes_fault_a_cold_region_in(make_host, make_wit):
    host = make_host(backing=MemoryBackingStore())
    wit = make_wit(host)
    rid = ok(wit.manager("create-region", "object-arena", 4096))
    h = ok(wit.manager("alloc", rid, 4))
    ok(wit.bytes("write", h, b"cold"))
    ok(wit.manager("spill-region", rid))
    assert ok(wit.bytes("read", h, 4)) == b"cold"
    ok(wit.manager("spill-region", rid))
    ok(wit.bytes("write", h, b"warm"))
    assert wit.diagnostics("fault-count", rid) == 2


def test_a_strict_host_answers_not_resident(make_host, make_wit):
    host = make_host(backing=MemoryBackingStore(), strict=True)
    wit = make_wit(host)
    rid = ok(wit.manager("create-region", "object-arena", 4096))
    h = ok(wit.manager("alloc", rid, 4))
    ok(wit.manager("spill-region", rid))
    assert "strict" in err(wit.bytes("read", h, 4), "not-resident").message
    err(wit.bytes("write", h, b"no"), "not-resident")
    ok(wit.manager("load-region", rid))
    assert ok(wit.bytes("read", h, 4)) == bytes(4)


def test_copy(wit, region):
    rid, h = region
    other = ok(wit.manager("create-region", "blob-arena", 128))
    dst = ok(wit.manager("alloc", other, 16))
    ok(wit.bytes("write", h, b"0123456789abcdef"))
    assert ok(wit.bytes("copy", h, dst, 16)) is None
    assert ok(wit.bytes("read", dst, 16)) == b"0123456789abcdef"
    ok(wit.bytes("copy", h, at(rid, 4), 8))  # overlapping, within one region
    assert ok(wit.bytes("read", h, 16)) == b"012301234567cdef"
    err(wit.bytes("copy", at(rid, 0, 3), dst, 1), "stale-handle")
    err(wit.bytes("copy", h, at(other, 0, 3), 1), "stale-handle")
    err(wit.bytes("copy", h, at(other, 120), 16), "out-of-bounds")
    assert err(wit.bytes("copy", at(77, 0), dst, 1), "region-not-found") == 77


def test_read_into(wit, region):
    rid, h = region
    other = ok(wit.manager("create-region", "blob-arena", 128))
    ok(wit.bytes("write", h, b"payload!"))
    assert ok(wit.bytes("read-into", h, other, 100, 8)) is None
    assert ok(wit.bytes("read", at(other, 100), 8)) == b"payload!"
    err(wit.bytes("read-into", at(rid, 0, 2), other, 0, 8), "stale-handle")
    assert err(wit.bytes("read-into", h, 55, 0, 8), "region-not-found") == 55
    info = err(wit.bytes("read-into", h, other, 124, 8), "out-of-bounds")
    assert getattr(info, "region-id") == other and info.capacity == 128


def test_write_from(wit, region):
    rid, h = region
    other = ok(wit.manager("create-region", "blob-arena", 128))
    ok(wit.bytes("write", at(other, 40), b"from raw"))
    assert ok(wit.bytes("write-from", other, 40, h, 8)) is None
    assert ok(wit.bytes("read", h, 8)) == b"from raw"
    err(wit.bytes("write-from", other, 40, at(rid, 0, 9), 8), "stale-handle")
    assert err(wit.bytes("write-from", 56, 0, h, 8), "region-not-found") == 56
    err(wit.bytes("write-from", other, 125, h, 8), "out-of-bounds")


def test_copy_region(host, wit):
    src = ok(wit.manager("create-region-with", "object-arena", 256, Variant("freelist")))
    dst = ok(wit.manager("create-region", "blob-arena", 256))
    a = ok(wit.manager("alloc", src, 8))
    ok(wit.manager("alloc", src, 8))
    ok(wit.bytes("write", at(src, 8), b"survivor"))
    ok(wit.manager("dealloc", a))
    ok(wit.manager("compact-region", src))  # generation 2 now: raw offsets don't care
    assert ok(wit.bytes("copy-region", src, 0, dst, 200, 8)) is None
    assert ok(wit.bytes("read", at(dst, 200), 8)) == b"survivor"
    assert err(wit.bytes("copy-region", 99, 0, dst, 0, 1), "region-not-found") == 99
    assert err(wit.bytes("copy-region", src, 0, 98, 0, 1), "region-not-found") == 98
    err(wit.bytes("copy-region", src, 250, dst, 0, 8), "out-of-bounds")
    err(wit.bytes("copy-region", src, 0, dst, 0xFFFF_FFFF, 8), "out-of-bounds")
