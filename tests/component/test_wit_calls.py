"""The direct trampoline (``component_calls``): used for the hot shapes, falls back to
wasmtime-py's conversion for errors, rich records and components typed differently."""

from __future__ import annotations

from pathlib import Path

import pytest
from wasmtime.component import Component
from wit_guests import Wit, err, fields, ok

from tvm_wasm import Handle, RegionKind
from tvm_wasm.host import component_calls
from tvm_wasm.host.component import component_linker, instantiate_component
from tvm_wasm.host.component_build import build_proxy
from tvm_wasm.host.component_values import record

# Same package name and function names, other types: handle fields reordered, a u64
# length, fewer error cases. wasmtime links a component against whatever types it
# declares, so the host must read the values as they are, not as it expects them.
FOREIGN_WIT = """package tvm:memory@0.1.0;

interface types {
    record handle { offset: u32, generation: u16, region-id: u16 }
    variant tvm-error { region-not-found(u16), stale-handle(string), out-of-bounds(string) }
}

interface bytes {
    use types.{handle, tvm-error};
    read: func(h: handle, len: u64) -> result<list<u8>, tvm-error>;
    write: func(h: handle, data: list<u8>) -> result<_, tvm-error>;
}

world foreign {
    import bytes;
    export bytes;
}
"""


def test_hot_calls_take_the_direct_path(host, make_wit):
    wit = make_wit(host)
    start = component_calls.counts()
    rid = ok(wit.manager("create-region", "object-arena", 4096))
    h = ok(wit.manager("alloc", rid, 8))
    ok(wit.bytes("write", h, b"12345678"))
    assert ok(wit.bytes("read", h, 8)) == b"12345678"
    assert wit.diagnostics("bytes-read-count", rid) == 8
    middle = component_calls.counts()
    assert (middle[0] - start[0], middle[1] - start[1]) == (5, 0)
    err(wit.bytes("read", h, 5000), "out-of-bounds")  # an error result goes through wasmtime-py
    assert fields(ok(wit.manager("describe-region", rid)))["used"] == 8  # so does a rich record
    end = component_calls.counts()
    assert (end[0] - middle[0], end[1] - middle[1]) == (0, 2)


def test_the_stock_trampoline_gives_the_same_answers(make_host, proxy_component):
    host = make_host()
    wit = Wit(instantiate_component(host, proxy_component, linker=component_linker(host, fast_calls=False)))
    rid = ok(wit.manager("create-region", "blob-arena", 64))
    h = ok(wit.manager("alloc", rid, 4))
    ok(wit.bytes("write", h, b"slow"))
    assert ok(wit.bytes("read", h, 4)) == b"slow"
    err(wit.bytes("read", h, 65), "out-of-bounds")
    assert wit.diagnostics("bytes-written-count", rid) == 4


@pytest.fixture(scope="module")
def foreign_component(build_dir: Path, engine) -> Component:
    root = build_dir / "foreign"
    (root / "wit").mkdir(parents=True)
    (root / "wit" / "foreign.wit").write_text(FOREIGN_WIT)
    return Component(engine, build_proxy(root, world="foreign", wit=root / "wit"))


def test_a_differently_typed_component_is_served_through_the_fallback(host, foreign_component):
    rid = host.create_region(RegionKind.BLOB_ARENA, 4096)
    host.write(Handle(rid, 1, 100), b"foreign!")
    guest = instantiate_component(host, foreign_component)
    h = record(offset=100, generation=1, region_id=rid)  # fields in the foreign order
    assert guest.call("read", h, 8, interface="bytes") == b"foreign!"
    assert guest.call("write", h, b"FOREIGN", interface="bytes") is None
    assert host.read(Handle(rid, 1, 100), 8) == b"FOREIGN!"
    missing = guest.call("read", record(offset=0, generation=1, region_id=77), 1, interface="bytes")
    assert (missing.tag, missing.payload) == ("region-not-found", 77)
