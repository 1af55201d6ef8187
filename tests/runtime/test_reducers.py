"""Reducer kernels against NumPy / pure-Python references, and the exported reducers end to end.

Each kernel is compiled alone into a tiny module whose memories carry the pool
names the kernel loads from, so a wrong memory index, an over-read past
``$len`` or an accumulator that overflows on long inputs shows up directly.
Both the SIMD kernel and its scalar twin (``simd=False``) are checked.
The exported functions are then run through the real runtime module with a
hand-written directory slot, to pin handle validation, counters and sentinels.

``python tests/runtime/test_reducers.py`` prints SIMD vs scalar throughput.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from tvm_wasm.runtime import layout as L
from tvm_wasm.runtime import reducers as R
from tvm_wasm.runtime.access import RESOLVE_LOCALS
from tvm_wasm.runtime.bridge_module import BRIDGE_EXPORTS, build_bridge_wat
from tvm_wasm.runtime.core_module import build_core_wat
from tvm_wasm.runtime.slow_paths import host_control_functions
from tvm_wasm.runtime.wat import Func, Module

ENGINE = wasmtime.Engine()  # default Config: SIMD and multi-memory are on in wasmtime 50
MEM_A, MEM_B = "$p2", "$p5"  # deliberately not $p0, so a kernel ignoring its memory name fails
PAGES = 20  # 1 MiB cases plus unaligned starts and guard bytes
MIB = 1 << 20
MASK64 = (1 << 64) - 1
GUEST_OUT = 4096  # where hash_fnv1a's out-pointer points in the test's guest memory


# ---------------------------------------------------------------- references
def fnv1a(data: bytes) -> int:
    h = R.FNV_OFFSET_BASIS
    for b in data:
        h = ((h ^ b) * R.FNV_PRIME) & MASK64
    return h


def find(data: bytes, byte: int) -> int:
    return data.find(bytes([byte]))


def min_max(data: bytes) -> int:
    if not data:
        return 0xFF00
    arr = np.frombuffer(data, np.uint8)
    return (int(arr.min()) << 8) | int(arr.max())


REFERENCE: dict[str, Callable[[bytes, int], int]] = {
    "sum_u8": lambda d, _: int(np.frombuffer(d, np.uint8).sum(dtype=np.uint64)),
    "count_byte": lambda d, b: d.count(bytes([b])),
    "find_byte": find,
    "popcount": lambda d, _: int(np.unpackbits(np.frombuffer(d, np.uint8)).sum(dtype=np.uint64)),
    "min_max_u8": lambda d, _: min_max(d),
    "hash_fnv1a": lambda d, _: fnv1a(d),
}


# ---------------------------------------------------------------- harness
@dataclass
class Harness:
    """One kernel in its own instance: ``run`` is the kernel, memories by pool name as NumPy views."""

    store: wasmtime.Store
    func: wasmtime.Func
    memory: dict[str, np.ndarray]

    def run(self, *args: int) -> int:
        return self.func(self.store, *args)


def kernel_module(kernel: R.Kernel, memories: tuple[str, ...], pages: int) -> str:
    module = Module()
    module.fields += [f'(memory {name} (export "{name[1:]}") {pages})' for name in memories]
    results = [kernel.result] if kernel.result else []
    module.add(Func("run", kernel.inputs, results, kernel.locals, kernel.code, export="run"))
    return module.render()


@functools.cache
def harness(name: str, simd: bool = True, pages: int = PAGES) -> Harness:
    memories = (MEM_A, MEM_B) if name == "eq" else (MEM_A,)
    kernel = R.eq(MEM_A, MEM_B, simd) if name == "eq" else R.SPAN_KERNELS[name](MEM_A, simd)
    store = wasmtime.Store(ENGINE)
    instance = wasmtime.Instance(store, wasmtime.Module(ENGINE, kernel_module(kernel, memories, pages)), [])
    exports = instance.exports(store)
    views = {m: np.frombuffer(exports[m[1:]].get_buffer_ptr(store), np.uint8) for m in memories}
    return Harness(store, exports["run"], views)


def place(view: np.ndarray, start: int, data: bytes, poison: int) -> None:
    """Write ``data`` at ``start`` with guard bytes around it that a kernel must not read."""
    guard = np.resize(np.array([0x00, 0xFF, poison & 0xFF], np.uint8), 48)
    end = start + len(data)
    view[max(0, start - 32) : start] = guard[: start - max(0, start - 32)]
    view[start:end] = np.frombuffer(data, np.uint8)
    view[end : end + 48] = guard[: len(view[end : end + 48])]


def run_span(name: str, data: bytes, start: int, byte: int = 0, simd: bool = True, pages: int = PAGES) -> int:
    h = harness(name, simd, pages)
    place(h.memory[MEM_A], start, data, byte)
    args = (start, len(data), byte) if name in ("count_byte", "find_byte") else (start, len(data))
    result = h.run(*args)
    return result & MASK64 if name in ("sum_u8", "popcount", "hash_fnv1a") else result


# ---------------------------------------------------------------- strategies
SPECIAL = [0x00, 0x01, 0x7F, 0x80, 0xAB, 0xFE, 0xFF]
payloads = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(SPECIAL), max_size=300).map(bytes),  # dense in matches and extremes
)
needles = st.one_of(st.sampled_from(SPECIAL), st.integers(0, 255), st.integers(256, 2**31 - 1))
starts = st.integers(0, 77)
SIMD = pytest.mark.parametrize("simd", [True, False], ids=["simd", "scalar"])


# ---------------------------------------------------------------- kernels alone
def test_default_config_has_simd_and_multi_memory() -> None:
    wat = '(module (memory $x 1) (memory $y 1) (func (result i32) i32.const 0 v128.load $y i8x16.bitmask))'
    wasmtime.Module(wasmtime.Engine(), wat)


@SIMD
@pytest.mark.parametrize("name", sorted(REFERENCE))
@settings(max_examples=100, deadline=None)
@given(data=payloads, start=starts, byte=needles)
def test_kernel_matches_reference(name: str, simd: bool, data: bytes, start: int, byte: int) -> None:
    assert run_span(name, data, start, byte, simd) == REFERENCE[name](data, byte & 0xFF)


@SIMD
@pytest.mark.parametrize("name", sorted(set(REFERENCE) - {"hash_fnv1a"}))
@pytest.mark.parametrize("byte", [0xFF, 0x00])
def test_one_mib_of_one_value(name: str, simd: bool, byte: int) -> None:
    """1 MiB of 0xFF overflows any u8/u16/i32-lane accumulator that is not flushed."""
    data = bytes([byte]) * MIB
    assert run_span(name, data, 3, byte, simd) == REFERENCE[name](data, byte)


def test_sum_beyond_u32() -> None:
    """17 MiB of 0xFF sums past 2**32: the i64 lanes, not just the u16 flush, must carry it."""
    data = b"\xff" * (17 * MIB)
    expected = 255 * len(data)
    assert expected > 2**32
    assert run_span("sum_u8", data, 1, pages=280) == expected
    assert run_span("popcount", data, 1, pages=280) == 8 * len(data)


@SIMD
def test_find_byte_at_every_lane_and_the_tail(simd: bool) -> None:
    for length in (15, 16, 17, 47, 64, 4099):
        for at in {0, 1, 14, 15, 16, length // 2, length - 2, length - 1} - {-1}:
            if 0 <= at < length:
                data = bytearray(length)
                data[at] = 0xAB
                assert run_span("find_byte", bytes(data), 5, 0xAB, simd) == at, (length, at)


@SIMD
def test_min_max_extremes_in_every_lane(simd: bool) -> None:
    """A lone extreme in any of the 16 lanes (or the tail) must survive the horizontal fold."""
    for at in range(40):
        data = bytearray([0x80]) * 40
        data[at], data[(at + 7) % 40] = 0x03, 0xF0
        assert run_span("min_max_u8", bytes(data), 2, simd=simd) == 0x03F0, at


def test_find_byte_last_byte_of_a_mib() -> None:
    data = bytes(MIB - 1) + b"\x42"
    assert run_span("find_byte", data, 9, 0x42) == MIB - 1
    assert run_span("find_byte", data, 9, 0x43) == -1


def test_hash_fnv1a_known_vectors_and_64k() -> None:
    assert run_span("hash_fnv1a", b"", 0) == 0xCBF29CE484222325
    assert run_span("hash_fnv1a", b"a", 1) == 0xAF63DC4C8601EC8C
    assert run_span("hash_fnv1a", b"foobar", 2) == 0x85944171F73967E8
    data = bytes(range(256)) * 256
    assert run_span("hash_fnv1a", data, 7) == fnv1a(data)


@SIMD
@settings(max_examples=100, deadline=None)
@given(start=starts, length=st.integers(0, 300), byte=needles)
def test_fill_writes_exactly_the_span(simd: bool, start: int, length: int, byte: int) -> None:
    h = harness("fill", simd)
    view = h.memory[MEM_A]
    place(view, start, bytes(length), byte ^ 0x5A)
    before = view[: start + length + 64].copy()
    assert h.run(start, length, byte) is None
    expected = before.copy()
    expected[start : start + length] = byte & 0xFF
    assert np.array_equal(view[: start + length + 64], expected)


# ---------------------------------------------------------------- eq across two memories
def run_eq(a: bytes, b: bytes, start_a: int, start_b: int, simd: bool = True) -> int:
    h = harness("eq", simd)
    place(h.memory[MEM_A], start_a, a, 0x11)
    place(h.memory[MEM_B], start_b, b, 0x22)
    return h.run(start_a, len(a), start_b)


@SIMD
@settings(max_examples=200, deadline=None)
@given(data=payloads, start_a=starts, start_b=starts, flip=st.none() | st.tuples(st.integers(0, 299), st.integers(1, 255)))
def test_eq_matches_reference(simd: bool, data: bytes, start_a: int, start_b: int, flip: tuple[int, int] | None) -> None:
    other = bytearray(data)
    if flip is not None and data:
        other[flip[0] % len(data)] ^= flip[1]
    assert run_eq(data, bytes(other), start_a, start_b, simd) == int(data == bytes(other))


@SIMD
@pytest.mark.parametrize("at", [None, 0, 15, 16, MIB // 2, MIB - 1])
def test_eq_one_mib(simd: bool, at: int | None) -> None:
    a = bytes(range(256)) * (MIB // 256)
    b = bytearray(a)
    if at is not None:
        b[at] ^= 0x80
    assert run_eq(a, bytes(b), 1, 6, simd) == int(at is None)


def test_eq_same_memory_names_the_pool_twice() -> None:
    """``eq($p3, $p3)`` loads both sides from one memory (a region compared with itself or a neighbour)."""
    kernel = R.eq("$p3", "$p3")
    assert all("$p3" in instr for instr in kernel.code if "load" in instr)


# ---------------------------------------------------------------- kernel contract
ALL_KERNELS = [*(make(MEM_A, simd) for make in R.SPAN_KERNELS.values() for simd in (True, False)),
               R.eq(MEM_A, MEM_B), R.eq(MEM_A, MEM_B, simd=False)]


@pytest.mark.parametrize("kernel", ALL_KERNELS, ids=lambda k: k.name)
def test_kernels_leave_inputs_alone_and_own_prefixed_locals(kernel: R.Kernel) -> None:
    writes = {instr.split()[1] for instr in (i.strip() for i in kernel.code) if instr.startswith(("local.set", "local.tee"))}
    assert not writes & {f"${n}" for n, _ in kernel.inputs}
    assert all(name.startswith("k_") for name, _ in kernel.locals)
    assert not {n for n, _ in kernel.locals} & {n for n, _ in RESOLVE_LOCALS}


@pytest.mark.parametrize("name", ["sum_u8", "count_byte", "find_byte", "popcount", "min_max_u8"])
def test_simd_kernels_use_vectors_and_scalar_twins_do_not(name: str) -> None:
    assert any("v128.load" in i for i in R.SPAN_KERNELS[name](MEM_A).code)
    assert not any("v128.load" in i for i in R.SPAN_KERNELS[name](MEM_A, simd=False).code)


# ---------------------------------------------------------------- exported reducers in the runtime module
@pytest.mark.parametrize("pools", [1, 2, 5])
def test_core_module_with_reducers_compiles(pools: int) -> None:
    module = wasmtime.Module(ENGINE, build_core_wat(pools))
    exports = {e.name for e in module.exports}
    assert {*R.SPAN_KERNELS, "eq"} <= exports


@dataclass
class Runtime:
    """The core module over a directory written by hand: enough to drive the reducers."""

    store: wasmtime.Store
    exports: wasmtime.InstanceExports
    meta: np.ndarray
    pools: list[np.ndarray]
    faults: list[int]
    guest: np.ndarray | None = None

    def hash(self, h: int, n: int) -> int:
        """hash_fnv1a through its out-pointer (guest memory at GUEST_OUT); -code on failure."""
        code = self.call("hash_fnv1a", h, n, GUEST_OUT)
        assert self.guest is not None
        return -code if code else int(self.guest[GUEST_OUT : GUEST_OUT + 8].view(np.uint64)[0])

    def call(self, name: str, *args: int) -> int:
        return self.exports[name](self.store, *args)

    def slot(self, region: int, field: int, dtype: type = np.uint32) -> np.ndarray:
        at = L.slot_offset(region) + field
        return self.meta[at : at + np.dtype(dtype).itemsize].view(dtype)

    def region(self, region: int, pool: int, base: int, capacity: int, resident: bool = True, gen: int = 1) -> int:
        """Make a live region; returns a handle to its offset 0."""
        flags = L.FLAG_LIVE | (L.FLAG_RESIDENT if resident else 0)
        self.slot(region, L.SLOT_STATE)[0] = gen | flags
        self.slot(region, L.SLOT_POOL)[0] = pool
        self.slot(region, L.SLOT_BASE)[0] = base
        self.slot(region, L.SLOT_CAPACITY)[0] = capacity
        return (region << 48) | (gen << 32)

    def counter(self, region: int, field: int) -> int:
        return int(self.slot(region, field, np.uint64)[0])

    def last_error(self) -> int:
        return self.call("last_error")


POOLS = 3


@pytest.fixture(scope="module")
def core_module() -> wasmtime.Module:
    return wasmtime.Module(ENGINE, build_core_wat(POOLS))


@pytest.fixture
def rt(core_module: wasmtime.Module) -> Runtime:
    store = wasmtime.Store(ENGINE)
    meta = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(L.META_INITIAL_PAGES, None)))
    pools = [wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, L.WASM32_MAX_PAGES))) for _ in range(POOLS)]
    faults: list[int] = []
    meta_view = np.frombuffer(meta.get_buffer_ptr(store), np.uint8)

    def fault(region: int) -> int:  # the host's fault path: mark the region resident
        faults.append(region)
        at = L.slot_offset(region) + L.SLOT_STATE
        meta_view[at : at + 4].view(np.uint32)[0] |= L.FLAG_RESIDENT
        return 0

    i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
    host = {
        "meta": meta,
        **{f"pool{k}": pools[k] for k in range(POOLS)},
        "fault": wasmtime.Func(store, wasmtime.FuncType([i32], [i32]), fault),
        "alloc": wasmtime.Func(store, wasmtime.FuncType([i32, i32], [i64]), lambda r, s: -9),
        "dealloc": wasmtime.Func(store, wasmtime.FuncType([i64], [i32]), lambda h: 9),
    }
    host["trap"] = wasmtime.Func(store, wasmtime.FuncType([i32, i64, i32, i32, i32], []), lambda *cause: None)
    for entry in host_control_functions():  # the control plane is not under test here: every call fails
        kinds = {"i32": i32, "i64": i64}
        func_type = wasmtime.FuncType([kinds[t] for t in entry.wasm_params], [kinds[t] for t in entry.wasm_results])
        host[f"control_{entry.name}"] = wasmtime.Func(store, func_type, lambda *args, e=entry: e.sentinel or 9)
    imports = [host[imp.name] for imp in core_module.imports]
    instance = wasmtime.Instance(store, core_module, imports)
    # The bridge over a guest memory of one page at GUEST_OUT and beyond: where hash_fnv1a delivers.
    guest = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, None)))
    bridge = wasmtime.Instance(store, wasmtime.Module(ENGINE, build_bridge_wat(POOLS)), [*pools, guest])
    table = instance.exports(store)["bridge"]
    for slot, name in enumerate(BRIDGE_EXPORTS):
        table.set(store, slot, bridge.exports(store)[name])
    views = [np.frombuffer(p.get_buffer_ptr(store), np.uint8) for p in pools]
    runtime = Runtime(store, instance.exports(store), meta_view, views, faults)
    runtime.guest = np.frombuffer(guest.get_buffer_ptr(store), np.uint8)
    return runtime


DATA = bytes([3, 0, 0xFF, 7, 0x80, 7, 1]) * 37  # 259 bytes: chunks and a tail


def test_exported_reducers_read_the_regions_pool(rt: Runtime) -> None:
    h = rt.region(7, pool=2, base=1000, capacity=512)
    rt.pools[2][1005 : 1005 + len(DATA)] = np.frombuffer(DATA, np.uint8)
    h += 5  # handle to offset 5
    n = len(DATA)
    assert rt.call("sum_u8", h, n) == REFERENCE["sum_u8"](DATA, 0)
    assert rt.call("count_byte", h, n, 7) == DATA.count(7)
    assert rt.call("count_byte", h, n, 0x107) == DATA.count(7)  # only the low byte counts
    assert rt.call("find_byte", h, n, 0x80) == 4
    assert rt.call("find_byte", h, n, 0x42) == -1
    assert rt.call("popcount", h, n) == REFERENCE["popcount"](DATA, 0)
    assert rt.call("min_max_u8", h, n) == 0x00FF
    assert rt.hash(h, n) == fnv1a(DATA)
    assert rt.counter(7, L.SLOT_BYTES_READ) == 8 * n
    assert rt.call("fill", h + 1, 3, 0x5A) == 0
    assert bytes(rt.pools[2][1005:1010]) == bytes([3, 0x5A, 0x5A, 0x5A, 0x80])
    assert rt.counter(7, L.SLOT_BYTES_WRITTEN) == 3
    assert rt.last_error() == 0


@pytest.mark.parametrize(
    ("name", "extra", "sentinel"),
    [("sum_u8", (), -1), ("count_byte", (1,), -1), ("find_byte", (1,), -2), ("popcount", (), -1),
     ("min_max_u8", (), -1), ("hash_fnv1a", (GUEST_OUT,), 3), ("fill", (1,), 3)],
)
def test_exported_reducers_report_errors_by_convention(rt: Runtime, name: str, extra: tuple[int, ...], sentinel: int) -> None:
    h = rt.region(3, pool=0, base=0, capacity=64)
    assert rt.call(name, h + 60, 5, *extra) == sentinel  # one byte past the end
    assert rt.last_error() == 3
    stale = h + (1 << 32)  # generation 2, region is at 1
    codes = name in ("fill", "hash_fnv1a")  # these return the code itself
    assert rt.call(name, stale, 1, *extra) == (2 if codes else sentinel)
    assert rt.last_error() == 2
    assert rt.call(name, (9 << 48) | (1 << 32), 1, *extra) == (1 if codes else sentinel)  # never created
    assert rt.last_error() == 1
    if name == "hash_fnv1a":  # a delivered hash is counted; then make the region unreachable
        assert rt.hash(h, 4) == fnv1a(bytes(4))
    rt.slot(3, L.SLOT_POOL)[0] = L.NO_POOL  # a region this runtime has no memory for
    assert rt.call(name, h, 4, *extra) == (9 if codes else sentinel)
    assert rt.last_error() == 9
    if name == "hash_fnv1a":
        return
    counter = L.SLOT_BYTES_WRITTEN if name == "fill" else L.SLOT_BYTES_READ
    assert rt.counter(3, counter) == 4  # only the validated call that reached dispatch counted


def test_reducer_faults_a_cold_region_in(rt: Runtime) -> None:
    h = rt.region(4, pool=1, base=64, capacity=100, resident=False)
    rt.pools[1][64:164] = 2
    assert rt.call("sum_u8", h, 100) == 200
    assert rt.faults == [4]


@pytest.mark.parametrize(("pool_a", "pool_b"), [(0, 2), (2, 1), (1, 1)])
def test_exported_eq_across_pools(rt: Runtime, pool_a: int, pool_b: int) -> None:
    a = rt.region(10, pool=pool_a, base=16, capacity=400)
    b = rt.region(11, pool=pool_b, base=600, capacity=400)
    rt.pools[pool_a][16 + 3 : 16 + 3 + len(DATA)] = np.frombuffer(DATA, np.uint8)
    rt.pools[pool_b][600 + 9 : 600 + 9 + len(DATA)] = np.frombuffer(DATA, np.uint8)
    assert rt.call("eq", a + 3, b + 9, len(DATA)) == 1
    rt.pools[pool_b][600 + 9 + 200] ^= 1
    assert rt.call("eq", a + 3, b + 9, len(DATA)) == 0
    assert rt.call("eq", a + 3, b + 9, 200) == 1
    assert rt.counter(10, L.SLOT_BYTES_READ) == rt.counter(11, L.SLOT_BYTES_READ) == 2 * len(DATA) + 200


def test_exported_eq_errors(rt: Runtime) -> None:
    a = rt.region(10, pool=0, base=0, capacity=32)
    b = rt.region(11, pool=1, base=0, capacity=16, resident=False)
    assert rt.call("eq", a, b, 17) == -1 and rt.last_error() == 3  # b too short
    assert rt.call("eq", a + (5 << 32), b, 1) == -1 and rt.last_error() == 2  # a stale
    assert rt.call("eq", a, b, 16) == 1 and rt.faults == [11]  # b faulted in, both zero
    rt.slot(11, L.SLOT_POOL)[0] = L.NO_POOL
    assert rt.call("eq", a, b, 4) == -1 and rt.last_error() == 9


# ---------------------------------------------------------------- throughput (not a test)
def bench_module(kernel: R.Kernel) -> str:
    """``bench(addr, len, iters)`` runs the kernel ``iters`` times in-module, dropping results."""
    loop_body = [*kernel.code, *(["drop"] if kernel.result else []),
                 "local.get $iters", "i32.const 1", "i32.sub", "local.tee $iters", "br_if $again"]
    memories = (MEM_A, MEM_B) if kernel.name == "eq" else (MEM_A,)
    module = Module()
    module.fields += [f'(memory {m} (export "{m[1:]}") 8)' for m in memories]
    params = [*kernel.inputs, ("iters", "i32")]
    module.add(Func("bench", params, [], kernel.locals, ["loop $again", *loop_body, "end"], export="bench"))
    return module.render()


def throughput(kernel: R.Kernel, size: int = 256 << 10, budget: float = 0.25) -> float:
    """GB/s over ``size`` bytes of mixed data at an unaligned start."""
    store = wasmtime.Store(ENGINE)
    instance = wasmtime.Instance(store, wasmtime.Module(ENGINE, bench_module(kernel)), [])
    exports = instance.exports(store)
    bench = exports["bench"]
    data = np.random.default_rng(0).integers(2, 256, size + 16, dtype=np.uint8)  # never the needle 0x01
    for m in (MEM_A, MEM_B) if kernel.name == "eq" else (MEM_A,):
        np.frombuffer(exports[m[1:]].get_buffer_ptr(store), np.uint8)[: len(data)] = data  # eq runs to the end
    extra = {"byte": 0x01, "addr_b": 3}
    args = [3, size, *(extra[n] for n, _ in kernel.inputs[2:])]
    bench(store, *args, 1)
    iters, elapsed = 1, 0.0
    while elapsed < budget:
        iters *= 2
        start = time.perf_counter()
        bench(store, *args, iters)
        elapsed = time.perf_counter() - start
    return size * iters / elapsed / 1e9


def main() -> None:
    makers = {**R.SPAN_KERNELS, "eq": lambda mem, simd=True: R.eq(mem, MEM_B, simd)}
    print(f"{'kernel':<12} {'simd GB/s':>10} {'scalar GB/s':>12} {'speedup':>8}")
    for name, make in makers.items():
        fast, slow = throughput(make(MEM_A)), throughput(make(MEM_A, simd=False))
        print(f"{name:<12} {fast:>10.2f} {slow:>12.2f} {fast / slow:>7.1f}x")


if __name__ == "__main__":
    sys.exit(main())
