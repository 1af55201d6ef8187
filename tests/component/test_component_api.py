"""wasmtime idioms on ComponentGuest, the compiled-component cache, and the public converters."""

from __future__ import annotations

import pytest
from wasmtime import Engine
from wasmtime.component import Component, Variant
from wit_guests import ok

from tvm_wasm import (
    AllocationFailed,
    BackingStoreError,
    Handle,
    NotResident,
    OutOfBounds,
    Pinned,
    PolicyViolation,
    RegionKind,
    RegionNotFound,
    StaleHandle,
    TvmError,
    UnsupportedAllocator,
)
from tvm_wasm.core.types import RegionInfo, RegionMetrics, Residency
from tvm_wasm.host import component_cache
from tvm_wasm.host.component_cache import engine_fingerprint, load_component
from tvm_wasm.host.component_errors import (
    ComponentLinkError,
    ComponentLoadError,
    ExportNotFound,
    InvalidArgument,
    TransferTooLarge,
    to_tvm_error,
    to_wit_error,
)
from tvm_wasm.host.component_guest import ExportName, resolve_export
from tvm_wasm.host.component_values import (
    from_handle,
    from_metrics,
    from_region_info,
    from_wit,
    record,
    to_handle,
    to_metrics,
    to_region_info,
    to_wit,
)
from tvm_wasm.host.tvm_host import new_engine

EXPORTS = [
    ExportName(None, "run"),
    ExportName("local:app/bench@0.1.0", "read-loop"),
    ExportName("local:app/bench@0.1.0", "run"),
    ExportName("local:other/bench@0.2.0", "read-loop"),
    ExportName("local:app/util@0.1.0", "only-here"),
]


@pytest.mark.parametrize(
    ("asked", "found"),
    [
        ("run", "run"),  # world level wins, as in wasmtime
        ("local:app/bench@0.1.0#run", "local:app/bench@0.1.0#run"),
        ("local:app/bench@0.1.0#read-loop", "local:app/bench@0.1.0#read-loop"),
        ("local:app/bench#read-loop", "local:app/bench@0.1.0#read-loop"),  # unversioned
        ("local:other/bench@0.2.0#read_loop", "local:other/bench@0.2.0#read-loop"),  # snake_case
        ("only-here", "local:app/util@0.1.0#only-here"),  # a unique short name
        ("util#only-here", "local:app/util@0.1.0#only-here"),
    ],
)
def test_export_names_resolve(asked, found):
    assert resolve_export(EXPORTS, asked).full == found


@pytest.mark.parametrize(("asked", "says"), [
    ("read-loop", "ambiguous: it matches local:app/bench@0.1.0#read-loop, local:other/bench@0.2.0#read-loop"),
    ("bench#read-loop", "ambiguous"),
    ("nothing", "exports no function 'nothing'; its exports: run, local:app/bench@0.1.0#read-loop"),
    ("util#run", "exports no function 'util#run'"),
])
def test_unresolvable_names_list_the_exports(asked, says):
    with pytest.raises(ExportNotFound, match=says.replace("(", r"\(")) as raised:
        resolve_export(EXPORTS, asked)
    assert isinstance(raised.value, LookupError) and isinstance(raised.value, TvmError)


def test_get_func_takes_the_store_like_wasmtime(host, proxy_component):
    guest = host.instantiate_component(proxy_component)
    assert "tvm:memory/bytes@0.1.0#read" in guest.exports()
    rid = host.create_region(RegionKind.BLOB_ARENA, 64)
    h = host.alloc(rid, 4)
    host.write(h, b"abcd")
    for name in ("tvm:memory/bytes@0.1.0#read", "tvm:memory/bytes#read", "bytes#read", "read"):
        read = guest.get_func(guest.store, name)
        assert ok(read(guest.store, h, 4)) == b"abcd"  # a tvm_wasm.Handle as the argument
    assert guest.call("read", interface="bytes", *[h, 4]) == b"abcd"
    assert guest.call("alloc", rid, 4, raise_errors=True) == Handle(rid, 1, 4)
    with pytest.raises(ExportNotFound, match="its exports: .*tvm:memory/manager@0.1.0#create-region"):
        guest.get_func(guest.store, "no-such-function")
    with pytest.raises(ValueError, match="guest.store"):
        guest.get_func(host.store, "read")
    with pytest.raises(TypeError, match="does not match"):
        guest.call("read", record(region_id=rid), 4)


def test_raise_errors_maps_each_case_to_its_error(host, proxy_component):
    guest = host.instantiate_component(proxy_component)
    with pytest.raises(RegionNotFound) as missing:
        guest.call("describe-region", 77, raise_errors=True)
    assert missing.value.region_id == 77
    rid = host.create_region(RegionKind.BLOB_ARENA, 16)
    with pytest.raises(OutOfBounds) as outside:
        guest.call("read", Handle(rid, 1, 8), 9, raise_errors=True)
    assert (outside.value.offset, outside.value.length, outside.value.capacity) == (8, 9, 16)
    with pytest.raises(InvalidArgument):
        guest.call("create-region", "blob-arena", 0, raise_errors=True)
    info = guest.call("describe-region", rid, raise_errors=True)
    assert info == host.region_info(rid)  # a region-info record comes back as RegionInfo
    assert guest.call("metrics-snapshot", rid, raise_errors=True) == host.metrics(rid)


ERRORS = [RegionNotFound, StaleHandle, OutOfBounds, NotResident, AllocationFailed, Pinned, PolicyViolation,
          UnsupportedAllocator, BackingStoreError]


@pytest.mark.parametrize("cls", ERRORS)
def test_errors_round_trip_through_their_wit_case(cls):
    error = cls("boom", region_id=3, generation=2, offset=16, length=8, capacity=64)
    back = to_tvm_error(to_wit_error(error))
    assert type(back) is cls
    if cls is not RegionNotFound:  # region-not-found carries the id only
        assert (back.message, back.generation, back.offset, back.length, back.capacity) == ("boom", 2, 16, 8, 64)
    assert back.region_id == 3


def test_wit_only_errors_round_trip():
    assert to_tvm_error(to_wit_error(TransferTooLarge(10, 4))).limit == 4
    assert isinstance(to_tvm_error(to_wit_error(ValueError("zero capacity"))), ValueError)
    assert type(to_tvm_error(Variant("internal", "RuntimeError: x"))) is TvmError
    with pytest.raises(ValueError):
        to_tvm_error(Variant("no-such-case", None))


def test_converters_round_trip():
    h = Handle(5, 6, 7)
    assert to_handle(from_handle(h)) == h
    info = RegionInfo(id=1, generation=2, kind=RegionKind.PAGE_STORE, capacity=64, used=8,
                      residency=Residency.WARM, pinned=True)
    assert to_region_info(from_region_info(info)) == info
    metrics = RegionMetrics(1, 2, 3, 4, 5, 6, 7)
    assert to_metrics(from_metrics(metrics)) == metrics
    nested = [h, (info, metrics)]
    assert from_wit(to_wit(nested)) == nested
    other = record(region_id=1, generation=1, offset=1, extra=2)  # not a handle: stays a record
    assert vars(from_wit(other)) == vars(other)


# ---------------------------------------------------------------- the compiled-component cache
def test_same_bytes_compile_once_per_engine(build_dir, proxy_component):
    wasm = (build_dir / "proxy" / "proxy.component.wasm").read_bytes()
    engine = new_engine()
    before = component_cache.stats()
    first = load_component(engine, wasm)
    again = load_component(engine, bytearray(wasm))
    path_form = load_component(engine, build_dir / "proxy" / "proxy.component.wasm")
    assert first is again is path_form
    after = component_cache.stats()
    assert after["compiled"] - before["compiled"] == 1 and after["memory_hits"] - before["memory_hits"] == 2
    assert load_component(new_engine(), wasm) is not first  # another engine compiles its own


def test_disk_cache_serves_a_new_engine(build_dir, tmp_path):
    wasm = (build_dir / "proxy" / "proxy.component.wasm").read_bytes()
    load_component(new_engine(), wasm, cache_dir=tmp_path)
    (folder,) = tmp_path.iterdir()
    (saved,) = folder.glob("*.cwasm")
    before = component_cache.stats()
    again = load_component(new_engine(), wasm, cache_dir=tmp_path)  # a fresh engine: from disk
    assert component_cache.stats()["disk_hits"] == before["disk_hits"] + 1
    assert isinstance(again, Component)
    # Damaged: recompiled and replaced. (Replaced by rename, as the cache writes: a compiled
    # component maps its file, so rewriting that file in place would pull bytes from under it.)
    damaged = tmp_path / "damaged"
    damaged.write_bytes(b"not a compiled component")
    damaged.replace(saved)
    load_component(new_engine(), wasm, cache_dir=tmp_path)
    assert saved.read_bytes() != b"not a compiled component"


def test_engines_configured_differently_never_share_files():
    assert engine_fingerprint(new_engine()) == engine_fingerprint(new_engine())
    from wasmtime import Config

    config = Config()
    config.cranelift_opt_level = "none"
    assert engine_fingerprint(Engine(config)) != engine_fingerprint(new_engine())


def test_bad_components_are_typed_errors(host, tmp_path):
    with pytest.raises(ComponentLoadError, match="cannot read"):
        host.instantiate_component(tmp_path / "missing.wasm")
    with pytest.raises(ComponentLoadError, match="not a valid component"):
        host.instantiate_component(b"\x00asm\x01\x00\x00\x00")
    with pytest.raises(TypeError):
        host.instantiate_component(42)
    foreign = Component(host.engine, '(component (import "x:y/z" (instance (export "f" (func)))))')
    with pytest.raises(ComponentLinkError, match="x:y/z"):
        host.instantiate_component(foreign)


def test_out_of_range_integers_are_refused_not_wrapped(host, proxy_component):
    """wasmtime-py stores integers through ctypes, which wraps: region 65537 would be region 1."""
    guest = host.instantiate_component(proxy_component)
    rid = host.create_region(RegionKind.BLOB_ARENA, 64)
    assert rid == 1
    with pytest.raises(ValueError, match=r"argument 'region-id': 65537 does not fit u16"):
        guest.call("describe-region", 65536 + rid)
    with pytest.raises(ValueError, match=r"argument 'len': -1 does not fit u32"):
        guest.call("read", Handle(rid, 1, 0), -1)
    with pytest.raises(ValueError, match=r"'src'.offset: 4294967296 does not fit u32"):
        guest.call("copy", record(region_id=rid, generation=1, offset=1 << 32), Handle(rid, 1, 0), 1)
    assert guest.call("describe-region", rid, raise_errors=True).id == rid  # the guest is unharmed


def test_closing_the_host_closes_its_component_guests_stores(make_host, proxy_component) -> None:
    from tvm_wasm import HostClosed

    host = make_host()
    guests = [host.instantiate_component(proxy_component) for _ in range(2)]
    host.close()
    for guest in guests:
        with pytest.raises(ValueError, match="already closed"):
            guest.store.gc()  # the store is released now, not at garbage collection
        with pytest.raises(HostClosed):
            guest.call(guest.exports()[0])
