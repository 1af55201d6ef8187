"""Serve the JavaScript checks on 127.0.0.1 and collect their report (browser and Node runs).

The page and the Node runner both run ``web/checks.js`` against the shipped
``tvm-guest.js`` and a module built with browser-sized pools.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import wasmtime

from tvm_wasm.guest import BROWSER_MAX_PAGES, BROWSER_META_MAX_PAGES, build_module

WEB = Path(__file__).parent / "web"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

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


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def serve(files: dict[str, tuple[str, bytes]]) -> Iterator[tuple[str, dict, threading.Event]]:
    """An HTTP server on 127.0.0.1 (a free port) serving ``files``; POST /result fills the report."""
    report: dict = {}
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            entry = files.get(self.path.split("?", 1)[0])
            if entry is None:
                self.send_error(404)
                return
            kind, body = entry
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self.path == "/result":
                report.update(json.loads(body))
                done.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", report, done
    finally:
        server.shutdown()
        server.server_close()


CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json",
                 ".md": "text/markdown", ".ts": "text/plain", ".c": "text/plain"}


def directory_assets(root: Path) -> dict[str, tuple[str, bytes]]:
    """Every file under ``root``, served at its relative path (``.wasm`` as application/wasm)."""
    return {
        "/" + path.relative_to(root).as_posix(): (CONTENT_TYPES.get(path.suffix, "application/octet-stream"), path.read_bytes())
        for path in sorted(root.rglob("*")) if path.is_file()
    }


def run_in_chromium(chromium: str, timeout: float = 90.0, files: dict[str, tuple[str, bytes]] | None = None,
                    page: str = "") -> dict:
    """Open ``page`` (default ``/``) of ``files`` (default: the checks) in headless Chromium with a fresh
    profile, and wait for the report it posts to ``/result``."""
    with serve(files or assets()) as (url, report, done), tempfile.TemporaryDirectory(prefix="tvm-chromium-") as profile:
        url = url + page.lstrip("/")
        log = Path(profile) / "chromium.log"
        with open(log, "wb") as sink:
            browser = subprocess.Popen(
                [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}/data", url],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
            try:
                finished = done.wait(timeout)
            finally:
                stop(browser)
        if not finished:
            tail = log.read_text(errors="replace")[-3000:]
            raise TimeoutError(f"no report from Chromium within {timeout:.0f} s; its log ends with:\n{tail}")
        return dict(report)


def stop(process: subprocess.Popen) -> None:
    """End the browser we started and its children (its own session), politely first."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)


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


REUSE_PAGE = """<!doctype html>
<script type="module">
  // A region of 4 GiB - 64 KiB in space a destroyed one left behind: how long creating it takes,
  // and whether every byte the old region wrote reads back as zero.
  import { instantiate, RegionKind, packHandle } from "/tvm-guest.js";
  const report = {};
  try {
    const g = await instantiate("/reuse.wasm");
    const size = 2 ** 32 - 65536;
    const touched = [0, 4096, 65536 * 7 + 13, 2 ** 31, size - 1];
    let t = performance.now();
    const first = g.createRegion(RegionKind.BLOB_ARENA, size);
    report.firstMs = performance.now() - t;
    for (const at of touched) g.exports.store_u8(packHandle(first, 1, 0), at | 0, 0xab);
    g.handleBytes(packHandle(first, 1, 2 ** 20), 2 ** 20).fill(0xcd); // 1 MiB through a view
    g.destroyRegion(first);
    t = performance.now();
    const second = g.createRegion(RegionKind.BLOB_ARENA, size);
    report.reuseMs = performance.now() - t;
    const bytes = g.regionBytes(second);
    report.dirty = touched.filter((at) => bytes[at] !== 0).length + bytes.subarray(2 ** 20, 2 ** 21).filter((b) => b).length;
    g.destroyRegion(second);
    t = performance.now();
    const small = g.createRegion(RegionKind.BLOB_ARENA, 2 ** 20);
    report.smallReuseMs = performance.now() - t;
    report.smallDirty = g.regionBytes(small).filter((b) => b).length;
  } catch (error) {
    report.error = String(error && error.stack ? error.stack : error);
  }
  await fetch("/result", { method: "POST", body: JSON.stringify(report) });
</script>
"""


def reuse_assets() -> dict[str, tuple[str, bytes]]:
    """A page timing region creation in freed space, with a one-pool module of up to 4 GiB."""
    return {
        "/": ("text/html", REUSE_PAGE.encode()),
        "/tvm-guest.js": ("text/javascript", tvm_guest_js()),
        "/reuse.wasm": ("application/wasm", build_module(pools=1).wasm),
    }
