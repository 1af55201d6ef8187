"""Measure region creation in freed space, and what the touched-page map costs typed access.

Run as ``python -m tvm_wasm.guest.bench_reuse`` (``--help`` for options). With
``--baseline OLD.wasm`` (a module built by an earlier version, one pool of up
to 4 GiB, e.g. ``tvm-wasm guest build --pools 1 -o OLD.wasm`` in an older
checkout) both modules are measured side by side in one run; ``--chromium``
repeats the measurement in headless Chromium through ``tvm-guest.js``.

1. **Reuse**: a region of 4 GiB - 64 KiB is created, written (typed stores at
   ``TOUCHED_AT``, 1 MiB through a zero-copy view) and destroyed; then a
   region of the same size is created in the freed span and checked to read
   zero where the old one wrote. Timed: the destroy, the second create, and
   a 1 MiB create in the span freed by the second region (never written);
   then a region of 64 MiB written whole (``fill``) and destroyed: the cost
   now follows what a region wrote.
2. **Access**: ``store_u32``/``load_u32(h, off)`` called from a run-time-linked
   module over 16 KiB of a region, ns per access. Each sample is one call
   running the loop ``reps`` times (calibrated to >= 20 ms), samples of the
   modules interleaved, minimum and median reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from importlib import metadata, resources
from pathlib import Path
from urllib.parse import quote

import wasmtime

from ..bench.timing import calibrate
from ..cli_support import number
from ..core.handle import Handle
from ..core.types import RegionKind
from .browser import find_chromium, run_in_chromium
from .instance import GuestInstance
from .module import build_module

GIB = 1 << 30
MIB = 1 << 20
REGION = 4 * GIB - 65536
TOUCHED_AT = (0, 4096, 65536 * 7 + 13, 2 * GIB, REGION - 1)  # sentinels at both ends and inside
VIEW_AT = MIB  # 1 MiB written through a view from here
WRITTEN = 64 * MIB  # a region written whole, then destroyed
ELEMENTS = 4096  # u32s the access loops walk (16 KiB)

ACCESS_WAT = f"""
(module
  (import "tvm" "store_u32" (func $store (param i64 i32 i32)))
  (import "tvm" "load_u32" (func $load (param i64 i32) (result i32)))
  (func (export "stores") (param $h i64) (param $reps i32)
    (local $i i32)
    (block $done (loop $rep
      (br_if $done (i32.eqz (local.get $reps)))
      (local.set $i (i32.const 0))
      (block $walked (loop $walk
        (br_if $walked (i32.ge_u (local.get $i) (i32.const {ELEMENTS * 4})))
        (call $store (local.get $h) (local.get $i) (local.get $i))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $walk)))
      (local.set $reps (i32.sub (local.get $reps) (i32.const 1)))
      (br $rep))))
  (func (export "loads") (param $h i64) (param $reps i32) (result i32)
    (local $i i32) (local $sum i32)
    (block $done (loop $rep
      (br_if $done (i32.eqz (local.get $reps)))
      (local.set $i (i32.const 0))
      (block $walked (loop $walk
        (br_if $walked (i32.ge_u (local.get $i) (i32.const {ELEMENTS * 4})))
        (local.set $sum (i32.add (local.get $sum) (call $load (local.get $h) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $walk)))
      (local.set $reps (i32.sub (local.get $reps) (i32.const 1)))
      (br $rep)))
    (local.get $sum)))
"""


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def reuse(module: bytes) -> dict[str, float | int]:
    """The reuse scenario on one module (a fresh instance); times in ms, ``dirty`` = old bytes seen."""
    with GuestInstance(module) as g:
        first = g.create_region(RegionKind.BLOB_ARENA, REGION)
        h = Handle(first, 1, 0)
        for at in TOUCHED_AT:
            g.raw("store_u8", h.to_i64(), at - (1 << 32) if at >= 1 << 31 else at, 0xAB)
        g.handle_view(h.with_offset(VIEW_AT), MIB)[:] = 0xCD
        start = time.perf_counter()
        g.destroy_region(first)
        destroy_ms = ms_since(start)
        start = time.perf_counter()
        second = g.create_region(RegionKind.BLOB_ARENA, REGION)
        reuse_ms = ms_since(start)
        h2 = Handle(second, g.region_info(second).generation, 0)
        dirty = sum(int(g.raw("load_u8", h2.to_i64(), at - (1 << 32) if at >= 1 << 31 else at)) != 0 for at in TOUCHED_AT)
        dirty += int(g.raw("count_byte", h2.with_offset(VIEW_AT).to_i64(), MIB, 0)) != MIB
        start = time.perf_counter()
        g.destroy_region(second)
        second_destroy_ms = ms_since(start)
        start = time.perf_counter()
        small = g.create_region(RegionKind.BLOB_ARENA, MIB)
        small_ms = ms_since(start)
        g.destroy_region(small)
        full = g.create_region(RegionKind.BLOB_ARENA, WRITTEN)
        assert g.raw("fill", Handle(full, g.region_info(full).generation, 0).to_i64(), WRITTEN, 1) == 0
        start = time.perf_counter()
        g.destroy_region(full)
        written_ms = ms_since(start)
    return {"destroy_ms": destroy_ms, "reuse_ms": reuse_ms, "dirty": dirty,
            "untouched_destroy_ms": second_destroy_ms, "small_reuse_ms": small_ms, "written_destroy_ms": written_ms}


def access_kernels(module: bytes) -> tuple[GuestInstance, dict[str, Callable[[int], object]]]:
    g = GuestInstance(module)
    region = g.create_region(RegionKind.OBJECT_ARENA, 1 << 20)
    h = g.alloc(region, ELEMENTS * 4).to_i64()
    user = g.link(ACCESS_WAT)
    exports = user.exports(g.store)
    stores, loads = exports["stores"], exports["loads"]
    assert isinstance(stores, wasmtime.Func) and isinstance(loads, wasmtime.Func)
    return g, {"store_u32": lambda reps: stores(g.store, h, reps), "load_u32": lambda reps: loads(g.store, h, reps)}


def access(modules: dict[str, bytes], samples: int) -> dict[str, dict[str, tuple[float, float]]]:
    """ns per access (median, min) for each module and access, samples interleaved across modules."""
    made = {name: access_kernels(wasm) for name, wasm in modules.items()}
    try:
        runs = {(name, op): kernel for name, (_, kernels) in made.items() for op, kernel in kernels.items()}
        reps = {key: calibrate(kernel) for key, kernel in runs.items()}
        times: dict[tuple[str, str], list[float]] = {key: [] for key in runs}
        for _ in range(samples + 1):  # the first round warms up
            for key, kernel in runs.items():
                start = time.perf_counter_ns()
                kernel(reps[key])
                times[key].append((time.perf_counter_ns() - start) / (reps[key] * ELEMENTS))
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for (name, op), values in times.items():
            out.setdefault(name, {})[op] = (statistics.median(values[1:]), min(values[1:]))
        return out
    finally:
        for g, _ in made.values():
            g.close()


REUSE_PAGE = """<!doctype html>
<script type="module">
  // The reuse scenario and the access loops of bench_reuse.py, for every module in /modules.json.
  import { instantiate, RegionKind, packHandle } from "/tvm-guest.js";
  const SETUP = __SETUP__;
  const report = { engine: navigator.userAgent, reuse: {}, access: {} };
  const ms = (t) => performance.now() - t;
  try {
    for (const name of SETUP.modules) {
      const g = await instantiate(`/module/${encodeURIComponent(name)}.wasm`);
      const first = g.createRegion(RegionKind.BLOB_ARENA, SETUP.region);
      for (const at of SETUP.touchedAt) g.exports.store_u8(packHandle(first, 1, 0), at | 0, 0xab);
      g.handleBytes(packHandle(first, 1, SETUP.viewAt), SETUP.mib).fill(0xcd); // 1 MiB through a view
      let t = performance.now();
      g.destroyRegion(first);
      const destroyMs = ms(t);
      t = performance.now();
      const second = g.createRegion(RegionKind.BLOB_ARENA, SETUP.region);
      const reuseMs = ms(t);
      const h = packHandle(second, g.regionInfo(second).generation, 0);
      let dirty = SETUP.touchedAt.filter((at) => g.exports.load_u8(h, at | 0) !== 0).length;
      dirty += Number(g.exports.count_byte(packHandle(second, g.regionInfo(second).generation, SETUP.viewAt), SETUP.mib, 0)) !== SETUP.mib ? 1 : 0;
      t = performance.now();
      g.destroyRegion(second);
      const untouchedMs = ms(t);
      t = performance.now();
      const small = g.createRegion(RegionKind.BLOB_ARENA, SETUP.mib);
      const smallMs = ms(t);
      g.destroyRegion(small);
      const full = g.createRegion(RegionKind.BLOB_ARENA, SETUP.written);
      g.exports.fill(packHandle(full, g.regionInfo(full).generation, 0), SETUP.written, 1);
      t = performance.now();
      g.destroyRegion(full);
      const writtenMs = ms(t);
      report.reuse[name] = { destroy_ms: destroyMs, reuse_ms: reuseMs, dirty, untouched_destroy_ms: untouchedMs, small_reuse_ms: smallMs,
                             written_destroy_ms: writtenMs };
    }
    const runs = [];
    for (const name of SETUP.modules) {
      const g = await instantiate(`/module/${encodeURIComponent(name)}.wasm`);
      const r = g.createRegion(RegionKind.OBJECT_ARENA, 1 << 20);
      const h = g.alloc(r, SETUP.elements * 4);
      const user = await g.link("/access.wasm");
      runs.push([name, "store_u32", (reps) => user.exports.stores(h, reps)]);
      runs.push([name, "load_u32", (reps) => user.exports.loads(h, reps)]);
    }
    const reps = runs.map(([, , run]) => {
      let n = 1;
      for (;;) { const t = performance.now(); run(n); if (ms(t) >= 20 || n >= 2 ** 30) return n; n *= 2; }
    });
    const times = runs.map(() => []);
    for (let sample = 0; sample <= SETUP.samples; sample++) {
      runs.forEach(([, , run], i) => {
        const t = performance.now();
        run(reps[i]);
        if (sample > 0) times[i].push(ms(t) * 1e6 / (reps[i] * SETUP.elements));
      });
    }
    runs.forEach(([name, op], i) => {
      const sorted = times[i].slice().sort((a, b) => a - b);
      (report.access[name] ??= {})[op] = [sorted[Math.floor(sorted.length / 2)], sorted[0]];
    });
  } catch (error) {
    report.error = String(error && error.stack ? error.stack : error);
  }
  await fetch("/result", { method: "POST", body: JSON.stringify(report) });
</script>
"""


def reuse_page_assets(modules: dict[str, bytes], samples: int) -> dict[str, tuple[str, bytes]]:
    """The page (reuse scenario and access loops for every module), ``tvm-guest.js`` and the modules."""
    setup = {"modules": list(modules), "region": REGION, "touchedAt": list(TOUCHED_AT), "viewAt": VIEW_AT, "mib": MIB, "written": WRITTEN,
             "elements": ELEMENTS, "samples": samples}
    files = {
        "/": ("text/html", REUSE_PAGE.replace("__SETUP__", json.dumps(setup)).encode()),
        "/tvm-guest.js": ("text/javascript", resources.files("tvm_wasm.guest").joinpath("js/tvm-guest.js").read_bytes()),
        "/access.wasm": ("application/wasm", bytes(wasmtime.wat2wasm(ACCESS_WAT))),
    }
    for name, wasm in modules.items():
        files[f"/module/{quote(name)}.wasm"] = ("application/wasm", wasm)
    return files


def chromium_reuse(modules: dict[str, bytes], samples: int, timeout: float = 600) -> dict:
    """The reuse scenario and access loops in headless Chromium; ``RuntimeError`` if there is none."""
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("no chromium binary found (Debian: apt-get install chromium)")
    report = run_in_chromium(chromium, reuse_page_assets(modules, samples), timeout=timeout)
    if "error" in report:
        raise RuntimeError(f"the page failed: {report['error']}")
    return report


def render(wasmtime_reuse: dict[str, dict], access_ns: dict[str, dict], browser: dict | None) -> str:
    names = list(wasmtime_reuse)
    out = ["## Reuse of a freed 4 GiB - 64 KiB span (ms)", "",
           "| engine | module | destroy (wrote 1 MiB + 5 bytes) | create in the freed span | old bytes seen "
           "| destroy (never written) | 1 MiB create after it | destroy (wrote 64 MiB) |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    engines = [("wasmtime", wasmtime_reuse)] + ([("Chromium", browser["reuse"])] if browser else [])
    for engine, results in engines:
        for name in names:
            r = results[name]
            out.append(f"| {engine} | {name} | {r['destroy_ms']:.1f} | {r['reuse_ms']:.1f} | {r['dirty']} "
                       f"| {r['untouched_destroy_ms']:.1f} | {r['small_reuse_ms']:.2f} | {r['written_destroy_ms']:.1f} |")
    out += ["", "## Typed access from a linked module, 16 KiB walk (ns per access: median / min)", "",
            "| engine | module | store_u32 | load_u32 |", "|---|---|---:|---:|"]
    engines_access = [("wasmtime", access_ns)] + ([("Chromium", browser["access"])] if browser else [])
    for engine, results in engines_access:
        for name in names:
            s, l = results[name]["store_u32"], results[name]["load_u32"]
            out.append(f"| {engine} | {name} | {s[0]:.2f} / {s[1]:.2f} | {l[0]:.2f} / {l[1]:.2f} |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tvm_wasm.guest.bench_reuse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="a module built by another version (one pool of up to 4 GiB)")
    parser.add_argument("--samples", type=number(1, 1000, what="sample count"), default=7,
                        help="access samples per module (default 7)")
    parser.add_argument("--chromium", action="store_true", help="also run in headless Chromium")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    modules = {"this version": build_module(pools=1).wasm}
    if args.baseline:
        modules = {"baseline": args.baseline.read_bytes(), **modules}
    reused = {name: reuse(wasm) for name, wasm in modules.items()}
    access_ns = access(modules, args.samples)
    browser = chromium_reuse(modules, args.samples) if args.chromium else None
    print(f"wasmtime {metadata.version('wasmtime')} on {platform.machine()} ({os.cpu_count()} cores), "
          f"load average {os.getloadavg()[0]:.1f}\n")
    if browser:
        print(f"Chromium: {browser.get('engine', '?')}\n")
    print(render(reused, access_ns, browser))
    if args.json:
        args.json.write_text(json.dumps({"wasmtime": {"reuse": reused, "access": access_ns}, "chromium": browser}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
