"""Bad input from a guest yields the right ``tvm-error``, never a trap or a host crash;
and the WIT path behaves like the model (``RegionDirectory``, the specification)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wasmtime.component import Variant
from wit_guests import RAW_WAT, Wit, err, fields, ok

from tvm_wasm import Handle, RegionDirectory
from tvm_wasm.core.allocators import Bump, Freelist, Slab
from tvm_wasm.core.backing import MemoryBackingStore
from tvm_wasm.core.types import RegionKind
from tvm_wasm.host.component import DEFAULT_MAX_TRANSFER
from tvm_wasm.host.component_errors import GuestTrapped, to_wit_error
from tvm_wasm.host.component_values import (
    case_name,
    from_eviction,
    from_handle,
    from_metrics,
    from_region_info,
    from_remap,
    to_eviction_order,
)

U16, U32 = 0xFFFF, 0xFFFF_FFFF


def h(region: int, generation: int, offset: int):
    return from_handle(Handle(region, generation, offset))


def test_hostile_calls_get_typed_errors(host, wit):
    rid = ok(wit.manager("create-region", "object-arena", 4096))
    cases: list[tuple[str, str, tuple[Any, ...], str]] = [
        ("bytes", "read", (h(0, 0, 0), 1), "region-not-found"),  # the null handle
        ("bytes", "read", (h(U16, U16, U32), 1), "region-not-found"),
        ("bytes", "read", (h(rid, 0, 0), 1), "stale-handle"),  # generation 0 is never live
        ("bytes", "read", (h(rid, U16, 0), 1), "stale-handle"),
        ("bytes", "read", (h(rid, 1, U32), 1), "out-of-bounds"),
        ("bytes", "read", (h(rid, 1, 0), 4097), "out-of-bounds"),
        ("bytes", "read", (h(rid, 1, 0), U32), "transfer-too-large"),
        ("bytes", "write", (h(rid, 1, 4095), b"ab"), "out-of-bounds"),
        ("bytes", "write", (h(rid, 1, 0), bytes(DEFAULT_MAX_TRANSFER + 1)), "transfer-too-large"),
        ("bytes", "copy", (h(rid, 1, 0), h(rid, 1, 1), U32), "out-of-bounds"),
        ("bytes", "read-into", (h(rid, 1, 0), U16, 0, 1), "region-not-found"),
        ("bytes", "write-from", (rid, U32, h(rid, 1, 0), 2), "out-of-bounds"),
        ("bytes", "copy-region", (rid, U32, rid, U32, U32), "out-of-bounds"),
        ("manager", "alloc", (rid, U32), "allocation-failed"),
        ("manager", "alloc", (0, 1), "region-not-found"),
        ("manager", "create-region", ("scratch", 0), "invalid-argument"),
        ("manager", "create-region-with", ("scratch", 64, Variant("slab", U32)), "ok"),  # a slab with no slots
        ("manager", "alloc", (rid + 1, U32), "allocation-failed"),  # ...so nothing fits
        ("manager", "dealloc", (h(rid, 1, 4097),), "out-of-bounds"),
        ("manager", "dealloc", (h(rid, 1, 17),), "ok"),  # Bump dealloc is a no-op for any in-bounds offset
        ("manager", "load-external", (rid, bytes(DEFAULT_MAX_TRANSFER + 1)), "transfer-too-large"),
        ("manager", "demote-until", (2**64 - 1, "lru"), "ok"),  # nothing to do
        ("diagnostics", "metrics-snapshot", (U16,), "region-not-found"),
    ]
    for interface, name, args, expected in cases:
        result = getattr(wit, interface)(name, *args)
        if expected == "ok":
            ok(result)
        else:
            err(result, expected)
    # the host is intact and the region still works
    data = ok(wit.manager("alloc", rid, 4))
    ok(wit.bytes("write", data, b"fine"))
    assert ok(wit.bytes("read", data, 4)) == b"fine"
    assert wit.diagnostics("fault-count", U16) == 0


def test_a_list_past_wasmtimes_own_limit_traps_before_the_host(make_host, make_wit):
    """wasmtime refuses a host call that copies more than its hostcall fuel (~2.67 MiB of
    list): the guest traps before the host runs. ``max-transfer`` stays below that, so a
    guest that honours it never gets there; the host itself is unharmed either way."""
    host = make_host()
    wit = make_wit(host)
    rid = ok(wit.manager("create-region", "blob-arena", 4 << 20))
    handle = ok(wit.manager("alloc", rid, 4 << 20))
    err(wit.bytes("write", handle, bytes((2 << 20) + 1)), "transfer-too-large")  # typed, below the limit
    with pytest.raises(GuestTrapped, match="hostcall"):
        wit.bytes("write", handle, bytes(3 << 20))
    assert host.metrics(rid).bytes_written == 0
    with pytest.raises(GuestTrapped, match="trapped earlier"):  # that guest is done ...
        wit.diagnostics("resident-bytes")
    assert ok(make_wit(host).bytes("read", handle, 4)) == bytes(4)  # ... another one is not
    host.write(Handle(rid, 1, 0), b"still fine")  # the Python API and the raw path carry on
    raw = host.instantiate(RAW_WAT)
    assert host.call(raw, "read_sum", Handle(rid, 1, 0).to_i64(), 1) == 0x100 | ord("s")


def test_errors_carry_enough_context(wit):
    rid = ok(wit.manager("create-region", "object-arena", 100))
    info = fields(err(wit.bytes("read", h(rid, 1, 90), 20), "out-of-bounds"))
    assert info == {
        "region-id": rid, "generation": 1, "offset": 90, "len": 20, "capacity": 100,
        "message": f"read(r{rid}@1+90) of 20 byte(s): outside the region's capacity",  # core.handle_faults
    }
    info = fields(err(wit.bytes("write", h(rid, 4, 0), b"x"), "stale-handle"))
    assert info["region-id"] == rid and info["generation"] == 4 and info["len"] == 1
    assert info["message"] == f"write(r{rid}@4+0) of 1 byte(s): region r{rid} at generation 1"  # core.handle_faults


def test_a_fault_reads_as_the_model_words_it(wit):
    """Past the capacity and a refused compaction: the error-info message is the model's, from one table
    (``core.handle_faults``), as on TvmHost, GuestInstance and tvm-guest.js; nothing stored changes."""
    from tvm_wasm.core.handle_faults import compact_refused, out_of_bounds

    rid = ok(wit.manager("create-region", "object-arena", 4096))
    block = ok(wit.manager("alloc", rid, 8))
    ok(wit.bytes("write", block, b"keepsake"))
    heap = ok(wit.manager("create-region-with", "hot-heap", 4096, Variant("freelist")))
    ok(wit.manager("alloc", heap, 16))
    ok(wit.manager("pin", heap))
    slab = ok(wit.manager("create-region-with", "object-arena", 4096, Variant("slab", 32)))
    cases = [
        (wit.bytes("read", h(rid, 1, 4090), 8), "out-of-bounds", out_of_bounds("read", Handle(rid, 1, 4090), 8, 4096)),
        (wit.bytes("write", h(rid, 1, 4090), b"x" * 8), "out-of-bounds",
         out_of_bounds("write", Handle(rid, 1, 4090), 8, 4096)),
        (wit.bytes("copy", h(rid, 1, 0), h(rid, 1, 4090), 8), "out-of-bounds",
         out_of_bounds("copy", Handle(rid, 1, 4090), 8, 4096)),
        (wit.bytes("discard", h(rid, 1, 4090), 8), "out-of-bounds", out_of_bounds("discard", Handle(rid, 1, 4090), 8, 4096)),
        (wit.manager("compact-region", rid), "unsupported-allocator", compact_refused(rid, "allocator", allocator="Bump")),
        (wit.manager("compact-region", slab), "unsupported-allocator", compact_refused(slab, "allocator", allocator="Slab")),
        (wit.manager("compact-region", heap), "pinned", compact_refused(heap, "pinned")),
    ]
    for result, case, expected in cases:
        info = fields(err(result, case))
        assert info["message"] == expected.message, info
        assert (info["region-id"], info["capacity"]) == (expected.region_id, expected.capacity), info
    assert ok(wit.bytes("read", block, 8)) == b"keepsake"


# ---------------------------------------------------------------------- differential: WIT vs the model
KINDS = [case_name(k) for k in RegionKind]
ORDERS = ["largest-first", "smallest-first", "insertion-order", "lru"]

region_ids = st.sampled_from([1, 1, 2, 2, 3, 3, 4, 5, 0, 9])  # mostly live (see PRELUDE), some not
offsets = st.one_of(st.integers(0, 96), st.integers(0, 600), st.just(U32))
lengths = st.one_of(st.integers(0, 32), st.integers(0, 600), st.just(U32))
allocators = st.sampled_from([Variant("bump"), Variant("freelist"), Variant("slab", 16)])
ops = st.one_of(
    st.tuples(st.just("create-region-with"), st.sampled_from(KINDS), st.integers(0, 512), allocators),
    st.tuples(st.just("destroy-region"), region_ids),
    st.tuples(st.just("alloc"), region_ids, st.sampled_from([0, 1, 16, 16, 64, 600])),
    st.tuples(st.just("alloc"), region_ids, st.sampled_from([16, 32])),
    st.tuples(st.just("dealloc"), st.integers(0, 20)),
    st.tuples(st.just("read"), st.integers(0, 20), lengths),
    st.tuples(st.just("write"), st.integers(0, 20), st.binary(max_size=64)),
    st.tuples(st.just("copy"), st.integers(0, 20), st.integers(0, 20), lengths),
    st.tuples(st.just("read-into"), st.integers(0, 20), region_ids, offsets, lengths),
    st.tuples(st.just("write-from"), region_ids, offsets, st.integers(0, 20), lengths),
    st.tuples(st.just("copy-region"), region_ids, offsets, region_ids, offsets, lengths),
    st.tuples(st.sampled_from([
        "describe-region", "promote-region", "demote-region", "spill-region", "load-region", "pin", "unpin",
        "compact-region", "mark-external", "metrics-snapshot",
    ]), region_ids),
    st.tuples(st.just("load-external"), region_ids, st.binary(max_size=600)),
    st.tuples(st.just("demote-until"), st.integers(0, 2048), st.sampled_from(ORDERS)),
)
# Every program starts with one region per allocator, so most calls reach real state.
PRELUDE = [
    ("create-region-with", "object-arena", 512, Variant("freelist")),
    ("create-region-with", "blob-arena", 512, Variant("bump")),
    ("create-region-with", "page-store", 256, Variant("slab", 16)),
    ("create-region-with", "hot-heap", 256, Variant("freelist")),
]
MANAGER = {
    "create-region-with", "destroy-region", "alloc", "dealloc", "describe-region", "promote-region", "demote-region",
    "spill-region", "load-region", "pin", "unpin", "compact-region", "mark-external", "load-external", "demote-until",
}


def model_call(model: RegionDirectory, handles: list[Handle], op: tuple[Any, ...]) -> Any:
    """What the model answers, as the WIT value (errors through the same mapping)."""
    name, *args = op
    pick = lambda i: handles[i % len(handles)] if handles else Handle(1, 1, 0)

    def at_current(region: int, offset: int) -> Handle:
        return Handle(region, model.region_info(region).generation, offset)

    try:
        if name == "create-region-with":
            kind, capacity, allocator = args
            made = {"bump": Bump, "freelist": Freelist}.get(allocator.tag)
            alloc = made() if made else Slab(allocator.payload)
            return model.create_region(RegionKind[kind.upper().replace("-", "_")], capacity, allocator=alloc)
        if name == "alloc":
            return from_handle(model.alloc(*args))
        if name == "dealloc":
            return model.dealloc(pick(args[0]))
        if name == "read":
            return model.read(pick(args[0]), args[1]) if args[1] <= DEFAULT_MAX_TRANSFER else _too_large()
        if name == "write":
            return model.write(pick(args[0]), args[1])
        if name == "copy":
            return model.copy(pick(args[0]), pick(args[1]), args[2])
        if name == "read-into":
            src = pick(args[0])
            return model.copy(src, at_current(args[1], args[2]), args[3])
        if name == "write-from":
            return model.copy(at_current(args[0], args[1]), pick(args[2]), args[3])
        if name == "copy-region":
            return model.copy_region(*args)
        if name == "describe-region":
            return from_region_info(model.region_info(*args))
        if name == "compact-region":
            return from_remap(model.compact_region(*args))
        if name == "metrics-snapshot":
            return from_metrics(model.metrics(*args))
        if name == "load-external":
            return model.load_external(args[0], lambda _i, _g: args[1])
        if name == "demote-until":
            return from_eviction(model.demote_until(args[0], order=to_eviction_order(args[1])))  # type: ignore[arg-type]
        return getattr(model, name.replace("-", "_"))(*args)
    except Exception as exc:  # noqa: BLE001 - every model failure becomes its WIT error
        return to_wit_error(exc, region_id=args[0] if args and isinstance(args[0], int) and args[0] <= U16 else 0)


def _too_large() -> Any:
    return Variant("transfer-too-large", DEFAULT_MAX_TRANSFER)


def wit_call(wit: Wit, handles: list[Handle], op: tuple[Any, ...]) -> Any:
    name, *args = op
    pick = lambda i: from_handle(handles[i % len(handles)] if handles else Handle(1, 1, 0))
    if name in ("dealloc", "read", "write"):
        args[0] = pick(args[0])
    elif name == "copy":
        args[0], args[1] = pick(args[0]), pick(args[1])
    elif name == "read-into":
        args[0] = pick(args[0])
    elif name == "write-from":
        args[2] = pick(args[2])
    if name == "metrics-snapshot":
        return wit.diagnostics(name, *args)
    return (wit.manager if name in MANAGER else wit.bytes)(name, *args)


def normal(value: Any) -> Any:
    """Comparable form: records as dicts, variants as (tag, payload) with messages kept."""
    if isinstance(value, Variant):
        return (value.tag, fields(value.payload))
    return fields(value)


@pytest.fixture(scope="module")
def differential_env(proxy_component, engine):
    from tvm_wasm.host.tvm_host import TvmHost

    def fresh() -> tuple[RegionDirectory, TvmHost, Wit]:
        host = TvmHost(backing=MemoryBackingStore(), engine=engine)
        return RegionDirectory(MemoryBackingStore()), host, Wit(host.instantiate_component(proxy_component))

    return fresh


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ops, min_size=1, max_size=30))
def test_wit_path_matches_the_model(differential_env, program):
    model, host, wit = differential_env()
    with host:  # released at once: shrinking makes many hosts
        _check_against_model(model, wit, program)


def _check_against_model(model, wit, program) -> None:
    handles: list[Handle] = []
    for step, op in enumerate(PRELUDE + program):
        expected = model_call(model, handles, op)
        got = wit_call(wit, handles, op)
        assert normal(got) == normal(expected), f"step {step}: {op}"
        if op[0] == "alloc" and not isinstance(got, Variant):  # old handles stay: after compaction they are stale
            handles.append(Handle(getattr(got, "region-id"), got.generation, got.offset))
    assert [normal(from_region_info(i)) for i in model.list_regions()] == [
        normal(i) for i in wit.diagnostics("list-regions")
    ]
    for rid in model:
        assert normal(from_metrics(model.metrics(rid))) == normal(ok(wit.diagnostics("metrics-snapshot", rid)))
