"""Serve the JavaScript checks on 127.0.0.1 and collect their report (browser and Node runs).

The page and the Node runner both run ``web/checks.js`` against the shipped
``tvm-guest.js`` and a module built with browser-sized pools.
"""

from __future__ import annotations

import json
import subprocess
from importlib import resources
from pathlib import Path

import wasmtime

from tvm_wasm.guest import BROWSER_MAX_PAGES, BROWSER_META_MAX_PAGES, build_module
from tvm_wasm.guest.browser import CONTENT_TYPES, directory_assets, find_chromium, serve, stop  # noqa: F401
from tvm_wasm.guest.browser import run_in_chromium as _run_in_chromium


def run_in_chromium(chromium: str, timeout: float = 90.0, files: dict[str, tuple[str, bytes]] | None = None,
                    page: str = "") -> dict:
    """``tvm_wasm.guest.browser.run_in_chromium``, serving the checks page unless ``files`` are given."""
    return _run_in_chromium(chromium, files or assets(), timeout=timeout, page=page)

WEB = Path(__file__).parent / "web"

USER_WAT = """
(module
  (import "tvm" "memory" (memory 1))
  (import "tvm" "alloc" (func $alloc (param i32 i32) (result i64)))
  (import "tvm" "write" (func $write (param i64 i32 i32) (result i32)))
  (import "tvm" "read" (func $read (param i64 i32 i32) (result i32)))
  (import "tvm" "load_u8" (func $load_u8 (param i64 i32) (result i32)))
  ;; bytes 1..n into a new block (through the default memory), read back, summed by typed loads
  (func (export "fill_and_sum") (param $r i32) (param $n i32) (result i32)
    (local $h i64) (local $i i32) (local $sum i32)
    (local.set $h (call $alloc (local.get $r) (local.get $n)))
    (block $done (loop $fill
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (local.get $i) (i32.add (local.get $i) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $fill)))
    (drop (call $write (local.get $h) (i32.const 0) (local.get $n)))
    (drop (call $read (local.get $h) (i32.const 4096) (local.get $n)))
    (local.set $i (i32.const 0))
    (block $summed (loop $sum
      (br_if $summed (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $sum (i32.add (local.get $sum) (call $load_u8 (local.get $h) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $sum)))
    (local.get $sum))
  (func (export "peek") (param $h i64) (result i32) (call $load_u8 (local.get $h) (i32.const 0))))
"""


def run_script_page(script: str, module: bytes) -> dict:
    """Run ``script`` (an ES module's body, which imports ``/tvm-guest.js`` and loads ``/guest.wasm``, and
    POSTs its report to ``/result``) in headless Chromium; skips the test when there is no Chromium."""
    import pytest

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium binary found (Debian's chromium package; .ci/run installs it)")
    page = f'<!doctype html>\n<script type="module">\n{script}\n</script>\n'
    files = {"/": ("text/html", page.encode()), "/tvm-guest.js": ("text/javascript", tvm_guest_js()),
             "/guest.wasm": ("application/wasm", module)}
    return run_in_chromium(chromium, files=files)


def tvm_guest_js() -> bytes:
    """The ES module as the package ships it."""
    return resources.files("tvm_wasm.guest").joinpath("js/tvm-guest.js").read_bytes()


def assets() -> dict[str, tuple[str, bytes]]:
    guest = build_module(pools=3, max_pages=BROWSER_MAX_PAGES, meta_max_pages=BROWSER_META_MAX_PAGES)
    return {
        "/": ("text/html", (WEB / "index.html").read_bytes()),
        "/tvm-guest.js": ("text/javascript", tvm_guest_js()),
        "/checks.js": ("text/javascript", (WEB / "checks.js").read_bytes()),
        "/guest.wasm": ("application/wasm", guest.wasm),
        "/user.wasm": ("application/wasm", bytes(wasmtime.wat2wasm(USER_WAT))),
    }


BIG_PAGE = """<!doctype html>
<script type="module">
  // More than 4 GiB in one tab: four regions (2, 2, 2 and 4 GiB - 1) across three pools,
  // sentinels at both ends written and read through the ABI and through zero-copy views.
  import { instantiate, RegionKind, packHandle } from "/tvm-guest.js";
  const report = { engine: navigator.userAgent, regions: [] };
  try {
    const g = await instantiate("/big.wasm");
    for (const [n, cap] of [2 ** 31, 2 ** 31, 2 ** 31, 2 ** 32 - 1].entries()) {
      const r = g.createRegion(RegionKind.BLOB_ARENA, cap);
      const h = packHandle(r, 1, 0);
      g.exports.store_u8(h, 0, 0x10 + n);
      g.exports.store_u8(h, (cap - 1) | 0, 0xe0 + n);
      const view = g.regionBytes(r);
      view[1] = 0x20 + n;
      let pastEnd = 0;
      try { g.guard(() => g.exports.load_u8(h, cap | 0)); } catch (error) { pastEnd = error.code ?? -1; }
      report.regions.push({ pool: g.regionInfo(r).pool, capacity: view.length, first: g.exports.load_u8(h, 0),
        second: g.exports.load_u8(h, 1), last: view[cap - 1], pastEnd });
    }
  } catch (error) {
    report.error = String(error && error.stack ? error.stack : error);
  }
  await fetch("/result", { method: "POST", body: JSON.stringify(report) });
</script>
"""


def big_assets() -> dict[str, tuple[str, bytes]]:
    """A page and a module with 4 pools of up to 4 GiB each."""
    return {
        "/": ("text/html", BIG_PAGE.encode()),
        "/tvm-guest.js": ("text/javascript", tvm_guest_js()),
        "/big.wasm": ("application/wasm", build_module(pools=4).wasm),
    }


def run_in_node(node: str, workdir: Path) -> dict:
    """Run the same checks under Node (files copied as .mjs so Node loads them as ES modules)."""
    files = assets()
    (workdir / "tvm-guest.mjs").write_bytes(files["/tvm-guest.js"][1])
    (workdir / "checks.mjs").write_bytes(files["/checks.js"][1])
    (workdir / "guest.wasm").write_bytes(files["/guest.wasm"][1])
    (workdir / "user.wasm").write_bytes(files["/user.wasm"][1])
    runner = WEB / "node-run.mjs"
    args = [str(workdir / name) for name in ("tvm-guest.mjs", "checks.mjs", "guest.wasm", "user.wasm")]
    done = subprocess.run([node, str(runner), *args], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"node failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
