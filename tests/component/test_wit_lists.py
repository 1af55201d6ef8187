"""Bulk ``list<u8>`` conversion gives exactly what wasmtime-py's element-wise code gives."""

from __future__ import annotations

import pytest
from wit_guests import ok

from tvm_wasm.host import component_lists

PAYLOADS = [b"", b"\x00", b"\xff", bytes(range(256)), bytes(range(256))[::-1] * 17 + b"tail"]


@pytest.fixture
def stock_then_bulk():
    component_lists.uninstall()
    try:
        yield
    finally:
        assert component_lists.install()


def roundtrip(wit, payloads: list[bytes]) -> list[bytes]:
    rid = ok(wit.manager("create-region", "blob-arena", 8192))
    handle = ok(wit.manager("alloc", rid, 8192))
    out = []
    for payload in payloads:
        ok(wit.bytes("write", handle, payload))  # Python -> guest -> host
        out.append(ok(wit.bytes("read", handle, len(payload))))  # host -> guest -> Python
    return out


def test_the_self_check_passes_and_linkers_install_it(host):
    assert component_lists.self_check()
    host.component_linker()
    assert component_lists.installed()


def test_bulk_and_stock_conversion_agree(wit, stock_then_bulk):
    stock = roundtrip(wit, PAYLOADS)
    assert component_lists.install()
    bulk = roundtrip(wit, PAYLOADS)
    assert stock == bulk == PAYLOADS


def test_other_lists_keep_the_stock_path(host, wit):
    rid = ok(wit.manager("create-region", "object-arena", 64))
    assert [vars(r)["id"] for r in wit.diagnostics("list-regions")] == [rid]  # list<record>
    with pytest.raises(TypeError):
        wit.bytes("write", ok(wit.manager("alloc", rid, 4)), [1, 2, 3, 4])  # list<u8> wants bytes
