"""A componentize-py guest on TvmHost: what instantiation and one call cost, measured in one run.

Builds the Python guest template (``tvm_wasm.templates``, componentize-py
from the test extra), then measures, on one engine and one host:

* instantiation: the first (compiles the ~18 MB component), the next ones on
  the same engine (served by the in-memory compiled-component cache), and one
  on a fresh engine with a disk cache (``Component.serialize`` output);
* per call, as the guest sees it: the template's ``repeat`` export loops
  ``count`` times over ``bytes.read`` / ``read`` + ``write`` / ``copy-region``
  inside the Python guest; beside it the raw-ABI loop of ``bench.paths`` in
  the same host (``bench.timing.measure``: calibrated, warm-up discarded,
  median of the samples).

Run: ``python -m tvm_wasm.bench.component_guests`` (about a minute on two cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .. import templates
from ..cli_support import number
from ..core.types import RegionKind
from ..host.component_values import from_handle
from ..host.tvm_host import TvmHost, new_engine
from .paths import KIB, RAW_WAT, SIZES, PathRow, render
from .timing import Timing, measure


def build_python_guest(workdir: Path) -> Path:
    templates.write_template("python", workdir)
    return templates.build_template("python", workdir)


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def instantiation(path: Path, cache_dir: Path, *, repeats: int = 5) -> dict[str, float]:
    """Seconds: first instantiation (compile), median cached (same engine), median from disk (new engine)."""
    host = TvmHost(engine=new_engine())
    first = _seconds(lambda: host.instantiate_component(path, wasi=True))
    cached = statistics.median(_seconds(lambda: host.instantiate_component(path, wasi=True)) for _ in range(repeats))
    TvmHost(engine=new_engine()).instantiate_component(path, wasi=True, cache_dir=cache_dir)  # writes the file
    disk = statistics.median(
        _seconds(lambda: TvmHost(engine=new_engine()).instantiate_component(path, wasi=True, cache_dir=cache_dir))
        for _ in range(max(1, repeats // 2))
    )
    return {"first": first, "cached": cached, "disk": disk}


def per_call(
    path: Path, *, samples: int = 5, progress: Callable[[str], None] | None = None
) -> tuple[list[PathRow], list[PathRow]]:
    """Rows of (medians, bests): the median and the fastest of ``samples`` per call, both paths."""
    note = progress or (lambda _: None)
    host = TvmHost()
    guest = host.instantiate_component(path, wasi=True)
    repeat = guest.func("repeat")  # the bare wasmtime Func: no conversions inside the timed loop
    raw = host.instantiate(RAW_WAT)
    raw_exports = raw.exports(host.store)
    src_region = host.create_region(RegionKind.BLOB_ARENA, 1 << 20)
    dst_region = host.create_region(RegionKind.BLOB_ARENA, 1 << 20)
    src, dst = host.alloc(src_region, 1 << 20), host.alloc(dst_region, 1 << 20)
    host.view(src_region)[:] = 0x5A
    s, d = from_handle(src), from_handle(dst)

    def timed(label: str, fn: Callable[[int], object], check: Callable[[object], bool]) -> Timing:
        note(label)
        assert check(fn(1)), f"{label}: the guest's calls failed"
        return measure(fn, samples=samples)

    def wit(op: str, size: int) -> Callable[[int], object]:
        return lambda reps: repeat(guest.store, op, s, d, size, reps)

    def raw_call(name: str, *args: int) -> Callable[[int], object]:
        func = raw_exports[name]
        return lambda reps: func(host.store, *args, reps)  # type: ignore[operator]

    def wit_ok(value: object) -> bool:
        return isinstance(value, int)

    def raw_ok(value: object) -> bool:
        return value == 0

    pairs: list[tuple[str, int, Timing, Timing]] = []
    for size in SIZES:
        pairs.append((
            "read", size,
            timed(f"Python guest read {size}", wit("read", size), wit_ok),
            timed(f"raw read {size}", raw_call("read_loop", src.to_i64(), size), raw_ok),
        ))
    for size in SIZES:
        pairs.append((
            "read + write", size,
            timed(f"Python guest read+write {size}", wit("read-write", size), wit_ok),
            timed(f"raw read+write {size}", raw_call("read_write_loop", src.to_i64(), dst.to_i64(), size), raw_ok),
        ))
        pairs.append((
            "copy-region", size,
            timed(f"Python guest copy-region {size}", wit("copy-region", size), wit_ok),
            timed(f"raw copy_region {size}", raw_call("copy_region_loop", src_region, 0, dst_region, 0, size), raw_ok),
        ))
    assert host.read(dst, 64 * KIB) == bytes([0x5A]) * (64 * KIB), "the copies did not arrive"
    medians = [PathRow(op, size, w.median_ns, r.median_ns) for op, size, w, r in pairs]
    bests = [PathRow(op, size, min(w.samples_ns), min(r.samples_ns)) for op, size, w, r in pairs]
    return medians, bests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tvm_wasm.bench.component_guests", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--samples", type=number(1, 100_000, what="sample count"), default=5, help="timed samples per row (default 5)")
    parser.add_argument("--component", type=Path, help="a built Python template (default: build one now)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tvm-component-guests-") as tmp:
        path = args.component or build_python_guest(Path(tmp) / "python")
        load_before = os.getloadavg()[0]
        times = instantiation(path, Path(tmp) / "cache")
        print(f"component: {path.stat().st_size / 2**20:.1f} MiB")
        print(
            f"instantiate: first {times['first'] * 1e3:,.0f} ms (compiles), cached {times['cached'] * 1e3:,.1f} ms "
            f"(same engine; {times['first'] / times['cached']:,.0f}x faster), from the disk cache "
            f"{times['disk'] * 1e3:,.0f} ms (new engine; {times['first'] / times['disk']:,.0f}x faster)"
        )
        medians, bests = per_call(path, samples=args.samples, progress=lambda s: print(f"  measuring {s}", flush=True))
        title = "Python guest (WIT)"
        print(f"\nper call, median of {args.samples} samples:")
        print(render(medians).replace("WIT (component)", title))
        print(f"\nper call, fastest of {args.samples} samples (the least disturbed by other load):")
        print(render(bests).replace("WIT (component)", title))
        print(f"\nload average (1 min): {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
