"""One ABI, two deployments: the same user module on TvmHost and on the self-contained module.

A hypothesis-generated sequence of control-plane and raw-ABI operations runs
against both; every result, error code, trap, ``last_error``, byte of guest
memory and, at the end, every region's bytes, used count and counters must
be identical. A compiled C guest that creates, queries and destroys its own
regions (``regions.c``) must give the same answers on both too. Bump and slab regions only: they allocate identically on both
(the compactable allocators differ by design: the host's Freelist reuses
freed blocks, the module's block allocator reclaims them by compaction).
"""

from __future__ import annotations

import functools
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import wasmtime
from guest_helpers import RAW_ABI, compiled, engine, proxy_user, raw_handle, s32, s64
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tvm_wasm import RegionKind, Slab, TvmError, TvmHost
from tvm_wasm.guest.instance import GuestInstance
from tvm_wasm.host.native import memory_view
from tvm_wasm.host.tvm_host import default_engine
from tvm_wasm.sdk import clang

USER = proxy_user()
GUEST_BYTES = 65536
PTRS = st.sampled_from([0, 8, 1000, 4096, GUEST_BYTES - 16, GUEST_BYTES - 1, GUEST_BYTES, 0xFFFF_FFF0])
LENGTHS = st.one_of(st.integers(0, 80), st.sampled_from([255, 256, 300, 600, 0xFFFF_FFFF]))
OFFSETS = st.one_of(st.integers(0, 96), st.sampled_from([250, 255, 256, 511, 512, 0xFFFF_FFFF]))
TYPED = {"u8": ("i32", 0xFF), "u16": ("i32", 0xFFFF), "u32": ("i32", 0xFFFF_FFFF), "i64": ("i64", None),
         "f32": ("f32", None), "f64": ("f64", None)}
REDUCERS = ["sum_u8", "count_byte", "find_byte", "popcount", "min_max_u8", "hash_fnv1a", "fill"]


@functools.cache
def host_engine() -> wasmtime.Engine:
    return default_engine()


@functools.cache
def host_user_module() -> wasmtime.Module:
    return wasmtime.Module(host_engine(), USER)


# ---------------------------------------------------------------- operations
regions = st.integers(0, 7)  # an index into the regions made so far, or a raw id when out of range
handles = st.integers(0, 15)
ops = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(list(RegionKind)), st.integers(1, 512),
              st.sampled_from([0, 0, 1, 8, 24])),
    st.tuples(st.just("destroy"), regions),
    st.tuples(st.sampled_from(["pin", "unpin", "demote", "promote"]), regions),
    st.tuples(st.just("alloc"), regions, st.one_of(st.integers(0, 64), st.sampled_from([8, 24, 513, 0xFFFF_FFFF]))),
    st.tuples(st.just("dealloc"), handles),
    st.tuples(st.just("forge"), handles, st.sampled_from(["gen+1", "gen-1", "region+1", "offset"]),
              st.integers(0, 600)),
    st.tuples(st.just("write"), handles, OFFSETS, PTRS, LENGTHS, st.integers(0, 255)),
    st.tuples(st.just("read"), handles, OFFSETS, PTRS, LENGTHS),
    st.tuples(st.just("load"), st.sampled_from(list(TYPED)), handles, OFFSETS),
    st.tuples(st.just("store"), st.sampled_from(list(TYPED)), handles, OFFSETS, st.integers(-(1 << 63), (1 << 63) - 1)),
    st.tuples(st.just("reduce"), st.sampled_from(REDUCERS), handles, OFFSETS, LENGTHS, st.integers(0, 300)),
    st.tuples(st.sampled_from(["eq", "copy"]), handles, handles, LENGTHS),
    st.tuples(st.just("copy_region"), regions, OFFSETS, regions, OFFSETS, LENGTHS),
    st.tuples(st.just("histogram"), handles, LENGTHS, PTRS),
    st.tuples(st.just("gather"), handles, st.integers(0, 6), st.integers(0, 40), PTRS,
              st.lists(st.integers(0, 600), min_size=6, max_size=6)),
)


class Side:
    """One deployment: a control plane, and the user module whose exports run the raw ABI."""

    def region_id(self, regions: list[int], ref: int) -> int:
        """Mostly a region made in this run; refs 6 and 7 name ids that never existed."""
        if ref < 6 and regions:
            return regions[ref % len(regions)]
        return [0, 999, 70000, 0xFFFF][ref % 4]

    def call(self, name: str, *args: object) -> tuple:
        try:
            result = self._call(name, *args)
        except TvmError as exc:
            return ("trap", exc.code)
        if isinstance(result, float):
            return ("ok", struct.pack("<d", result))
        return ("ok", result)

    def control(self, op: str, *args: object) -> tuple:
        try:
            return ("ok", getattr(self, op)(*args))
        except TvmError as exc:
            return ("error", exc.code)


class HostSide(Side):
    def __init__(self) -> None:
        self.host = TvmHost(engine=host_engine(), pools=2)
        self.user = self.host.instantiate(host_user_module())

    def _call(self, name: str, *args: object) -> object:
        return self.host.call(self.user, name, *args)

    def memory(self) -> np.ndarray:
        mem = self.user.exports(self.host.store)["memory"]
        return memory_view(mem, self.host.store)

    def create(self, kind: RegionKind, capacity: int, slab: int) -> int:
        return self.host.create_region(kind, capacity, allocator=Slab(slab) if slab else None)

    def destroy(self, region_id: int) -> None:
        self.host.destroy_region(region_id)

    def pin(self, region_id: int) -> None:
        self.host.pin(region_id)

    def unpin(self, region_id: int) -> None:
        self.host.unpin(region_id)

    def demote(self, region_id: int) -> None:
        self.host.demote_region(region_id)

    def promote(self, region_id: int) -> None:
        self.host.promote_region(region_id)

    def state(self, region_id: int) -> tuple:
        info, metrics = self.host.region_info(region_id), self.host.metrics(region_id)
        return (info.generation, info.used, info.residency, info.pinned, metrics, bytes(self.host.view(region_id)))


class GuestSide(Side):
    def __init__(self) -> None:
        self.guest = GuestInstance(compiled(pools=2, max_pages=16), engine=engine())
        self.user = self.guest.link(USER)

    def _call(self, name: str, *args: object) -> object:
        return self.guest.call(self.user, name, *args)

    def memory(self) -> np.ndarray:
        return memory_view(self.guest.guest_memory, self.guest.store)

    def create(self, kind: RegionKind, capacity: int, slab: int) -> int:
        return self.guest.create_region(kind, capacity, allocator=Slab(slab) if slab else None)

    def destroy(self, region_id: int) -> None:
        self.guest.destroy_region(region_id)

    def pin(self, region_id: int) -> None:
        self.guest.pin(region_id)

    def unpin(self, region_id: int) -> None:
        self.guest.unpin(region_id)

    def demote(self, region_id: int) -> None:
        self.guest.demote_region(region_id)

    def promote(self, region_id: int) -> None:
        self.guest.promote_region(region_id)

    def state(self, region_id: int) -> tuple:
        info, metrics = self.guest.region_info(region_id), self.guest.metrics(region_id)
        return (info.generation, info.used, info.residency, info.pinned, metrics, bytes(self.guest.view(region_id)))


def typed_arg(kind: str, value: int) -> object:
    wasm_type, mask = TYPED[kind]
    if wasm_type == "i32":
        return s32(value & mask)
    if wasm_type == "i64":
        return value
    return struct.unpack("<d", struct.pack("<q", value))[0] if kind == "f64" else float(np.float32(value % 1000) / 7)


def step(side: Side, op: tuple, region_ids: list[int], hs: list[int]) -> tuple:
    """Run one operation on one side; ``region_ids``/``hs`` are this run's regions and handles."""
    kind = op[0]

    def h(ref: int) -> int:
        """Mostly a handle made in this run (allocated or forged); ref 15 names a region never made."""
        return hs[ref % len(hs)] if ref < 15 and hs else raw_handle(4242, 1, ref)

    if kind == "create":
        _, rkind, capacity, slab = op
        result = side.control("create", rkind, capacity, slab)
        return result
    if kind in ("destroy", "pin", "unpin", "demote", "promote"):
        return side.control(kind, side.region_id(region_ids, op[1]))
    if kind == "alloc":
        return side.call("alloc", s32(side.region_id(region_ids, op[1])), s32(op[2]))
    if kind == "dealloc":
        return side.call("dealloc", h(op[1]))
    if kind == "write":
        _, ref, off, ptr, length, seed = op
        memory = side.memory()
        chunk = (np.arange(min(length, 4096), dtype=np.uint32) * 31 + seed).astype(np.uint8)
        start = min(ptr, GUEST_BYTES)
        memory[start : start + len(chunk)][: GUEST_BYTES - start] = chunk[: GUEST_BYTES - start]
        return side.call("write", handle_at(h(ref), off), s32(ptr), s32(length))
    if kind == "read":
        _, ref, off, ptr, length = op
        return side.call("read", handle_at(h(ref), off), s32(ptr), s32(length))
    if kind == "load":
        _, t, ref, off = op
        return side.call(f"load_{t}", h(ref), s32(off))
    if kind == "store":
        _, t, ref, off, value = op
        return side.call(f"store_{t}", h(ref), s32(off), typed_arg(t, value))
    if kind == "reduce":
        _, name, ref, off, length, byte = op
        args = [handle_at(h(ref), off), s32(length)]
        if len(RAW_ABI[name][0]) == 3:
            args.append(s32(byte))
        return side.call(name, *args)
    if kind in ("eq", "copy"):
        _, a, b, length = op
        return side.call(kind, h(a), h(b), s32(length))
    if kind == "copy_region":
        _, ra, oa, rb, ob, length = op
        return side.call("copy_region", s32(side.region_id(region_ids, ra)), s32(oa),
                         s32(side.region_id(region_ids, rb)), s32(ob), s32(length))
    if kind == "histogram":
        _, ref, length, ptr = op
        return side.call("byte_histogram", h(ref), s32(length), s32(ptr))
    if kind == "gather":
        _, ref, count, item, ptr, indices = op
        memory = side.memory()
        memory[2048 : 2048 + 24] = np.frombuffer(struct.pack("<6I", *indices), dtype=np.uint8)
        return side.call("read_gather", h(ref), 2048, count, item, s32(ptr))
    raise AssertionError(op)


def handle_at(packed: int, offset: int) -> int:
    """The handle with its offset field replaced (bounds are the region's, so any offset is a fair test)."""
    return s64((packed & ~0xFFFF_FFFF) | (offset & 0xFFFF_FFFF))


def forge(packed: int, how: str, amount: int) -> int:
    value = packed & 0xFFFF_FFFF_FFFF_FFFF
    region, gen, offset = value >> 48, (value >> 32) & 0xFFFF, value & 0xFFFF_FFFF
    if how == "gen+1":
        gen = (gen + 1) & 0xFFFF
    elif how == "gen-1":
        gen = (gen - 1) & 0xFFFF
    elif how == "region+1":
        region = (region + 1) & 0xFFFF
    else:
        offset = amount
    return raw_handle(region, gen, offset)


# Every run starts with live regions of each allocator and a few blocks, so most
# generated operations act on real data rather than stop at "no such region".
PROLOGUE = [
    ("create", RegionKind.OBJECT_ARENA, 512, 0),
    ("create", RegionKind.PAGE_STORE, 300, 0),
    ("create", RegionKind.HOT_HEAP, 256, 16),
    ("alloc", 0, 64), ("alloc", 0, 200), ("alloc", 1, 100), ("alloc", 2, 16), ("alloc", 2, 16),
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=1, max_size=50))
def test_same_guest_same_results_on_tvmhost_and_the_module(sequence):
    host, guest = HostSide(), GuestSide()
    region_ids: list[int] = []
    hs: list[int] = []
    for n, op in enumerate([*PROLOGUE, *sequence]):
        if op[0] == "forge":
            if hs:
                hs.append(forge(hs[op[1] % len(hs)], op[2], op[3]))
            continue
        on_host = step(host, op, region_ids, hs)
        on_guest = step(guest, op, region_ids, hs)
        assert on_host == on_guest, f"op {n} {op}: host {on_host} != guest {on_guest}"
        assert host.call("last_error") == guest.call("last_error"), f"op {n} {op}: last_error differs"
        assert np.array_equal(host.memory()[:GUEST_BYTES], guest.memory()[:GUEST_BYTES]), f"op {n} {op}: guest memory"
        if op[0] == "create" and on_host[0] == "ok":
            region_ids.append(on_host[1])
        if op[0] == "alloc" and on_host[1]:
            hs.append(on_host[1])
    live = [r for r in region_ids if r in host.host]
    for r in live:
        assert host.state(r) == guest.state(r), f"region {r} differs"
    assert guest.guest.region_count() == len(live)


# ---------------------------------------------------------------- a compiled guest that manages its own regions
@functools.cache
def regions_library() -> bytes:
    """``tvm_wasm/sdk/examples/regions.c`` built as a library (clang), once per session."""
    with tempfile.TemporaryDirectory(prefix="tvm-regions-") as tmp:
        return clang.build(clang.example("regions"), Path(tmp) / "regions.wasm", target="library").read_bytes()


@pytest.mark.parametrize("seed", [1, 7, 1234])
def test_c_guest_creating_and_destroying_regions_runs_unchanged_on_both(seed: int) -> None:
    problem = clang.toolchain_problem("library")
    if problem is not None:
        pytest.skip(problem)
    wasm = regions_library()
    host = TvmHost(engine=host_engine(), pools=2)
    on_host = host.instantiate(wasm)
    guest = GuestInstance(compiled(pools=2, max_pages=16), engine=engine())
    on_module = clang.link_library(guest, wasm)
    assert host.call(on_host, "run", seed, 24) == guest.call(on_module, "run", seed, 24)
    assert host.call(on_host, "live") == guest.call(on_module, "live") == len(host) == guest.region_count() == 12
    for info in host.list_regions():  # the regions the guest kept, as each deployment holds them
        theirs = guest.region_info(info.id)
        assert (info.generation, info.kind, info.capacity, info.used) == (
            theirs.generation, theirs.kind, theirs.capacity, theirs.used)
        assert host.metrics(info.id) == guest.metrics(info.id)
        assert bytes(host.view(info.id)) == bytes(guest.view(info.id))
