"""WIT path vs raw ABI: what one call costs a guest, side by side in one host and one store.

A component guest loops over ``bytes.read`` / ``bytes.write`` /
``bytes.copy-region`` imports (served by Python), and a core guest loops over
the raw ``tvm.read`` / ``tvm.write`` / ``tvm.copy_region`` (served by the
generated wasm runtime). Each sample is one call from Python that runs the
loop ``reps`` times inside wasm (``bench.timing.measure``: calibrated, warm-up
discarded, median reported), so the figures are per call *from the guest*.

Run: ``python -m tvm_wasm.bench.paths`` (needs the wasm-tools CLI of the test extra).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..cli_support import number
from ..core.types import RegionKind
from ..host import component_lists
from ..host.component import ComponentGuest, component_linker, instantiate_component
from ..host.component_build import REALLOC_WAT, RESULT_AREA, build_component, core_abi
from ..host.component_values import from_handle
from ..host.tvm_host import TvmHost
from .timing import measure

KIB = 1024
SIZES = (4, 64 * KIB)

BENCH_WIT = """package tvm:bench;

world paths {
    include tvm:memory/tvm-guest@0.1.0;
    use tvm:memory/types@0.1.0.{handle};

    /// Each loop makes `reps` calls and returns how many of them failed.
    export read-loop: func(h: handle, len: u32, reps: u32) -> u32;
    export read-write-loop: func(src: handle, dst: handle, len: u32, reps: u32) -> u32;
    export copy-region-loop: func(src-region: u16, src-offset: u32, dst-region: u16, dst-offset: u32, len: u32, reps: u32) -> u32;
}
"""

# Canonical-ABI layout of result<list<u8>, tvm-error> / result<_, tvm-error>: the
# discriminant at 0, the payload at 8 (tvm-error is 8-aligned); a list is (ptr, len).
OK_LIST_PTR = RESULT_AREA + 8
OK_LIST_LEN = RESULT_AREA + 12


def component_wat(world_abi_text: dict[str, str]) -> str:
    """The WIT-path loops; ``world_abi_text`` maps import aliases to their declarations."""
    imports = "\n  ".join(world_abi_text.values())
    failed = f"(if (i32.load8_u (i32.const {RESULT_AREA})) (then (local.set $bad (i32.add (local.get $bad) (i32.const 1)))))"

    def loop(body: str) -> str:
        return f"""(local $i i32) (local $bad i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $reps)))
      call $reset_heap
      {body}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $bad)"""

    read_write = f"""(call $read (local.get $sr) (local.get $sg) (local.get $so) (local.get $len) (i32.const {RESULT_AREA}))
      (if (i32.load8_u (i32.const {RESULT_AREA}))
        (then (local.set $bad (i32.add (local.get $bad) (i32.const 1))))
        (else
          (call $write (local.get $dr) (local.get $dg) (local.get $do)
                (i32.load (i32.const {OK_LIST_PTR})) (i32.load (i32.const {OK_LIST_LEN})) (i32.const {RESULT_AREA}))
          {failed}))"""
    return f"""(module
  {imports}
  (memory (export "cm32p2_memory") 2)
  {REALLOC_WAT}
  (func (export "cm32p2||read-loop") (param $r i32) (param $g i32) (param $o i32) (param $len i32) (param $reps i32) (result i32)
    {loop(f"(call $read (local.get $r) (local.get $g) (local.get $o) (local.get $len) (i32.const {RESULT_AREA})) {failed}")})
  (func (export "cm32p2||read-write-loop") (param $sr i32) (param $sg i32) (param $so i32)
        (param $dr i32) (param $dg i32) (param $do i32) (param $len i32) (param $reps i32) (result i32)
    {loop(read_write)})
  (func (export "cm32p2||copy-region-loop") (param $s i32) (param $so i32) (param $d i32) (param $do i32)
        (param $len i32) (param $reps i32) (result i32)
    {loop(f"(call $copy_region (local.get $s) (local.get $so) (local.get $d) (local.get $do) (local.get $len) (i32.const {RESULT_AREA})) {failed}")})
)"""


RAW_WAT = """(module
  (import "tvm" "read" (func $read (param i64 i32 i32) (result i32)))
  (import "tvm" "write" (func $write (param i64 i32 i32) (result i32)))
  (import "tvm" "copy_region" (func $copy_region (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "read_loop") (param $h i64) (param $len i32) (param $reps i32) (result i32) (local $i i32) (local $bad i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $reps)))
      (if (call $read (local.get $h) (i32.const 0) (local.get $len)) (then (local.set $bad (i32.add (local.get $bad) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $bad))
  (func (export "read_write_loop") (param $src i64) (param $dst i64) (param $len i32) (param $reps i32) (result i32)
    (local $i i32) (local $bad i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $reps)))
      (if (i32.or (call $read (local.get $src) (i32.const 0) (local.get $len))
                  (call $write (local.get $dst) (i32.const 0) (local.get $len)))
        (then (local.set $bad (i32.add (local.get $bad) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $bad))
  (func (export "copy_region_loop") (param $s i32) (param $so i32) (param $d i32) (param $do i32) (param $len i32)
        (param $reps i32) (result i32) (local $i i32) (local $bad i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $reps)))
      (if (call $copy_region (local.get $s) (local.get $so) (local.get $d) (local.get $do) (local.get $len))
        (then (local.set $bad (i32.add (local.get $bad) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $bad))
)"""


def build_bench_component(workdir: Path) -> bytes:
    abi = core_abi("paths", workdir, extra_wit=BENCH_WIT)
    decls = {
        alias: abi.import_decl("bytes", name, alias)
        for alias, name in (("read", "read"), ("write", "write"), ("copy_region", "copy-region"))
    }
    return build_component(component_wat(decls), "paths", workdir, extra_wit=BENCH_WIT)


@dataclass(frozen=True)
class PathRow:
    operation: str
    size: int
    wit_ns: float
    raw_ns: float

    @property
    def ratio(self) -> float:
        """How many times the WIT call costs the raw one."""
        return self.wit_ns / self.raw_ns if self.raw_ns else float("nan")


def run_paths(
    *,
    samples: int = 5,
    min_sample_s: float = 0.05,
    stock: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[PathRow]:
    """Measure every row; ``stock=True`` serves the WIT path with wasmtime-py's own
    trampoline and element-wise list conversion instead of ``component_calls`` and
    ``component_lists``."""
    note = progress or (lambda _: None)
    with tempfile.TemporaryDirectory(prefix="tvm-paths-") as tmp:
        component = build_bench_component(Path(tmp))
    host = TvmHost()
    linker = component_linker(host, fast_calls=not stock)
    wit: ComponentGuest = instantiate_component(host, component, linker=linker)
    raw = host.instantiate(RAW_WAT)
    raw_exports = raw.exports(host.store)
    if stock:
        component_lists.uninstall()
    try:
        src_region = host.create_region(RegionKind.BLOB_ARENA, 1 << 20)
        dst_region = host.create_region(RegionKind.BLOB_ARENA, 1 << 20)
        src = host.alloc(src_region, 1 << 20)
        dst = host.alloc(dst_region, 1 << 20)
        host.view(src_region)[:] = 0x5A

        def timed(label: str, fn: Callable[[int], object]) -> float:
            note(label)
            assert fn(1) == 0, f"{label}: the guest's calls failed"
            return measure(fn, samples=samples, min_sample_s=min_sample_s).median_ns

        def wit_call(name: str, *args: object) -> Callable[[int], object]:
            func = wit.func(name)
            return lambda reps: func(wit.store, *args, reps)

        def raw_call(name: str, *args: int) -> Callable[[int], object]:
            func = raw_exports[name]
            return lambda reps: func(host.store, *args, reps)  # type: ignore[operator]

        rows = []
        for size in SIZES:
            rows.append(PathRow(
                "read", size,
                timed(f"WIT read {size}", wit_call("read-loop", from_handle(src), size)),
                timed(f"raw read {size}", raw_call("read_loop", src.to_i64(), size)),
            ))
        for size in SIZES:
            rows.append(PathRow(
                "read + write", size,
                timed(f"WIT read+write {size}", wit_call("read-write-loop", from_handle(src), from_handle(dst), size)),
                timed(f"raw read+write {size}", raw_call("read_write_loop", src.to_i64(), dst.to_i64(), size)),
            ))
            rows.append(PathRow(
                "copy-region", size,
                timed(f"WIT copy-region {size}", wit_call("copy-region-loop", src_region, 0, dst_region, 0, size)),
                timed(f"raw copy_region {size}", raw_call("copy_region_loop", src_region, 0, dst_region, 0, size)),
            ))
        assert host.read(dst, 64 * KIB) == bytes([0x5A]) * (64 * KIB), "the copies did not arrive"
        return rows
    finally:
        component_lists.install()


def format_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def render(rows: list[PathRow]) -> str:
    lines = ["| operation | bytes | WIT (component) | raw ABI | WIT / raw |", "|---|---|---|---|---|"]
    for row in rows:
        size = f"{row.size // KIB} KiB" if row.size >= KIB else f"{row.size} B"
        lines.append(
            f"| {row.operation} | {size} | {format_ns(row.wit_ns)} | {format_ns(row.raw_ns)} | {row.ratio:,.0f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tvm_wasm.bench.paths", description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=number(1, 100_000, what="sample count"), default=5, help="timed samples per row (default 5)")
    parser.add_argument(
        "--stock",
        action="store_true",
        help="also measure the WIT path served by wasmtime-py's own trampoline and list conversion",
    )
    args = parser.parse_args(argv)
    print(render(run_paths(samples=args.samples, progress=lambda s: print(f"  measuring {s}", flush=True))))
    if args.stock:
        print("\nWIT path with wasmtime-py's stock trampoline and element-wise list<u8> conversion:")
        print(render(run_paths(samples=args.samples, stock=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
