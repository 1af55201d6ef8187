"""Acceptance tests for the raw ``tvm`` ABI as served by TvmHost to WAT guests.

Every function of the issue's ABI is called from inside wasm (a proxy guest
forwards each import), every reachable error code is provoked, and results
are checked against NumPy, the Python control plane, or the model.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import wasmtime

from host_guests import (
    RAW_ABI,
    TYPED,
    Guest,
    abi_imports,
    fnv1a,
    forwarders,
    instantiate,
    proxy_guest,
    raw_handle,
    typed_bytes,
    typed_value,
)
from tvm_wasm import (
    AllocationFailed,
    Freelist,
    GuestMemoryError,
    Handle,
    MemoryBackingStore,
    NotResident,
    OutOfBounds,
    RegionDirectory,
    RegionKind,
    RegionNotFound,
    Residency,
    Slab,
    StaleHandle,
    TvmError,
)
from tvm_wasm.host.pools import POOL_BYTES

ARENA = RegionKind.OBJECT_ARENA
GBUF = 4096  # guest scratch
IDX = 8192  # guest index array for read_gather
OUT = 12288  # guest output (histogram)


class FailingLoadStore(MemoryBackingStore):
    """Accepts spills; every load fails (the directory reports BackingStoreError, code 9)."""

    def load(self, region_id: int, generation: int) -> bytes:
        raise OSError("backing device went away")


# ---------------------------------------------------------------- signatures
def test_runtime_exports_exactly_the_issue_abi(make_host):
    host = make_host()
    exports = {e.name: e.type for e in host._modules.core.exports if isinstance(e.type, wasmtime.FuncType)}
    missing = set(RAW_ABI) - set(exports)
    assert not missing, f"runtime lacks {sorted(missing)}"
    for name, (params, results) in RAW_ABI.items():
        ftype = exports[name]
        assert [str(p) for p in ftype.params] == list(params), name
        assert [str(r) for r in ftype.results] == list(results), name


@pytest.mark.parametrize("memory", ["define", "import"])
def test_guest_linking_every_import(make_host, memory):
    host = make_host()
    guest = instantiate(host, memory=memory)
    assert guest.mem_size() == 2 * 65536


# ---------------------------------------------------------------- alloc / read / write
@pytest.mark.parametrize("memory", ["define", "import"])
def test_alloc_write_read_roundtrip(make_host, memory):
    host = make_host()
    g = instantiate(host, memory=memory)
    r = host.create_region(ARENA, 4096)
    h = g.alloc(r, 100)
    assert h == Handle(r, 1, 0)
    payload = bytes(np.random.default_rng(1).integers(0, 256, 100, dtype=np.uint8))
    g.put(GBUF, payload)
    assert g("write", h, GBUF, 100) == 0
    assert host.read(h, 100) == payload  # Python sees what wasm wrote
    assert bytes(host.view(r)[:100]) == payload
    assert g("read", h.with_offset(10), GBUF + 1000, 90) == 0
    assert g.get(GBUF + 1000, 90) == payload[10:]
    m = host.metrics(r)
    assert (m.allocations, m.bytes_allocated, m.bytes_written) == (1, 100, 100)
    assert m.bytes_read == 90 + 100  # the guest's read plus host.read
    assert host.python_entries == 0


def test_write_then_python_write_then_guest_read(make_host):
    host = make_host()
    g = instantiate(host)
    r = host.create_region(ARENA, 64)
    h = host.alloc(r, 64)
    host.write(h, b"\x5a" * 64)
    assert g("read", h, GBUF, 64) == 0
    assert g.get(GBUF, 64) == b"\x5a" * 64


def test_last_error_returns_and_clears(make_host):
    host = make_host()
    g = instantiate(host)
    r = host.create_region(ARENA, 16)
    assert g.last_error() == 0
    assert g("alloc", r, 17) == 0
    assert g.last_error() == AllocationFailed.code
    assert g.last_error() == 0


# ---------------------------------------------------------------- error matrix
class World:
    """A normal host (failing backing store) and a strict host, each with a proxy guest."""

    def __init__(self, make_host) -> None:
        self.host = make_host(backing=FailingLoadStore())
        self.g = instantiate(self.host)
        self.r = self.host.create_region(ARENA, 256)
        self.good_r = self.host.create_region(ARENA, 256)
        self.good = Handle(self.good_r, 1, 0)
        gone = self.host.create_region(ARENA, 256)
        self.gone = Handle(gone, 1, 0)
        self.host.destroy_region(gone)
        unreachable = self.host.create_region(ARENA, 256)
        self.broken = Handle(unreachable, 1, 0)
        self.host.spill_region(unreachable)  # spilled fine; loading it back fails -> 9

        self.strict = make_host(backing=MemoryBackingStore(), strict=True)
        self.sg = instantiate(self.strict)
        cold = self.strict.create_region(ARENA, 256)
        self.cold = Handle(cold, 1, 0)
        self.strict.spill_region(cold)
        self.s_good = Handle(self.strict.create_region(ARENA, 256), 1, 0)
        self.g.put(IDX, struct.pack("<I", 0))
        self.sg.put(IDX, struct.pack("<I", 0))


# name -> (call(guest, handle, n, good), convention, sentinel)
def _typed_callers():
    callers = {}
    for name, width, _ in TYPED:
        value = 1.5 if name.startswith("f") else 7
        callers[f"load_{name}"] = (lambda g, h, n, good, name=name: g(f"load_{name}", h, 0), "trap", None)
        callers[f"store_{name}"] = (
            lambda g, h, n, good, name=name, value=value: g(f"store_{name}", h, 0, value),
            "trap",
            None,
        )
    return callers


CALLERS = {
    "read": (lambda g, h, n, good: g("read", h, GBUF, n), "code", None),
    "write": (lambda g, h, n, good: g("write", h, GBUF, n), "code", None),
    "copy(src)": (lambda g, h, n, good: g("copy", h, good, n), "code", None),
    "copy(dst)": (lambda g, h, n, good: g("copy", good, h, n), "code", None),
    "read_gather": (lambda g, h, n, good: g("read_gather", h, IDX, 1, n, GBUF), "code", None),
    "fill": (lambda g, h, n, good: g("fill", h, n, 0x11), "code", None),
    "byte_histogram": (lambda g, h, n, good: g("byte_histogram", h, n, OUT), "code", None),
    "sum_u8": (lambda g, h, n, good: g("sum_u8", h, n), "sentinel", -1),
    "count_byte": (lambda g, h, n, good: g("count_byte", h, n, 0), "sentinel", -1),
    "find_byte": (lambda g, h, n, good: g("find_byte", h, n, 0), "sentinel", -2),
    "popcount": (lambda g, h, n, good: g("popcount", h, n), "sentinel", -1),
    "min_max_u8": (lambda g, h, n, good: g("min_max_u8", h, n), "sentinel", -1),
    "hash_fnv1a": (lambda g, h, n, good: g("hash_fnv1a", h, n, OUT), "code", None),
    "eq(a)": (lambda g, h, n, good: g("eq", h, good, n), "sentinel", -1),
    "eq(b)": (lambda g, h, n, good: g("eq", good, h, n), "sentinel", -1),
    **_typed_callers(),
}


def _length_for(caller: str) -> int:
    for name, width, _ in TYPED:
        if caller.endswith(f"_{name}"):
            return width
    return 16


# scenario -> (which host, handle builder(world, n), expected code)
SCENARIOS = {
    "unknown_region": ("normal", lambda w, n: raw_handle(777, 1, 0), RegionNotFound.code),
    "null_handle": ("normal", lambda w, n: 0, RegionNotFound.code),
    "destroyed_region": ("normal", lambda w, n: w.gone, StaleHandle.code),
    "wrong_generation": ("normal", lambda w, n: Handle(w.r, 2, 0), StaleHandle.code),
    "one_past_end": ("normal", lambda w, n: Handle(w.r, 1, 256 - n + 1), OutOfBounds.code),
    "offset_u32_max": ("normal", lambda w, n: Handle(w.r, 1, 0xFFFF_FFFF), OutOfBounds.code),
    "strict_cold": ("strict", lambda w, n: w.cold, NotResident.code),
    "backing_fails": ("normal", lambda w, n: w.broken, 9),
}


@pytest.fixture
def world(make_host):
    return World(make_host)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("caller", list(CALLERS))
def test_error_codes(world, caller, scenario):
    which, build, code = SCENARIOS[scenario]
    call, convention, sentinel = CALLERS[caller]
    host, g, good = (world.host, world.g, world.good) if which == "normal" else (world.strict, world.sg, world.s_good)
    n = _length_for(caller)
    handle = build(world, n)
    entries = host.python_entries
    before = g.get(0, g.mem_size())
    if convention == "trap":
        with pytest.raises(TvmError) as info:
            call(g, handle, n, good)
        assert info.value.code == code, repr(info.value)
        assert info.value.length == n, repr(info.value)  # the width accessed
        if code in (1, 2, 3, 4):
            assert type(info.value).__name__ == {1: "RegionNotFound", 2: "StaleHandle", 3: "OutOfBounds",
                                                  4: "NotResident"}[code]
    elif convention == "code":
        assert call(g, handle, n, good) == code
        assert g.last_error() == code
    else:
        assert call(g, handle, n, good) == sentinel
        assert g.last_error() == code
    assert g.last_error() == 0
    assert g.get(0, g.mem_size()) == before, "a failed call changed guest memory"
    # Only the failing backing store enters Python (one fault attempt), and a trap (once, to raise its error).
    assert host.python_entries == entries + (scenario == "backing_fails") + (convention == "trap")


def test_trap_code_does_not_leak_into_unrelated_traps(make_host):
    host = make_host()
    extra = '(func (export "boom") unreachable)'
    g = instantiate(host, proxy_guest(extra=extra))
    with pytest.raises(RegionNotFound):
        g("load_u8", raw_handle(5, 1, 0), 0)
    with pytest.raises(wasmtime.Trap):
        g("boom")
    # and the instance stays usable after a trap
    r = host.create_region(ARENA, 8)
    g("store_u8", Handle(r, 1, 7), 0, 9)
    assert host.view(r)[7] == 9


@pytest.mark.parametrize("scenario", ["unknown_region", "destroyed_region", "wrong_generation", "one_past_end"])
def test_dealloc_error_codes(world, scenario):
    _, build, code = SCENARIOS[scenario]
    handle = build(world, 0) if scenario != "one_past_end" else Handle(world.r, 1, 257)
    assert world.g("dealloc", handle) == code
    assert world.g.last_error() == code


def test_dealloc_of_cold_region_is_metadata_only(world):
    # Like the model: dealloc needs no bytes, so neither strict mode nor a broken store matters.
    assert world.sg("dealloc", world.cold) == 0
    assert world.g("dealloc", world.broken) == 0
    assert world.host.python_entries == 0
    assert world.strict.region_info(world.cold.region_id).residency is Residency.COLD


def test_copy_region_error_codes(world):
    g, r, good = world.g, world.r, world.good_r
    assert g("copy_region", r, 0, good, 0, 256) == 0
    assert g("copy_region", 777, 0, good, 0, 1) == RegionNotFound.code
    assert g("copy_region", r, 0, 777, 0, 1) == RegionNotFound.code
    assert g("copy_region", 0x1_0001, 0, good, 0, 1) == RegionNotFound.code
    assert g("copy_region", world.gone.region_id, 0, good, 0, 1) == RegionNotFound.code
    assert g.last_error() == RegionNotFound.code
    assert g("copy_region", r, 1, good, 0, 256) == OutOfBounds.code
    assert g("copy_region", r, 0, good, 1, 256) == OutOfBounds.code
    assert g("copy_region", r, 0xFFFF_FFFF, good, 0, 2) == OutOfBounds.code
    assert g("copy_region", r, 0, good, 0, 0xFFFF_FFFF) == OutOfBounds.code
    assert g("copy_region", r, 256, good, 256, 0) == 0
    assert g("copy_region", world.broken.region_id, 0, good, 0, 1) == 9
    assert world.sg("copy_region", world.cold.region_id, 0, world.s_good.region_id, 0, 1) == NotResident.code
    assert world.sg("copy_region", world.s_good.region_id, 0, world.cold.region_id, 0, 1) == NotResident.code
    assert g.last_error() == 9
    assert g.last_error() == 0


def test_alloc_error_codes(make_host):
    host = make_host(backing=MemoryBackingStore())
    g = instantiate(host)
    bump = host.create_region(ARENA, 100)
    slab = host.create_region(ARENA, 64, allocator=Slab(32))
    gone = host.create_region(ARENA, 100)
    host.destroy_region(gone)
    cases = [
        ((777, 1), RegionNotFound.code),
        ((0, 1), RegionNotFound.code),
        ((0x1_0000 + bump, 1), RegionNotFound.code),  # ids are 16 bits; no aliasing
        ((gone, 1), RegionNotFound.code),
        ((bump, 101), AllocationFailed.code),
        ((bump, 0xFFFF_FFFF), AllocationFailed.code),
        ((slab, 16), AllocationFailed.code),
    ]
    for (region, size), code in cases:
        assert g("alloc", region, size) == 0, (region, size)
        assert g.last_error() == code, (region, size)
    assert g.alloc(bump, 100) == Handle(bump, 1, 0)
    assert g("alloc", bump, 1) == 0 and g.last_error() == AllocationFailed.code
    assert g.alloc(bump, 0) == Handle(bump, 1, 100)  # zero bytes at the very end still fit
    assert g.alloc(slab, 32) is not None and g.alloc(slab, 32) is not None
    assert g("alloc", slab, 32) == 0 and g.last_error() == AllocationFailed.code
    assert host.python_entries == 0


def test_alloc_on_cold_region_is_metadata_only(make_host):
    host = make_host(backing=MemoryBackingStore(), strict=True)
    g = instantiate(host)
    r = host.create_region(ARENA, 100)
    host.spill_region(r)
    assert g.alloc(r, 10) == Handle(r, 1, 0)
    assert host.region_info(r).residency is Residency.COLD
    assert host.region_info(r).used == 10


# ---------------------------------------------------------------- guest memory (code 7)
@pytest.mark.parametrize("memory", ["define", "import"])
def test_guest_ranges_checked_against_current_size(make_host, memory):
    host = make_host()
    g = instantiate(host, memory=memory, pages=1, max_pages=4)
    r = host.create_region(ARENA, 4096)
    h = Handle(r, 1, 0)
    size = 65536
    assert g("read", h, size - 16, 16) == 0
    assert g("read", h, size - 15, 16) == GuestMemoryError.code
    assert g.last_error() == GuestMemoryError.code
    assert g("write", h, size - 15, 16) == GuestMemoryError.code
    assert g("read", h, 0xFFFF_FFFF, 2) == GuestMemoryError.code  # would wrap in 32 bits
    assert g("write", h, 0xFFFF_FFF0, 0x20) == GuestMemoryError.code
    assert g("read", h, size, 0) == 0  # empty range at the very end is fine
    assert g("read", h, size + 1, 0) == GuestMemoryError.code
    assert g("byte_histogram", h, 16, size - 1023) == GuestMemoryError.code
    assert g("byte_histogram", h, 16, size - 1024) == 0
    # gather: the index array and the destination are both guest ranges
    g.put(0, struct.pack("<I", 0))
    assert g("read_gather", h, size - 3, 1, 4, 0) == GuestMemoryError.code
    assert g("read_gather", h, 0, 1, 4, size - 3) == GuestMemoryError.code
    assert g("read_gather", h, 0, 0x4000_0001, 1, 0) == GuestMemoryError.code  # count * 4 overflows u32
    assert g("read_gather", h, 0, 2, 0x8000_0000, 0) == GuestMemoryError.code  # count * size overflows u32
    # growing the memory makes the same ranges valid (the check uses the current size)
    assert g("grow", 1) == 1
    host.write(h, bytes(range(16)))
    assert g("read", h, size - 15, 16) == 0
    assert g.get(size - 15, 16) == bytes(range(16))
    assert g("write", h.with_offset(100), size - 15, 16) == 0
    assert host.read(h.with_offset(100), 16) == bytes(range(16))


def test_guest_without_memory_can_use_typed_access_and_reducers(make_host):
    host = make_host()
    wat = f"(module\n {abi_imports(('load_u8', 'store_u8', 'sum_u8', 'read', 'last_error'))}\n" \
          f" {forwarders(('load_u8', 'store_u8', 'sum_u8', 'read', 'last_error'))})"
    g = Guest(host, host.instantiate(wat))
    r = host.create_region(ARENA, 8)
    g("store_u8", Handle(r, 1, 3), 0, 200)
    assert g("load_u8", Handle(r, 1, 0), 3) == 200
    assert g("sum_u8", Handle(r, 1, 0), 8) == 200
    assert g("read", Handle(r, 1, 0), 0, 1) == GuestMemoryError.code


# ---------------------------------------------------------------- typed access
@pytest.mark.parametrize("name,width,fmt", TYPED)
@pytest.mark.parametrize("capacity", [8, 13, 65536 + 5])
def test_typed_access_at_region_edges(make_host, name, width, fmt, capacity):
    host = make_host()
    g = instantiate(host)
    other = host.create_region(ARENA, 64)
    host.view(other)[:] = 0xEE
    r = host.create_region(ARENA, capacity)
    base = Handle(r, 1, 0)
    value = {"u8": 0xAB, "u16": 0xBEEF, "u32": 0xDEADBEEF, "i64": -0x123456789ABCDEF, "f32": -2.5, "f64": math.pi}[name]
    last = capacity - width
    g(f"store_{name}", base, last, value)  # last valid position: ok
    assert bytes(host.view(r)[last:]) == typed_bytes(name, value)
    got = g(f"load_{name}", base, last)
    assert (got & 0xFFFF_FFFF if name in ("u8", "u16", "u32") else got) == value
    # the same bytes through a handle whose own offset carries the position
    assert g(f"load_{name}", base.with_offset(last), 0) == got
    snapshot = host.view(r).copy()
    for handle, off in [
        (base, last + 1),  # one past
        (base.with_offset(last + 1), 0),
        (base.with_offset(last), 1),
        (base, 0xFFFF_FFFF),  # relative offset that would wrap in 32 bits
        (base.with_offset(0xFFFF_FFFF), 1),
        (base.with_offset(0xFFFF_FFFF), 0xFFFF_FFFF),
        (base.with_offset(1), 0xFFFF_FFFF),
    ]:
        with pytest.raises(OutOfBounds):
            g(f"load_{name}", handle, off)
        with pytest.raises(OutOfBounds):
            g(f"store_{name}", handle, off, value)
    assert np.array_equal(host.view(r), snapshot)
    assert (host.view(other) == 0xEE).all()
    m = host.metrics(r)
    assert (m.bytes_read, m.bytes_written) == (2 * width, width)


def test_typed_values_little_endian_and_signedness(make_host):
    host = make_host()
    g = instantiate(host)
    r = host.create_region(ARENA, 64)
    h = Handle(r, 1, 0)
    g("store_u32", h, 0, 0xFFFF_FFFF)
    assert g("load_u8", h, 0) == 0xFF and g("load_u16", h, 0) == 0xFFFF
    assert g("load_u32", h, 0) & 0xFFFF_FFFF == 0xFFFF_FFFF
    g("store_u8", h, 8, 0x1FF)  # stores the low byte only
    assert bytes(host.view(r)[8:10]) == b"\xff\x00"
    g("store_u16", h, 16, 0x12345)
    assert bytes(host.view(r)[16:19]) == b"\x45\x23\x00"
    g("store_i64", h, 24, -2)
    assert bytes(host.view(r)[24:32]) == b"\xfe" + b"\xff" * 7
    assert g("load_i64", h, 24) == -2
    host.view(r)[32:36] = np.frombuffer(struct.pack("<f", 1e30), dtype=np.uint8)
    assert g("load_f32", h, 32) == pytest.approx(1e30, rel=1e-6)
    g("store_f64", h, 40, float("inf"))
    assert g("load_f64", h, 40) == float("inf")
    rng = np.random.default_rng(7)
    raw = rng.integers(0, 256, 64, dtype=np.uint8)
    host.view(r)[:] = raw
    for name, width, fmt in TYPED:
        for off in range(0, 64 - width + 1, 3):
            expect = typed_value(name, bytes(raw[off : off + width]))
            got = g(f"load_{name}", h, off)
            if name in ("u8", "u16", "u32"):
                got &= 0xFFFF_FFFF
            if name.startswith("f") and math.isnan(expect):
                assert math.isnan(got)
            else:
                assert got == expect, (name, off)


# ---------------------------------------------------------------- stale handles
def test_stale_after_compaction_and_remap(make_host):
    host = make_host()
    g = instantiate(host)
    r = host.create_region(ARENA, 1024, allocator=Freelist())
    a, b, c = (g.alloc(r, 100) for _ in range(3))
    assert [x.offset for x in (a, b, c)] == [0, 100, 200]
    assert host.python_entries == 3  # Freelist allocs take the slow path, one entry each
    g.put(GBUF, b"C" * 100)
    assert g("write", c, GBUF, 100) == 0
    g("store_u32", a, 0, 0xA11CE)
    assert g("dealloc", b) == 0
    span = host._regions[r].storage
    remap = host.compact_region(r)
    assert (remap.old_generation, remap.new_generation) == (1, 2)
    assert remap.mapping == {0: 0, 200: 100}
    assert host.region_info(r).generation == 2
    for old in (a, c):
        assert g("read", old, GBUF, 4) == StaleHandle.code
        with pytest.raises(StaleHandle):
            g("load_u32", old, 0)
        assert g("sum_u8", old, 4) == -1 and g.last_error() == StaleHandle.code
        assert g("dealloc", old) == StaleHandle.code
    new_c = remap.migrate(c)
    assert new_c == Handle(r, 2, 100)
    assert g("read", new_c, GBUF + 200, 100) == 0
    assert g.get(GBUF + 200, 100) == b"C" * 100
    assert g("load_u32", remap.migrate(a), 0) == 0xA11CE
    assert bytes(host.view(r)[200:]) == bytes(824)  # tail zeroed by compaction
    # the blocks moved inside the region's own span of the pool
    assert host._regions[r].storage == span


def test_stale_after_destroy_even_when_id_space_recycles(make_host):
    host = make_host()
    g = instantiate(host)
    r = host.create_region(ARENA, 64)
    h = Handle(r, 1, 0)
    host.destroy_region(r)
    assert g("read", h, GBUF, 1) == StaleHandle.code
    with pytest.raises(StaleHandle):
        g("store_u8", h, 0, 1)
    assert g("copy_region", r, 0, r, 0, 1) == RegionNotFound.code
    assert g("alloc", r, 1) == 0 and g.last_error() == RegionNotFound.code


# ---------------------------------------------------------------- Cold regions
def _fault_calls():
    """name -> call(guest, handle, other handle) for every data-plane function that touches region bytes."""
    return {
        "read": lambda g, h, o: g("read", h, GBUF, 64),
        "write": lambda g, h, o: g("write", h, GBUF, 64),
        "load_u32": lambda g, h, o: g("load_u32", h, 4),
        "store_f64": lambda g, h, o: g("store_f64", h, 8, 2.0),
        "copy(src cold)": lambda g, h, o: g("copy", h, o, 64),
        "copy(dst cold)": lambda g, h, o: g("copy", o, h, 64),
        "copy_region": lambda g, h, o: g("copy_region", h.region_id, 0, o.region_id, 0, 64),
        "read_gather": lambda g, h, o: g("read_gather", h, IDX, 1, 8, GBUF),
        "byte_histogram": lambda g, h, o: g("byte_histogram", h, 64, OUT),
        "sum_u8": lambda g, h, o: g("sum_u8", h, 64),
        "count_byte": lambda g, h, o: g("count_byte", h, 64, 3),
        "find_byte": lambda g, h, o: g("find_byte", h, 64, 3),
        "popcount": lambda g, h, o: g("popcount", h, 64),
        "min_max_u8": lambda g, h, o: g("min_max_u8", h, 64),
        "hash_fnv1a": lambda g, h, o: g("hash_fnv1a", h, 64, OUT),
        "fill": lambda g, h, o: g("fill", h, 64, 1),
        "eq": lambda g, h, o: g("eq", h, o, 64),
    }


FAULT_CALLS = _fault_calls()


@pytest.mark.parametrize("name", list(FAULT_CALLS))
def test_cold_region_faults_in_once(make_host, name):
    host = make_host(backing=MemoryBackingStore())
    g = instantiate(host)
    r = host.create_region(ARENA, 128)
    o = host.create_region(ARENA, 128)
    data = bytes(range(64, 192))
    host.write(Handle(r, 1, 0), data)
    host.write(Handle(o, 1, 0), data)
    g.put(IDX, struct.pack("<I", 16))
    host.spill_region(r)
    assert host.region_info(r).residency is Residency.COLD
    assert host.view(o).any()
    entries, faults = host.python_entries, host.metrics(r).faults
    result = FAULT_CALLS[name](g, Handle(r, 1, 0), Handle(o, 1, 0))
    assert host.python_entries == entries + 1
    assert host.metrics(r).faults == faults + 1
    assert host.region_info(r).residency is Residency.HOT
    assert g.last_error() == 0
    # the call carried on and produced the same result as on a resident region
    host2 = make_host()
    g2 = instantiate(host2)
    r2 = host2.create_region(ARENA, 128)
    o2 = host2.create_region(ARENA, 128)
    host2.write(Handle(r2, 1, 0), data)
    host2.write(Handle(o2, 1, 0), data)
    g2.put(IDX, struct.pack("<I", 16))
    expected = FAULT_CALLS[name](g2, Handle(r2, 1, 0), Handle(o2, 1, 0))
    assert result == expected
    assert np.array_equal(host.view(r), host2.view(r2))
    assert np.array_equal(host.view(o), host2.view(o2))
    assert g.get(0, 65536) == g2.get(0, 65536)
    # a second access is pure wasm
    FAULT_CALLS[name](g, Handle(r, 1, 0), Handle(o, 1, 0))
    assert host.python_entries == entries + 1


def test_copy_between_two_cold_regions_faults_each_once(make_host):
    host = make_host(backing=MemoryBackingStore())
    g = instantiate(host)
    a = host.create_region(ARENA, 64)
    b = host.create_region(ARENA, 64)
    host.write(Handle(a, 1, 0), b"x" * 64)
    host.spill_region(a)
    host.spill_region(b)
    assert g("copy", Handle(a, 1, 0), Handle(b, 1, 0), 64) == 0
    assert host.python_entries == 2
    assert host.metrics(a).faults == 1 and host.metrics(b).faults == 1
    assert bytes(host.view(b)) == b"x" * 64


@pytest.mark.parametrize("name", list(FAULT_CALLS))
def test_strict_cold_region_reports_not_resident(make_host, name):
    host = make_host(backing=MemoryBackingStore(), strict=True)
    g = instantiate(host)
    r = host.create_region(ARENA, 128)
    o = host.create_region(ARENA, 128)
    host.spill_region(r)
    call = FAULT_CALLS[name]
    if name in ("load_u32", "store_f64"):
        with pytest.raises(NotResident):
            call(g, Handle(r, 1, 0), Handle(o, 1, 0))
        entries = 1  # the trap enters Python once, to raise NotResident
    else:
        entries = 0
        result = call(g, Handle(r, 1, 0), Handle(o, 1, 0))
        assert g.last_error() == NotResident.code
        sentinel = {"sum_u8": -1, "count_byte": -1, "find_byte": -2, "popcount": -1, "min_max_u8": -1,
                    "eq": -1}.get(name, NotResident.code)
        assert result == sentinel
    assert host.python_entries == entries
    assert host.metrics(r).faults == 0
    assert host.region_info(r).residency is Residency.COLD


def test_strictness_can_change_at_run_time(make_host):
    """Like the model's ``strict`` attribute: the data plane follows the current setting."""
    host = make_host(backing=MemoryBackingStore())
    g = instantiate(host)
    r = host.create_region(ARENA, 64)
    host.spill_region(r)
    host.strict = True
    assert g("read", Handle(r, 1, 0), GBUF, 4) == NotResident.code
    with pytest.raises(NotResident):
        host.read(Handle(r, 1, 0), 4)
    host.strict = False
    assert g("read", Handle(r, 1, 0), GBUF, 4) == 0
    assert host.python_entries == 1 and host.metrics(r).faults == 1


def test_warm_region_is_served_without_entries(make_host):
    host = make_host(backing=MemoryBackingStore())
    g = instantiate(host)
    r = host.create_region(RegionKind.PAGE_STORE, 64)  # starts Warm
    assert host.region_info(r).residency is Residency.WARM
    g("store_u32", Handle(r, 1, 0), 0, 77)
    assert g("load_u32", Handle(r, 1, 0), 0) == 77
    assert host.python_entries == 0
    assert host.region_info(r).residency is Residency.WARM


def test_external_region_reports_not_resident(make_host):
    host = make_host(backing=MemoryBackingStore())
    g = instantiate(host)
    r = host.create_region(ARENA, 64)
    host.mark_external(r)
    assert g("read", Handle(r, 1, 0), GBUF, 4) == NotResident.code
    with pytest.raises(NotResident):
        g("load_u8", Handle(r, 1, 0), 0)
    host.load_external(r, lambda rid, gen: b"ext!")
    assert g("load_u32", Handle(r, 1, 0), 0) == int.from_bytes(b"ext!", "little")


# ---------------------------------------------------------------- sharing between guests
def test_producer_consumer_share_regions(make_host):
    host = make_host(backing=MemoryBackingStore())
    producer = instantiate(host, memory="define")
    consumer = instantiate(host, memory="import")
    r = host.create_region(ARENA, 4096)
    h = producer.alloc(r, 256)
    producer.put(GBUF, bytes(range(256)))
    assert producer("write", h, GBUF, 256) == 0
    producer("store_i64", h, 8, -42)
    # the consumer sees the producer's bytes, reads them into its own memory
    assert consumer("load_i64", h, 8) == -42
    assert consumer("read", h, 100, 256) == 0
    expect = bytearray(range(256))
    expect[8:16] = struct.pack("<q", -42)
    assert consumer.get(100, 256) == bytes(expect)
    assert producer.get(100, 256) != bytes(expect)  # memories are separate
    # allocations from either guest come from the same bump pointer
    h2 = consumer.alloc(r, 16)
    assert h2 == Handle(r, 1, 256)
    assert producer.alloc(r, 16) == Handle(r, 1, 272)
    assert host.region_info(r).used == 288
    # a spill done by the host is seen by both; the first toucher faults it in once
    host.spill_region(r)
    assert consumer("sum_u8", h, 8) == sum(range(8))
    assert producer("sum_u8", h, 8) == sum(range(8))
    assert host.python_entries == 1
    # an error in one guest is reported to that guest's caller
    with pytest.raises(OutOfBounds):
        consumer("load_u8", h, 4096)
    assert producer("load_u8", h, 0) == 0


def test_consumer_calls_producer_export_directly(make_host):
    host = make_host()
    producer_wat = f"""(module
 {abi_imports(('alloc', 'store_u32', 'load_u32'))}
 (memory (export "memory") 1)
 (func (export "make") (param $r i32) (param $v i32) (result i64) (local $h i64)
   local.get $r i32.const 4 call $tvm_alloc local.tee $h
   i32.const 0 local.get $v call $tvm_store_u32
   local.get $h))"""
    producer = host.instantiate(producer_wat)
    host.linker.define_instance(host.store, "producer", producer)
    consumer_wat = f"""(module
 {abi_imports(('load_u32',))}
 (import "producer" "make" (func $make (param i32 i32) (result i64)))
 (memory (export "memory") 1)
 (func (export "roundtrip") (param $r i32) (param $v i32) (result i32)
   local.get $r local.get $v call $make i32.const 0 call $tvm_load_u32))"""
    consumer = host.instantiate(consumer_wat)
    r = host.create_region(ARENA, 64)
    assert host.call(consumer, "roundtrip", r, 0x1234) == 0x1234
    assert host.call(consumer, "roundtrip", r, 0x5678) == 0x5678
    assert host.read(Handle(r, 1, 4), 4) == struct.pack("<I", 0x5678)
    assert host.python_entries == 0


# ---------------------------------------------------------------- allocators from wasm vs Python
@pytest.mark.parametrize("allocator", ["bump", "slab", "freelist"])
def test_wasm_and_python_allocations_agree_with_model(make_host, allocator):
    host = make_host()
    g = instantiate(host)
    model = RegionDirectory()
    make = {"bump": lambda: None, "slab": lambda: Slab(48), "freelist": lambda: Freelist()}[allocator]
    r = host.create_region(ARENA, 48 * 20 + 7, allocator=make())
    m = model.create_region(ARENA, 48 * 20 + 7, allocator=make())
    assert r == m
    rng = np.random.default_rng(3)
    live: list[Handle] = []
    entries = 0
    for step in range(120):
        from_wasm = bool(rng.integers(2))
        if live and rng.random() < 0.4:
            victim = live.pop(int(rng.integers(len(live))))
            if from_wasm:
                code = g("dealloc", victim)
                entries += allocator == "freelist"
            else:
                try:
                    host.dealloc(victim)
                    code = 0
                except TvmError as exc:
                    code = exc.code
            model.dealloc(victim)
            assert code == 0
            continue
        size = 48 if allocator == "slab" else int(rng.integers(1, 120))
        try:
            expect = model.alloc(m, size)
        except AllocationFailed:
            expect = None
        if from_wasm:
            got = g.alloc(r, size)
            entries += allocator == "freelist"
            if got is None:
                assert g.last_error() == AllocationFailed.code
        else:
            try:
                got = host.alloc(r, size)
            except AllocationFailed:
                got = None
        assert got == expect, step
        if got is not None:
            live.append(got)
        assert host.region_info(r).used == model.region_info(m).used
        assert host.metrics(r) == model.metrics(m)
    assert host.python_entries == entries
    if allocator == "slab":
        # double free and misaligned frees are caught in wasm, like the model's OutOfBounds
        h = g.alloc(r, 48)
        assert g("dealloc", h) == 0
        assert g("dealloc", h) == OutOfBounds.code
        assert g("dealloc", h.with_offset(h.offset + 1)) == OutOfBounds.code
        assert g("dealloc", h.with_offset(48 * 20)) == OutOfBounds.code
    if allocator == "freelist":
        h = g.alloc(r, 1)
        if h is not None:
            assert g("dealloc", h) == 0
            assert g("dealloc", h) == OutOfBounds.code  # through the slow path
        assert g("alloc", r, 0) == 0 and g.last_error() == AllocationFailed.code


def test_slab_side_table_reused_after_destroy(make_host):
    host = make_host()
    g = instantiate(host)
    for _ in range(3):
        r = host.create_region(ARENA, 64 * 4, allocator=Slab(64))
        got = [g.alloc(r, 64) for _ in range(5)]
        assert [h.offset if h else None for h in got] == [0, 64, 128, 192, None]
        assert g("dealloc", got[1]) == 0
        assert g.alloc(r, 64) == got[1]  # LIFO like the model's Slab
        host.destroy_region(r)


# ---------------------------------------------------------------- reducers
def _region_with(host, data: np.ndarray) -> Handle:
    r = host.create_region(ARENA, len(data))
    host.view(r)[:] = data
    return Handle(r, 1, 0)


@pytest.mark.parametrize("seed", range(4))
def test_reducers_match_numpy(make_host, seed):
    host = make_host()
    g = instantiate(host)
    rng = np.random.default_rng(seed)
    size = 3000
    data = rng.integers(0, 256, size, dtype=np.uint8)
    if seed == 1:
        data = rng.integers(0, 4, size, dtype=np.uint8)  # many repeats of few bytes
    if seed == 2:
        data[:] = 0xFF
    h = _region_with(host, data)
    twin = _region_with(host, data)
    spans = [(0, size), (0, 0), (size, 0), (1, 15), (3, 16), (5, 17), (7, 33), (0, 1), (size - 1, 1)]
    for _ in range(12):
        lo, hi = sorted(int(v) for v in rng.integers(0, size + 1, 2))
        spans.append((lo, hi - lo))
    for start, n in spans:
        span = data[start : start + n]
        hh = h.with_offset(start)
        byte = int(span[len(span) // 2]) if n else 7
        assert g("sum_u8", hh, n) == int(span.sum(dtype=np.uint64))
        assert g("popcount", hh, n) == int(np.unpackbits(span).sum())
        assert g("count_byte", hh, n, byte) == int((span == byte).sum())
        hits = np.flatnonzero(span == byte)
        assert g("find_byte", hh, n, byte) == (int(hits[0]) if len(hits) else -1)
        absent = next((b for b in range(256) if not (span == b).any()), None)
        if absent is not None:
            assert g("find_byte", hh, n, absent) == -1
        mm = g("min_max_u8", hh, n) & 0xFFFF_FFFF
        assert mm == ((int(span.min()) << 8) | int(span.max()) if n else 0xFF00)
        assert g.fnv1a(hh, n) == fnv1a(span.tobytes())
        assert g("byte_histogram", hh, n, OUT) == 0
        hist = np.frombuffer(g.get(OUT, 1024), dtype="<u4")
        assert np.array_equal(hist, np.bincount(span, minlength=256))
        assert g("eq", hh, twin.with_offset(start), n) == 1
        if n:
            flip = int(rng.integers(n))
            host.view(twin.region_id)[start + flip] ^= 0x40
            assert g("eq", hh, twin.with_offset(start), n) == 0
            host.view(twin.region_id)[start + flip] ^= 0x40
        assert g.last_error() == 0
    # the boundary byte values
    assert g("count_byte", h, size, 0) == int((data == 0).sum())
    assert g("count_byte", h, size, 255) == int((data == 255).sum())
    # fill, then the region reads back as the byte, neighbours untouched
    assert g("fill", h.with_offset(10), 100, 0xA5) == 0
    expect = data.copy()
    expect[10:110] = 0xA5
    assert np.array_equal(host.view(h.region_id), expect)
    assert np.array_equal(host.view(twin.region_id), data)
    # eq across regions of different lengths and overlapping spans of one region
    assert g("eq", h.with_offset(10), h.with_offset(11), 99) == 1
    assert g("eq", h, h, size) == 1


def test_reducer_error_conventions_for_out_of_bounds_length(make_host):
    host = make_host()
    g = instantiate(host)
    h = _region_with(host, np.arange(100, dtype=np.uint8))
    for name, args, sentinel in [
        ("sum_u8", (h, 101), -1), ("popcount", (h, 101), -1), ("count_byte", (h, 101, 1), -1),
        ("find_byte", (h, 101, 1), -2), ("min_max_u8", (h, 101), -1), ("hash_fnv1a", (h, 101, OUT), OutOfBounds.code),
        ("eq", (h, h.with_offset(1), 100), -1), ("fill", (h, 101, 1), OutOfBounds.code),
        ("byte_histogram", (h, 101, OUT), OutOfBounds.code), ("sum_u8", (h, 0xFFFF_FFFF), -1),
        ("fill", (h.with_offset(1), 0xFFFF_FFFF, 0), OutOfBounds.code),
    ]:
        assert g(name, *args) == sentinel, name
        assert g.last_error() == OutOfBounds.code, name
    assert np.array_equal(host.view(h.region_id), np.arange(100, dtype=np.uint8))


def test_read_gather_matches_numpy(make_host):
    host = make_host()
    g = instantiate(host)
    rng = np.random.default_rng(11)
    data = rng.integers(0, 256, 5000, dtype=np.uint8)
    h = _region_with(host, data)
    for item_size, count, base in [(1, 50, 0), (4, 100, 17), (7, 33, 100), (16, 10, 4000), (0, 5, 0), (3, 0, 0)]:
        hh = h.with_offset(base)
        left = 5000 - base
        idx = rng.integers(0, max(1, left - item_size + 1), count).astype("<u4")
        if count:
            idx[-1] = left - item_size  # the last valid item
        g.put(IDX, idx.tobytes())
        before = g.get(GBUF, 4096)
        assert g("read_gather", hh, IDX, count, item_size, GBUF) == 0
        expect = b"".join(data[base + i : base + i + item_size].tobytes() for i in idx)
        assert g.get(GBUF, len(expect)) == expect
        assert g.get(GBUF + len(expect), 4096 - len(expect)) == before[len(expect):]
        if count:
            # one index one past the valid range: code 3 and no partial write
            idx[count // 2] = left - item_size + 1
            g.put(IDX, idx.tobytes())
            g.put(GBUF, bytes(4096))
            assert g("read_gather", hh, IDX, count, item_size, GBUF) == OutOfBounds.code
            assert g.get(GBUF, 4096) == bytes(4096)
    # a huge index does not wrap around
    g.put(IDX, struct.pack("<I", 0xFFFF_FFFF))
    assert g("read_gather", h.with_offset(10), IDX, 1, 2, GBUF) == OutOfBounds.code
    assert host.metrics(h.region_id).bytes_read == 50 + 400 + 231 + 160


# ---------------------------------------------------------------- every pool's code path
def test_all_pools_dispatch(make_host):
    """Fill pools 0..2 with one untouched 4 GiB region each, so regions land in every pool."""
    host = make_host(pools=4)
    g = instantiate(host)
    fillers = [host.create_region(ARENA, 0xFFFF_FFFF) for _ in range(3)]
    pools_used = [host._regions[f].storage.pool for f in fillers]
    assert pools_used == [0, 1, 2]
    regions = {}
    # pools 0..2 are full, so a small region lands in pool 3
    small = host.create_region(ARENA, 256)
    assert host._regions[small].storage.pool == 3
    regions[3] = Handle(small, 1, 0)
    for k, f in enumerate(fillers):
        regions[k] = Handle(f, 1, 0xFFFF_FFFF - 256)  # the last 256 bytes of each filler
    rng = np.random.default_rng(5)
    for k, h in regions.items():
        data = rng.integers(0, 256, 256, dtype=np.uint8).tobytes()
        g.put(GBUF, data)
        assert g("write", h, GBUF, 256) == 0
        assert g("read", h, GBUF + 1024, 256) == 0 and g.get(GBUF + 1024, 256) == data
        assert g("sum_u8", h, 256) == sum(data)
        assert g.fnv1a(h, 256) == fnv1a(data)
        g("store_u16", h, 254, 0xBEEF)
        assert g("load_u16", h, 254) == 0xBEEF
        with pytest.raises(OutOfBounds):
            g("load_u16", h, 255)
        assert g("byte_histogram", h, 256, OUT) == 0
        assert np.frombuffer(g.get(OUT, 1024), "<u4").sum() == 256
    for a in regions:
        for b in regions:
            if a != b:
                assert g("copy", regions[a], regions[b], 128) == 0
                assert g("eq", regions[a], regions[b], 128) == 1
                ra, rb = regions[a].region_id, regions[b].region_id
                assert g("copy_region", ra, regions[a].offset + 128, rb, regions[b].offset + 128, 128) == 0
                assert g("eq", regions[a], regions[b], 256) == 1
    assert host.python_entries == len(regions)  # only the traps entered Python, once each, to raise
    # the big fillers' first and last bytes
    for f in fillers:
        g("store_u8", Handle(f, 1, 0), 0, 1)
        g("store_u8", Handle(f, 1, 0), 0xFFFF_FFFE, 2)
        with pytest.raises(OutOfBounds):
            g("store_u8", Handle(f, 1, 0), 0xFFFF_FFFF, 3)
        assert g("load_u8", Handle(f, 1, 0xFFFF_FFFE), 0) == 2
    assert POOL_BYTES == 1 << 32


# ---------------------------------------------------------------- region ids with the top bit set
def test_region_ids_above_32767_pack_to_negative_i64(make_host):
    """Handles of regions >= 0x8000 are negative i64s; every path must treat them as unsigned."""
    host = make_host(backing=MemoryBackingStore())
    g = instantiate(host)
    host._next_fresh_id = 0xFFF0  # skip ahead in the id space (ids are only names)
    bump = host.create_region(ARENA, 256)
    free = host.create_region(ARENA, 256, allocator=Freelist())
    slab = host.create_region(ARENA, 256, allocator=Slab(16))
    assert min(bump, free, slab) >= 0x8000
    for r in (bump, free, slab):
        size = 16
        h = g.alloc(r, size)
        assert h is not None and h.region_id == r, (r, g.last_error())
        assert h.to_i64() < 0
        g("store_u32", h, 0, r)
        assert g("load_u32", h, 0) == r
        g.put(GBUF, b"q" * size)
        assert g("write", h, GBUF, size) == 0 and g("read", h, GBUF + 64, size) == 0
        assert g("sum_u8", h, size) == ord("q") * size
        assert g("dealloc", h) == 0
    host.spill_region(bump)
    assert g("load_u8", Handle(bump, 1, 0), 0) == ord("q")  # fault path with a high id
    assert g("copy_region", bump, 0, slab, 32, 16) == 0
    assert host.python_entries == 1 + 2  # the fault, Freelist alloc and dealloc
    assert g("alloc", free, 0xFFFF_FFFF) == 0 and g.last_error() == AllocationFailed.code


def test_trap_raised_in_another_instances_runtime(make_host):
    """A consumer calls a producer export whose typed access traps: the caller still gets the
    TvmError, and the producer's runtime is not left with a stale trap code."""
    host = make_host()
    producer_wat = f"""(module
 {abi_imports(('load_u8',))}
 (memory (export "memory") 1)
 (func (export "peek") (param $h i64) (param $off i32) (result i32)
   local.get $h local.get $off call $tvm_load_u8)
 (func (export "boom") unreachable))"""
    producer = host.instantiate(producer_wat)
    host.linker.define_instance(host.store, "producer", producer)
    consumer = host.instantiate("""(module
 (import "producer" "peek" (func $peek (param i64 i32) (result i32)))
 (func (export "peek") (param i64 i32) (result i32) local.get 0 local.get 1 call $peek))""")
    r = host.create_region(ARENA, 4)
    h = Handle(r, 1, 0).to_i64()
    assert host.call(consumer, "peek", h, 3) == 0
    with pytest.raises(OutOfBounds):
        host.call(consumer, "peek", h, 4)
    with pytest.raises(wasmtime.Trap) as info:
        host.call(producer, "boom")
    assert not isinstance(info.value, TvmError)


@pytest.mark.parametrize("name,kind", [("meta", "memory"), ("pool0", "memory"), ("pool3", "memory"),
                                       ("fault", "func"), ("alloc", "func")])
def test_guests_cannot_import_the_runtimes_private_items(make_host, name, kind):
    """The pools, the directory table and the slow paths are the runtime's alone: a guest
    importing them could read, write or forge anything without a handle check."""
    host = make_host()
    decl = "(memory 0)" if kind == "memory" else "(func (param i32) (result i32))"
    if name == "alloc":
        decl = "(func (param i32 i32) (result i64))"
    wat = f'(module (import "tvm_host" "{name}" {decl}) (memory (export "memory") 1))'
    with pytest.raises(Exception, match="unknown import|incompatible import|import"):
        host.instantiate(wat)
    instantiate(host)  # ordinary guests still link
