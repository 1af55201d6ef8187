"""Micro-benchmarks of the host-side data plane, side by side in one run.

Each row pairs a raw-ABI operation with its native counterpart in the same
guest, same store, same run: typed ``load_u32`` vs ``i32.load``, a 64 KiB
``read`` vs ``memory.copy``, bump and slab ``alloc`` per call, and spill and
fault-in of 64 KiB and 16 MiB regions through a file backing store.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..core.allocators import Slab
from ..core.file_backing import FileBackingStore
from ..core.types import RegionKind
from ..host.tvm_host import TvmHost
from ..runtime.wat import Func, Module, import_func, loop
from .timing import measure

KIB = 1024
MIB = 1024 * KIB
WINDOW = 64 * KIB  # bytes the load loops cycle through (stays in L2)
COPY = 64 * KIB


def guest_wat() -> str:
    """The benchmark guest: one loop per measured operation, each taking ``reps``."""
    m = Module()
    m.imports += [
        import_func("tvm", "load_u32", "load_u32", ["i64", "i32"], ["i32"]),
        import_func("tvm", "read", "read", ["i64", "i32", "i32"], ["i32"]),
        import_func("tvm", "alloc", "alloc", ["i32", "i32"], ["i64"]),
        import_func("tvm", "dealloc", "dealloc", ["i64"], ["i32"]),
    ]
    m.fields.append('(memory (export "memory") 4)')
    step = ["local.get $i", "i32.const 1", "i32.add", "local.tee $i", "local.get $reps", "i32.lt_u", "br_if $body"]
    offset = ["local.get $i", "i32.const 2", "i32.shl", f"i32.const {WINDOW - 1}", "i32.and"]

    def kernel(name: str, params: list[tuple[str, str]], body: list[str], result: str = "i32") -> Func:
        locals_ = [("i", "i32"), ("acc", result)] if result else [("i", "i32")]
        code = [*loop("body", [*body, *step])]
        if result:
            code.append("local.get $acc")
        return Func(name, [*params, ("reps", "i32")], [result] if result else [], locals_, code, export=name)

    accumulate = ["local.get $acc", "i32.add", "local.set $acc"]
    m.add(kernel("native_load", [], [*offset, "i32.load", *accumulate]))
    m.add(kernel("abi_load", [("h", "i64")], ["local.get $h", *offset, "call $load_u32", *accumulate]))
    m.add(kernel("native_copy", [], ["i32.const 0", f"i32.const {COPY}", f"i32.const {COPY}", "memory.copy"], result=""))
    m.add(kernel("abi_read", [("h", "i64")], ["local.get $h", "i32.const 0", f"i32.const {COPY}", "call $read", *accumulate]))
    m.add(kernel("bump_alloc", [("r", "i32")], ["local.get $r", "i32.const 16", "call $alloc", "i32.wrap_i64", *accumulate]))
    m.add(kernel("slab_alloc", [("r", "i32")], [
        "local.get $r", "i32.const 64", "call $alloc", "call $dealloc", *accumulate,
    ]))
    return m.render()


@dataclass(frozen=True)
class MicroRow:
    operation: str
    ns_per_op: float
    baseline: str
    baseline_ns: float

    @property
    def ratio(self) -> float:
        """Baseline time / this time: 1.0 is parity, below 1 is slower."""
        return self.baseline_ns / self.ns_per_op if self.ns_per_op else float("nan")


def run_micro(*, samples: int = 7, min_sample_s: float = 0.02, progress: Callable[[str], None] | None = None) -> list[MicroRow]:
    """Run every micro-benchmark; rows pair TVM operations with native ones."""
    note = progress or (lambda _: None)
    host = TvmHost()
    guest = host.instantiate(guest_wat())
    exports = guest.exports(host.store)

    def run(name: str, *args: int) -> Callable[[int], object]:
        func = exports[name]
        return lambda reps: func(host.store, *args, reps)  # type: ignore[operator]

    def timed(name: str, *args: int) -> float:
        note(name)
        return measure(run(name, *args), samples=samples, min_sample_s=min_sample_s).median_ns

    data = host.create_region(RegionKind.HOT_HEAP, 1 * MIB)
    handle = host.alloc(data, WINDOW + COPY)
    host.view(data)[:] = 7
    bump = host.create_region(RegionKind.OBJECT_ARENA, 0xFFFF_0000)
    slab = host.create_region(RegionKind.OBJECT_ARENA, 64 * KIB, allocator=Slab(64))

    rows = []
    native_load = timed("native_load")
    rows.append(MicroRow("load_u32 through the ABI", timed("abi_load", handle.to_i64()), "native i32.load", native_load))
    native_copy = timed("native_copy")
    rows.append(MicroRow("read 64 KiB through the ABI", timed("abi_read", handle.to_i64()), "memory.copy 64 KiB", native_copy))

    def bump_kernel(reps: int) -> object:
        host._region(bump).allocator.reset()  # type: ignore[attr-defined]
        return exports["bump_alloc"](host.store, bump, reps)  # type: ignore[operator]

    note("bump_alloc")
    bump_ns = measure(bump_kernel, samples=samples, min_sample_s=min_sample_s).median_ns
    rows.append(MicroRow("bump alloc (wasm, no host entry)", bump_ns, "native i32.load", native_load))
    rows.append(MicroRow("slab alloc + dealloc pair", timed("slab_alloc", slab), "native i32.load", native_load))
    assert host.python_entries == 0, "the data path entered Python"
    rows += spill_rows(samples=max(3, samples // 2), progress=note)
    return rows


def spill_rows(*, samples: int, progress: Callable[[str], None]) -> list[MicroRow]:
    """Spill and fault-in through a real file store; fault-in goes through the data plane."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="tvm-micro-") as root:
        host = TvmHost(backing=FileBackingStore(root))
        guest = host.instantiate(guest_wat())
        read = guest.exports(host.store)["abi_read"]
        for size in (64 * KIB, 16 * MIB):
            progress(f"spill {size}")
            region = host.create_region(RegionKind.BLOB_ARENA, size)
            handle = host.alloc(region, size)
            host.view(region)[:] = 0x5A
            spills, faults = [], []
            for _ in range(samples + 1):  # the first round is warm-up
                start = time.perf_counter_ns()
                host.spill_region(region)
                spills.append(time.perf_counter_ns() - start)
                start = time.perf_counter_ns()
                read(host.store, handle.to_i64(), 1)  # type: ignore[operator]  # one access faults it in
                faults.append(time.perf_counter_ns() - start)
            label = f"{size // KIB} KiB" if size < MIB else f"{size // MIB} MiB"
            copy_ns = _median(faults[1:])
            rows.append(MicroRow(f"spill {label} (file, fsync)", _median(spills[1:]), "-", 0.0))
            rows.append(MicroRow(f"fault-in {label} (data plane -> host)", copy_ns, "-", 0.0))
            host.destroy_region(region)
    return rows


def _median(values: list[int]) -> float:
    ordered = sorted(values)
    return float(ordered[len(ordered) // 2])
