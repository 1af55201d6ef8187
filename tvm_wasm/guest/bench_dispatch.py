"""Measure what reaching "pool k chosen at run time" costs, and what SIMD reducers buy.

Run as ``python -m tvm_wasm.guest.bench_dispatch`` (``--help`` for options).
Three tables:

1. **Raw pool access** (no handles), in a module generated per pool count:
   a native load on the default memory, a load on a pool known when the code
   is generated (inline, and through a per-pool helper function), and a load
   on a pool chosen at run time through a balanced branch tree, a
   ``br_table`` or ``call_indirect`` over the per-pool helpers. Each
   iteration reads the pool index from a sequence in the default memory
   (every variant does, so they pay the same loop overhead): a *fixed*
   sequence (always the last pool) or a *random* one.
2. **Through the guest module's ABI**: ``load_u32(h, off)`` (full handle
   checks, then the runtime's branch tree on the region's pool) against
   ``load_u32_p{k}`` (same checks, no dispatch), called from user code
   spliced into the module and from a run-time-linked module, next to a
   native load; and ``load_u32`` on handles drawn at random from one
   region per pool (the ABI's dispatch then meets an unpredictable pool;
   the runtime switched from ``br_table`` to a branch tree after this
   measurement showed the tree 1.6-2.6x faster there).
3. **Reducers**: the SIMD kernels against their scalar loops over spans of
   64 KiB and 1 MiB.

Method (see ``tvm_wasm.bench.timing``): each sample is one call from Python
running the loop ``reps`` times inside wasm, ``reps`` calibrated so a call
lasts at least 20 ms (the ~20 us call overhead stays below 0.1%), warm-up
calls discarded, median of the samples reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import wasmtime

from ..bench.timing import calibrate
from ..cli_support import number
from ..core.handle import Handle
from ..core.types import RegionKind
from ..runtime import reducers as R
from ..runtime.wat import Code, Func, Module, dispatch, indent
from .instance import GuestInstance
from .module import GuestModule, build_module

SEQ = 4096  # pool-index sequence length (bytes at the start of the default memory)
SPAN = 0x7FFF  # addresses walk 32 KiB of each memory, 64 bytes apart
BASE = 8192


# ---------------------------------------------------------------- raw dispatch module
def bst(lo: int, hi: int) -> Code:
    """Balanced ``pool < mid`` tree over pools [lo, hi), each leaf a load (result i32 on the stack)."""
    if hi - lo == 1:
        return [f"(i32.load $p{lo} (local.get $addr))"]
    mid = (lo + hi) // 2
    return [
        f"(if (result i32) (i32.lt_u (local.get $pool) (i32.const {mid}))",
        "  (then", *indent(bst(lo, mid), 4), "  )",
        "  (else", *indent(bst(mid, hi), 4), "  ))",
    ]


def dispatch_funcs(pools: int) -> list[Func]:
    helpers = [Func(f"load_p{k}", [("addr", "i32")], ["i32"], [], [f"(i32.load $p{k} (local.get $addr))"])
               for k in range(pools)]
    tree = Func("load_bst", [("pool", "i32"), ("addr", "i32")], ["i32"], [], [
        f"(if (i32.ge_u (local.get $pool) (i32.const {pools})) (then unreachable))", *bst(0, pools)])
    arms = [[f"(return (i32.load $p{k} (local.get $addr)))"] for k in range(pools)]
    table = Func("load_brt", [("pool", "i32"), ("addr", "i32")], ["i32"], [],
                 dispatch(["(local.get $pool)"], arms, ["unreachable"]))
    return [*helpers, tree, table]


ACCESSES: dict[str, Callable[[int], str]] = {
    "native load (default memory)": lambda last: "(i32.load $g (local.get $addr))",
    "known pool, inline load": lambda last: f"(i32.load $p{last} (local.get $addr))",
    "known pool, per-pool helper": lambda last: f"(call $load_p{last} (local.get $addr))",
    "run-time pool: branch tree": lambda last: "(call $load_bst (local.get $pool) (local.get $addr))",
    "run-time pool: br_table": lambda last: "(call $load_brt (local.get $pool) (local.get $addr))",
    "run-time pool: call_indirect": lambda last: "(call_indirect $loads (type $load_t) (local.get $addr) (local.get $pool))",
}


def access_loop(name: str, access: str) -> Func:
    """``reps`` iterations: read the pool index, step the address, add the loaded word."""
    body = [
        "(block $done (loop $next",
        "  (br_if $done (i32.ge_u (local.get $i) (local.get $reps)))",
        f"  (local.set $pool (i32.load8_u $g (i32.and (local.get $i) (i32.const {SEQ - 1}))))",
        f"  (local.set $addr (i32.add (i32.const {BASE}) (i32.and (i32.shl (local.get $i) (i32.const 6)) (i32.const {SPAN}))))",
        f"  (local.set $acc (i32.add (local.get $acc) {access}))",
        "  (local.set $i (i32.add (local.get $i) (i32.const 1)))",
        "  (br $next)))",
        "(local.get $acc)",
    ]
    locals_ = [("i", "i32"), ("pool", "i32"), ("addr", "i32"), ("acc", "i32")]
    return Func(name, [("reps", "i32")], ["i32"], locals_, body, export=name)


def dispatch_module(pools: int) -> str:
    module = Module()
    module.fields.append("(memory $g 1)")
    module.fields += [f"(memory $p{k} 1)" for k in range(pools)]
    module.fields += [
        '(export "memory" (memory $g))',
        "(type $load_t (func (param i32) (result i32)))",
        f"(table $loads {pools} funcref)",
        f"(elem (table $loads) (i32.const 0) func {' '.join(f'$load_p{k}' for k in range(pools))})",
    ]
    for func in dispatch_funcs(pools):
        module.add(func)
    for n, access in enumerate(ACCESSES.values()):
        module.add(access_loop(f"k{n}", access(pools - 1)))
    return module.render()


Timed = Callable[[int], object]


def interleaved(kernels: dict[str, Timed], samples: int, min_sample_s: float = 0.02) -> dict[str, tuple[float, float]]:
    """(median, minimum) ns per repetition of each kernel, sampling them in turn.

    Round-robin sampling spreads any load spike on a shared machine over every
    variant instead of one, so the ratios between rows stay meaningful.
    """
    reps = {name: calibrate(kernel, min_sample_s=min_sample_s) for name, kernel in kernels.items()}
    for name, kernel in kernels.items():
        kernel(reps[name])  # warm-up, discarded
    times: dict[str, list[float]] = {name: [] for name in kernels}
    for _ in range(samples):
        for name, kernel in kernels.items():
            start = time.perf_counter_ns()
            kernel(reps[name])
            times[name].append((time.perf_counter_ns() - start) / reps[name])
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


@dataclass(frozen=True)
class Row:
    table: str
    pools: int | str
    name: str
    case: str
    ns: float
    baseline_ns: float
    min_ns: float = 0.0

    @property
    def ratio(self) -> float:
        return self.ns / self.baseline_ns if self.baseline_ns else float("nan")


def bench_raw_dispatch(engine: wasmtime.Engine, pools: int, samples: int) -> list[Row]:
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, wasmtime.wat2wasm(dispatch_module(pools))), [])
    exports = instance.exports(store)
    memory = exports["memory"]
    assert isinstance(memory, wasmtime.Memory)
    rng = random.Random(1234)
    sequences = {"fixed pool": bytes([pools - 1]) * SEQ, "random pool": bytes(rng.randrange(pools) for _ in range(SEQ))}
    rows = []
    for case, sequence in sequences.items():
        memory.write(store, sequence, 0)
        kernels = {name: (lambda reps, f=exports[f"k{n}"]: f(store, reps)) for n, name in enumerate(ACCESSES)}
        timings = interleaved(kernels, samples)  # type: ignore[arg-type]
        native = timings["native load (default memory)"][0]
        rows += [Row("raw", pools, name, case, med, native, low) for name, (med, low) in timings.items()]
    return rows


# ---------------------------------------------------------------- through the guest module's ABI
def abi_loop(name: str, call: str, handle_param: bool = True) -> str:
    """WAT of an exported loop of ``reps`` typed loads at offsets walking 32 KiB."""
    return f"""
(func (export "{name}") (param $reps i32) (param $h i64) (result i32) (local $i i32) (local $acc i32) (local $off i32)
  (block $done (loop $next
    (br_if $done (i32.ge_u (local.get $i) (local.get $reps)))
    (local.set $off (i32.and (i32.shl (local.get $i) (i32.const 6)) (i32.const {SPAN})))
    (local.set $acc (i32.add (local.get $acc) {call}))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $next)))
  (local.get $acc))"""


HANDLES = 16384  # u64 handles, one region per pool, in the default memory


def random_loop(name: str, access: str, memory: str) -> str:
    """Like ``abi_loop``, but each iteration takes the handle of a random pool's region from a table."""
    pick = (f"(local.set $h (i64.load {memory} offset={HANDLES} (i32.shl (i32.load8_u {memory}"
            f" (i32.and (local.get $i) (i32.const {SEQ - 1}))) (i32.const 3))))")
    return abi_loop(name, access).replace("(local.set $off", f"{pick}\n    (local.set $off")


def abi_kernels(pool: int, native: str) -> str:
    return "\n".join([
        abi_loop("generic", "(call $load_u32 (local.get $h) (local.get $off))"),
        abi_loop("specialised", f"(call $load_u32_p{pool} (local.get $h) (local.get $off))"),
        abi_loop("native", f"(i32.load {native} (local.get $off))"),
        random_loop("generic_random", "(call $load_u32 (local.get $h) (local.get $off))", native),
        random_loop("native_random", f"(i32.load {native} (local.get $off))", native),
    ])


def linked_user(pool: int) -> str:
    return f"""(module
  (import "tvm" "memory" (memory $m 1))
  (import "tvm" "load_u32" (func $load_u32 (param i64 i32) (result i32)))
  (import "tvm" "load_u32_p{pool}" (func $load_u32_p{pool} (param i64 i32) (result i32)))
  {abi_kernels(pool, "$m")})"""


def bench_abi(engine: wasmtime.Engine, pools: int, samples: int) -> list[Row]:
    return abi_rows(engine, pools, samples, build_module(pools=pools, max_pages=1, user_wat=abi_kernels(0, "$g")))


def abi_rows(engine: wasmtime.Engine, pools: int, samples: int, module: GuestModule) -> list[Row]:
    guest = GuestInstance(module, engine=engine)
    regions = [guest.create_region(RegionKind.OBJECT_ARENA, 65536) for _ in range(pools)]  # one per pool
    assert [guest.region_info(r).pool for r in regions] == list(range(pools))
    handles = [Handle(r, 1, 0).to_i64() for r in regions]
    handle = handles[0]
    rng = random.Random(99)
    guest.guest_memory.write(guest.store, bytes(rng.randrange(pools) for _ in range(SEQ)), 0)
    guest.guest_memory.write(guest.store, b"".join(h.to_bytes(8, "little", signed=True) for h in handles), HANDLES)
    linked = guest.link(linked_user(0))
    rows = []
    for where, exports in (("spliced into the module", guest.exports), ("run-time linked module", linked.exports(guest.store))):
        labels = {"native": "native load", "generic": "load_u32 (branch tree on the pool)",
                  "specialised": "load_u32_p0 (no dispatch)", "native_random": "native load, random handle",
                  "generic_random": "load_u32, random pool"}
        kernels = {label: (lambda reps, f=exports[name]: f(guest.store, reps, handle)) for name, label in labels.items()}
        timings = interleaved(kernels, samples)  # type: ignore[arg-type]
        for label, (med, low) in timings.items():
            native = timings["native load, random handle" if "random" in label else "native load"][0]
            rows.append(Row("abi", pools, label, where, med, native, low))
    return rows


# ---------------------------------------------------------------- SIMD reducers
REDUCERS = ("sum_u8", "count_byte", "find_byte", "min_max_u8", "popcount")


def reducer_module() -> str:
    module = Module()
    module.fields.append('(memory $p0 (export "memory") 17)')
    for name in REDUCERS:
        for simd in (True, False):
            kernel = R.SPAN_KERNELS[name]("$p0", simd=simd)
            keep = [] if kernel.result is None else [
                "i64.extend_i32_u" if kernel.result == "i32" else "nop", "local.get $acc", "i64.add", "local.set $acc"]
            byte_param = [("byte", "i32")] if any(n == "byte" for n, _ in kernel.inputs) else []
            body = [
                "(block $done (loop $next",
                "  (br_if $done (i32.ge_u (local.get $i) (local.get $reps)))",
                *indent(kernel.code, 2), *indent(keep, 2),
                "  (local.set $i (i32.add (local.get $i) (i32.const 1)))",
                "  (br $next)))",
                "(local.get $acc)",
            ]
            params = [("reps", "i32"), ("len", "i32"), *byte_param]
            locals_ = [("i", "i32"), ("acc", "i64"), ("addr", "i32"), *kernel.locals]
            fname = f"{name}_{'simd' if simd else 'scalar'}"
            module.add(Func(fname, params, ["i64"], locals_, body, export=fname))
    return module.render()


def bench_reducers(engine: wasmtime.Engine, samples: int, spans: Sequence[int]) -> list[Row]:
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, wasmtime.wat2wasm(reducer_module())), [])
    exports = instance.exports(store)
    memory = exports["memory"]
    assert isinstance(memory, wasmtime.Memory)
    data = np.random.default_rng(7).integers(0, 255, size=max(spans), dtype=np.uint8)  # 255 never occurs
    memory.write(store, data.tobytes(), 0)
    rows = []
    for span in spans:
        for name in REDUCERS:
            args: tuple[int, ...] = (span, 255) if name in ("count_byte", "find_byte") else (span,)
            kernels = {mode: (lambda reps, f=exports[f"{name}_{mode}"], a=args: f(store, reps, *a)) for mode in ("simd", "scalar")}
            timings = interleaved(kernels, samples)  # type: ignore[arg-type]
            label = f"{name} over {span // 1024} KiB"
            scalar = timings["scalar"][0]
            rows += [Row("reducer", "-", label, mode, med, scalar, low) for mode, (med, low) in timings.items()]
    return rows


# ---------------------------------------------------------------- report
def cell(row: Row) -> str:
    return f"{row.ns:.2f} ({row.min_ns:.2f}) {row.ratio:.1f}x"


def render(rows: list[Row], spans: dict[str, int]) -> str:
    out = []
    raw = [r for r in rows if r.table == "raw"]
    if raw:
        out += ["## Raw pool access: ns per access, median (min), incl. loop overhead; x = median vs native", "",
                "| pools | access | fixed pool | random pool |", "|---:|---|---:|---:|"]
        for pools in dict.fromkeys(r.pools for r in raw):
            for name in ACCESSES:
                cells = {r.case: r for r in raw if r.pools == pools and r.name == name}
                fixed, rand = cells["fixed pool"], cells["random pool"]
                out.append(f"| {pools} | {name} | {cell(fixed)} | {cell(rand)} |")
        out.append("")
    abi = [r for r in rows if r.table == "abi"]
    if abi:
        out += ["## Typed loads through the guest module's ABI: ns per load, median (min); x = vs native", "",
                "| pools | call | spliced into the module | run-time linked module |", "|---:|---|---:|---:|"]
        for pools in dict.fromkeys(r.pools for r in abi):
            for name in dict.fromkeys(r.name for r in abi):
                cells = {r.case: r for r in abi if r.pools == pools and r.name == name}
                a, b = cells["spliced into the module"], cells["run-time linked module"]
                out.append(f"| {pools} | {name} | {cell(a)} | {cell(b)} |")
        out.append("")
    red = [r for r in rows if r.table == "reducer"]
    if red:
        out += ["## Reducers: SIMD kernel vs scalar loop", "",
                "| reducer | SIMD | scalar | speed-up |", "|---|---:|---:|---:|"]
        for name in dict.fromkeys(r.name for r in red):
            simd = next(r for r in red if r.name == name and r.case == "simd")
            scalar = next(r for r in red if r.name == name and r.case == "scalar")
            span = spans[name]
            out.append(f"| {name} | {simd.ns / 1000:.1f} us ({span / simd.ns:.2f} GB/s) | "
                       f"{scalar.ns / 1000:.1f} us ({span / scalar.ns:.2f} GB/s) | {scalar.ns / simd.ns:.1f}x |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tvm_wasm.guest.bench_dispatch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pools", type=number(1, 64, what="pool count"), nargs="+", default=[2, 8, 64], help="pool counts (default 2 8 64)")
    parser.add_argument("--samples", type=number(1, 100_000, what="sample count"), default=5, help="timed samples per row (default 5)")
    parser.add_argument("--skip", choices=["raw", "abi", "reducers"], nargs="*", default=[], help="tables to skip")
    args = parser.parse_args(argv)
    engine = wasmtime.Engine()
    rows: list[Row] = []
    for pools in args.pools:
        if "raw" not in args.skip:
            rows += bench_raw_dispatch(engine, pools, args.samples)
        if "abi" not in args.skip:
            rows += bench_abi(engine, pools, args.samples)
    span_sizes = [64 * 1024, 1024 * 1024]
    if "reducers" not in args.skip:
        rows += bench_reducers(engine, args.samples, span_sizes)
    spans = {f"{name} over {s // 1024} KiB": s for s in span_sizes for name in REDUCERS}
    print(f"wasmtime {metadata.version('wasmtime')} on {platform.machine()} ({os.cpu_count()} cores), "
          f"{platform.python_implementation()} {platform.python_version()}; medians of {args.samples} interleaved calibrated samples\n")
    print(render(rows, spans))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
