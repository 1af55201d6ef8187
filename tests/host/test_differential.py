"""Differential test: TvmHost (data plane driven by a wasm guest through the raw ABI)
against the pure-Python RegionDirectory model.

Control-plane operations run from Python on both. Data-plane operations run
through the guest on the host and as the equivalent model calls; ABI error
codes are compared with the model's exception codes. After every step the
regions' bytes, generations, residency, metadata, metrics, spilled copies and
the number of entries into Python are compared.
"""

from __future__ import annotations

import math
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host_guests import (
    TYPED, TYPED_FORMAT, Guest, compiled, proxy_guest, raw_handle, shared_engine, typed_bytes,
)
from tvm_wasm import (
    Freelist,
    Handle,
    MemoryBackingStore,
    OutOfBounds,
    RegionDirectory,
    RegionKind,
    Slab,
    TvmError,
)
from tvm_wasm.core.handle import U32_MAX
from tvm_wasm.host.tvm_host import TvmHost

DST = 0  # guest buffer the ABI reads into
SRC = 65536  # guest buffer the ABI writes from
MAX_GUEST_LEN = 8192
KINDS = [RegionKind.OBJECT_ARENA, RegionKind.BLOB_ARENA, RegionKind.PAGE_STORE, RegionKind.HOT_HEAP,
         RegionKind.SCRATCH]
WIDTH = {name: width for name, width, _ in TYPED}


def outcome(fn, *args):
    """(result, 0) or (None, error code) for a model/host Python call."""
    try:
        return fn(*args), 0
    except TvmError as exc:
        return None, exc.code


class Pair:
    """A host with a proxy guest and a model, driven in lockstep."""

    def __init__(self, strict: bool, inline: bool = False) -> None:
        self.host = TvmHost(backing=MemoryBackingStore(), strict=strict, engine=shared_engine())
        guest = proxy_guest(pages=2)
        instance = self.host.instantiate(guest, inline=True) if inline else self.host.instantiate(compiled(guest))
        self.g = Guest(self.host, instance)
        self.model = RegionDirectory(backing=MemoryBackingStore(), strict=strict)
        self.handles: list[Handle] = []
        self.destroyed: list[int] = []
        self.entries = 0  # expected python_entries

    # ------------------------------------------------------------ helpers
    def model_faults(self) -> int:
        return sum(self.model.metrics(r).faults for r in self.model)

    def freelist_slow_path(self, region_id: int) -> bool:
        region = self.model._regions.get(region_id)
        return region is not None and isinstance(region.allocator, Freelist)

    def check(self) -> None:
        host, model = self.host, self.model
        assert host.list_regions() == model.list_regions()
        for r in model:
            assert host.metrics(r) == model.metrics(r), r
            region = model._regions[r]
            if region.residency.is_resident:
                assert bytes(host.view(r)) == bytes(region.storage), r
        assert host.backing._copies == model.backing._copies
        assert host.python_entries == self.entries
        assert host.resident_bytes() == model.resident_bytes()

    # ------------------------------------------------------------ model equivalents of ABI calls
    def model_typed_target(self, h: Handle, off: int, width: int) -> Handle:
        """The handle the model accesses for a typed op at ``h + off``, or raise like the runtime."""
        if h.offset + off > U32_MAX:
            self.model._validate(h, 0)  # region / generation / offset errors come first
            raise OutOfBounds("typed access beyond 4 GiB")
        return h.with_offset(h.offset + off)


def handles_for(pair: Pair, data: st.DataObject) -> Handle | int:
    """A live, stale, edge or garbage handle."""
    model = pair.model
    choice = data.draw(st.integers(0, 9), label="handle kind")
    if choice <= 3 and pair.handles:
        return data.draw(st.sampled_from(pair.handles), label="known handle")
    if choice <= 7 and len(model):
        r = data.draw(st.sampled_from(sorted(model)), label="region")
        info = model.region_info(r)
        gen = info.generation if choice <= 6 else data.draw(st.sampled_from([info.generation - 1, info.generation + 1]))
        cap = info.capacity
        off = data.draw(st.one_of(st.sampled_from([0, cap, cap - 1, cap - 8, U32_MAX]), st.integers(0, cap)),
                        label="offset")
        return raw_handle(r, gen, max(off, 0))
    if choice == 8 and pair.destroyed:
        return raw_handle(data.draw(st.sampled_from(pair.destroyed)), 1, 0)
    return raw_handle(data.draw(st.integers(0, 40)), data.draw(st.integers(0, 3)), data.draw(st.integers(0, 64)))


def as_handle(packed: Handle | int) -> Handle:
    return packed if isinstance(packed, Handle) else Handle.unpack(packed)


def lengths(data: st.DataObject, limit: int = 512) -> int:
    return data.draw(st.one_of(st.integers(0, limit), st.sampled_from([0, 1, 8, 4095, 4096, 4097, U32_MAX])),
                     label="len")


def region_ids(pair: Pair, data: st.DataObject) -> int:
    pool = sorted(pair.model) + pair.destroyed + [0, 99, 0x1_0000 + 1]
    return data.draw(st.sampled_from(pool), label="region id")


# ---------------------------------------------------------------- operations
def op_create(pair: Pair, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(KINDS), label="kind")
    capacity = data.draw(st.integers(1, 4096), label="capacity")
    alloc = data.draw(st.sampled_from(["bump", "slab", "freelist"]), label="allocator")
    cls = data.draw(st.integers(1, 64), label="class") if alloc == "slab" else 0
    make = {"bump": lambda: None, "slab": lambda: Slab(cls), "freelist": lambda: Freelist()}[alloc]
    assert pair.host.create_region(kind, capacity, allocator=make()) == pair.model.create_region(
        kind, capacity, allocator=make()
    )


def op_control(pair: Pair, data: st.DataObject) -> None:
    if not len(pair.model) and not pair.destroyed:
        return
    name = data.draw(st.sampled_from(["destroy", "spill", "load", "demote", "promote", "compact", "pin", "unpin"]))
    r = region_ids(pair, data)
    result_h, code_h = outcome(getattr(pair.host, f"{name}_region" if name not in ("pin", "unpin") else name), r)
    result_m, code_m = outcome(getattr(pair.model, f"{name}_region" if name not in ("pin", "unpin") else name), r)
    assert (result_h, code_h) == (result_m, code_m), name
    if name == "destroy" and code_m == 0:
        pair.destroyed.append(r)
    if name == "compact" and code_m == 0:
        pair.handles += [moved for h in pair.handles if (moved := result_m.migrate(h)) is not None]


def op_python_data(pair: Pair, data: st.DataObject) -> None:
    """Python-side alloc/write on both (the host's Python API shares the table with wasm)."""
    if data.draw(st.booleans()):
        r, size = region_ids(pair, data), data.draw(st.integers(0, 300))
        got_h, got_m = outcome(pair.host.alloc, r, size), outcome(pair.model.alloc, r, size)
        assert got_h == got_m
        if got_m[1] == 0:
            pair.handles.append(got_m[0])
    else:
        h = as_handle(handles_for(pair, data))
        payload = random.Random(data.draw(st.integers(0, 2**32))).randbytes(data.draw(st.integers(0, 64)))
        # a fault taken from Python is not an entry from wasm: python_entries stays put
        assert outcome(pair.host.write, h, payload) == outcome(pair.model.write, h, payload)


def op_alloc(pair: Pair, data: st.DataObject) -> None:
    r = region_ids(pair, data)
    size = data.draw(st.one_of(st.integers(0, 300), st.just(U32_MAX)), label="size")
    slow = pair.freelist_slow_path(r)
    expect, code = outcome(pair.model.alloc, r, size)
    got = pair.g("alloc", r, size)
    pair.entries += slow
    assert pair.g.last_error() == code
    if code:
        assert got == 0
    else:
        assert Handle.unpack(got) == expect
        pair.handles.append(expect)


def op_dealloc(pair: Pair, data: st.DataObject) -> None:
    packed = handles_for(pair, data)
    h = as_handle(packed)
    _, valid = outcome(pair.model._validate, h, 0)
    slow = valid == 0 and pair.freelist_slow_path(h.region_id)
    _, code = outcome(pair.model.dealloc, h)
    assert pair.g("dealloc", packed) == code
    pair.entries += slow
    assert pair.g.last_error() == code


def op_read(pair: Pair, data: st.DataObject) -> None:
    packed, n = handles_for(pair, data), lengths(data)
    h = as_handle(packed)
    faults = pair.model_faults()
    expect, code = outcome(pair.model.read, h, n)
    pair.entries += pair.model_faults() - faults
    marker = bytes([0xA5]) * 64
    pair.g.put(DST, marker)
    assert pair.g("read", packed, DST, n) == code
    assert pair.g.last_error() == code
    if code == 0:
        assert pair.g.get(DST, n) == expect
    else:
        assert pair.g.get(DST, 64) == marker


def op_write(pair: Pair, data: st.DataObject) -> None:
    packed, n = handles_for(pair, data), lengths(data)
    h = as_handle(packed)
    payload = random.Random(data.draw(st.integers(0, 2**32))).randbytes(min(n, MAX_GUEST_LEN))
    pair.g.put(SRC, payload)
    faults = pair.model_faults()
    _, code = outcome(pair.model.write, h, payload) if n <= MAX_GUEST_LEN else outcome(pair.model._validate, h, n)
    pair.entries += pair.model_faults() - faults
    assert pair.g("write", packed, SRC, n) == code
    assert pair.g.last_error() == code


def op_typed(pair: Pair, data: st.DataObject) -> None:
    name, width, fmt = data.draw(st.sampled_from(TYPED), label="type")
    packed = handles_for(pair, data)
    h = as_handle(packed)
    off = data.draw(st.one_of(st.integers(0, 64), st.sampled_from([U32_MAX, U32_MAX - 3, 2**31])), label="off")
    store = data.draw(st.booleans(), label="store")
    faults = pair.model_faults()
    if store:
        if name.startswith("f"):
            value = data.draw(st.floats(width=32 if name == "f32" else 64, allow_nan=False), label="value")
        elif name == "i64":
            value = data.draw(st.integers(-(2**63), 2**63 - 1), label="value")
        else:
            value = data.draw(st.integers(0, 2 ** (8 * width) - 1), label="value")
        _, code = outcome(lambda: pair.model.write(pair.model_typed_target(h, off, width), typed_bytes(name, value)))
        call = lambda: pair.g(f"store_{name}", packed, off, value)  # noqa: E731
    else:
        expect, code = outcome(lambda: pair.model.read(pair.model_typed_target(h, off, width), width))
        call = lambda: pair.g(f"load_{name}", packed, off)  # noqa: E731
    pair.entries += pair.model_faults() - faults
    trying = data.draw(st.booleans(), label="try_ variant")
    if trying:  # the non-trapping twin: same checks and effects, the code returned, the value through DST
        marker = bytes([0xA5]) * 8
        pair.g.put(DST, marker)
        got_code = pair.g(f"try_store_{name}", packed, off, value) if store else pair.g(f"try_load_{name}", packed, off, DST)
        assert pair.g.last_error() == got_code
        got = None if got_code or store else struct.unpack(TYPED_FORMAT[name], pair.g.get(DST, width))[0]
        if got_code or store:
            assert pair.g.get(DST, 8) == marker, "a failed or store call wrote guest memory"
    else:
        try:
            got = call()
            got_code = 0
        except TvmError as exc:
            got, got_code = None, exc.code
            # the error names what was accessed: the handle's offset plus off, the width
            assert (exc.offset, exc.length) == (h.offset + off, width), exc
            pair.entries += 1  # a failed typed access enters Python once, to raise its error
    assert got_code == code, (name, store, h, off)
    if not store and code == 0:
        want = struct.unpack(TYPED_FORMAT[name], expect)[0]
        if name in ("u8", "u16", "u32"):
            got &= 0xFFFF_FFFF
        if isinstance(want, float) and math.isnan(want):
            assert math.isnan(got)
        else:
            assert got == want


def op_copy(pair: Pair, data: st.DataObject) -> None:
    src, dst, n = handles_for(pair, data), handles_for(pair, data), lengths(data)
    faults = pair.model_faults()
    _, code = outcome(pair.model.copy, as_handle(src), as_handle(dst), n)
    pair.entries += pair.model_faults() - faults
    assert pair.g("copy", src, dst, n) == code
    assert pair.g.last_error() == code


def op_copy_region(pair: Pair, data: st.DataObject) -> None:
    a, b = region_ids(pair, data), region_ids(pair, data)
    offs = st.one_of(st.integers(0, 4096), st.sampled_from([U32_MAX, U32_MAX - 1]))
    ao, bo, n = data.draw(offs), data.draw(offs), lengths(data)
    faults = pair.model_faults()
    _, code = outcome(pair.model.copy_region, a, ao, b, bo, n)
    pair.entries += pair.model_faults() - faults
    assert pair.g("copy_region", a, ao, b, bo, n) == code
    assert pair.g.last_error() == code


def op_reducer(pair: Pair, data: st.DataObject) -> None:
    packed, n = handles_for(pair, data), lengths(data)
    h = as_handle(packed)
    faults = pair.model_faults()
    if data.draw(st.booleans(), label="fill"):
        byte = data.draw(st.integers(0, 255))
        _, code = outcome(pair.model.write, h, bytes([byte]) * n) if n <= 4096 else outcome(pair.model._validate, h, n)
        pair.entries += pair.model_faults() - faults
        assert pair.g("fill", packed, n, byte) == code
    else:
        got_bytes, code = outcome(pair.model.read, h, n)
        pair.entries += pair.model_faults() - faults
        expect = sum(got_bytes) if code == 0 else -1
        assert pair.g("sum_u8", packed, n) == expect
    assert pair.g.last_error() == code


OPS = [op_create, op_create, op_control, op_control, op_python_data, op_alloc, op_alloc, op_dealloc,
       op_read, op_read, op_write, op_write, op_typed, op_typed, op_typed, op_copy, op_copy_region, op_reducer]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(strict=st.booleans(), data=st.data())
def test_host_matches_model(strict, data):
    pair = Pair(strict)
    with pair.host:  # released at once: shrinking makes thousands of hosts
        run_ops(pair, data)


def run_ops(pair: Pair, data: st.DataObject) -> None:
    steps = data.draw(st.integers(1, 40), label="steps")
    for _ in range(steps):
        op = data.draw(st.sampled_from(OPS), label="op")
        op(pair, data)
        pair.check()


def test_differential_harness_detects_divergence():
    """The comparison is live: a byte changed behind the model's back is noticed."""
    pair = Pair(strict=False)
    r = pair.host.create_region(RegionKind.OBJECT_ARENA, 16)
    assert pair.model.create_region(RegionKind.OBJECT_ARENA, 16) == r
    pair.check()
    pair.host.view(r)[3] = 1
    try:
        pair.check()
    except AssertionError:
        return
    raise AssertionError("check() missed a changed byte")
