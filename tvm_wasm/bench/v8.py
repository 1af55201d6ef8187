"""The V8 engine: headless Chromium runs the variants a browser can run, timed in the page.

Kernels are queued while the matrix runs; at the end one Chromium (Debian's
``chromium``, headless, no sandbox, no GPU, no network services, a fresh
profile) loads a page served on 127.0.0.1. The page fetches each job (the
module bytes and the buffers), instantiates it, calibrates ``reps`` with
``performance.now()`` (the page is cross-origin isolated, so the clock is
fine-grained; a kernel whose arena caps ``reps`` takes several timed calls per
sample, so no sample is below the clock's resolution), runs the warm-up
calls, times every sample, checks every answer (BigInt) and posts the times back.

What runs: ``m32``, ``m64`` (memory64) and ``guest`` (the self-contained
module: multi-memory, no host). The host-side variants (``tvm``,
``tvm-bulk``, ``tvm-mm``) need the Python host; ``m32-checked`` is a
wasmtime configuration. The spill-driven and beyond-4-GiB classes are not
run in the browser (the first needs the host's backing store).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import wasmtime

from ..core.types import RegionKind
from .guest_runner import GUEST_POOLS, GuestLowering
from .ir import Kernel
from .lower_wat import PAGE, LinearLowering
from .results import Row
from .wasmtime_runner import arena_caps, arena_reps

if TYPE_CHECKING:
    from .matrix import Config

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--js-flags=--no-liftoff",  # optimising compiler (TurboFan) from the start, like Cranelift: peak code only
]
BROWSER_VARIANTS = ("m32", "m64", "guest")
WHY_NOT = {
    "m32-checked": "a wasmtime configuration (no guard pages); V8 chooses its own bounds-check strategy",
    "tvm": "the host-side raw ABI is served by the Python host (wasmtime)",
    "tvm-bulk": "the host-side raw ABI is served by the Python host (wasmtime)",
    "tvm-mm": "imported regions are memories of the Python host (wasmtime)",
}

PAGE_JS = r"""
const log = (m) => fetch('/log', {method: 'POST', body: String(m)});
async function blob(url) { return new Uint8Array(await (await fetch(url)).arrayBuffer()); }
function handle(rid, gen) { return (BigInt(rid) << 48n) | (BigInt(gen) << 32n); }
async function runJob(job) {
  const bytes = await blob(job.wasm);
  const { instance } = await WebAssembly.instantiate(bytes, {});
  const ex = instance.exports;
  let reset = () => {};
  if (job.linear) {
    const mem = new Uint8Array(ex.memory.buffer);
    for (const b of job.linear.buffers) mem.set(await blob(b.blob), b.base);
    reset = () => { for (const a of job.linear.arenas) ex['bump_' + a].value = 0; };
  } else {
    const g = job.guest;
    const ids = {};
    const place = (buf, rids) => {
      if (buf.segments === 1) ex['h_' + buf.name].value = handle(rids[0], ex.region_generation(rids[0]));
      else {
        const table = new BigInt64Array(ex.memory.buffer, buf.table_at, rids.length);
        rids.forEach((r, k) => { table[k] = handle(r, ex.region_generation(r)); });
      }
      if (buf.arena) ex['r_' + buf.name].value = rids[0];
    };
    const create = (buf) => {
      const rids = [];
      for (let k = 0; k < buf.segments; k++) {
        const rid = ex.create_region_with(buf.kind, buf.capacity | 0, 0, 0);
        if (rid === 0) throw new Error('create_region failed: ' + ex.last_error());
        rids.push(rid);
      }
      return rids;
    };
    for (const buf of g.buffers) {
      const rids = ids[buf.name] = create(buf);
      if (buf.blob) {
        const data = await blob(buf.blob);
        const seg = data.length / buf.segments;
        rids.forEach((r, k) => {
          const pool = ex.region_pool(r), base = Number(ex.region_base(r));
          new Uint8Array(ex['mem' + pool].buffer).set(data.subarray(k * seg, (k + 1) * seg), base);
        });
      }
      place(buf, rids);
    }
    reset = () => {
      for (const buf of g.buffers) {
        if (!buf.arena) continue;
        if (ex.destroy_region(ids[buf.name][0]) !== 0) throw new Error('destroy_region failed');
        ids[buf.name] = create(buf);
        place(buf, ids[buf.name]);
        for (const t of ['tl_', 'tle_', 'tlf_']) ex[t + buf.name].value = 0;
      }
    };
  }
  const expected = BigInt(job.expected);
  const once = (reps) => {
    reset();
    const t0 = performance.now();
    const r = ex.run(reps);
    const dt = performance.now() - t0;
    if (r !== BigInt.asIntN(64, BigInt(reps) * expected)) throw new Error(`wrong answer ${r} for ${reps} reps`);
    return dt;
  };
  // A sample is `calls` timed calls of `reps` repetitions each (the run only, not the reset):
  // arena kernels cap reps, and one capped call can be shorter than the clock's resolution.
  const sample = (reps, calls) => { let dt = 0; for (let c = 0; c < calls; c++) dt += once(reps); return dt; };
  once(1);  // V8 compiles lazily: the first call pays for compiling, so it calibrates nothing
  let reps = 1, calls = 1;
  while (reps < job.max_reps && once(reps) < job.min_sample_ms) reps = Math.min(job.max_reps, reps * 2);
  while (calls < 1 << 20 && sample(reps, calls) < job.min_sample_ms) calls *= 2;
  for (let i = 0; i < job.warmup; i++) sample(reps, calls);
  const samples = [];
  for (let i = 0; i < job.samples; i++) samples.push(sample(reps, calls) * 1e6 / (reps * calls));
  if (samples.some((x) => !(x > 0))) throw new Error(`a sample below the clock's resolution (${reps} reps x ${calls} calls)`);
  return { reps: reps * calls, samples };
}
(async () => {
  const jobs = await (await fetch('/jobs')).json();
  for (const job of jobs) {
    let result;
    try { result = { id: job.id, ok: true, ...(await runJob(job)) }; }
    catch (e) { result = { id: job.id, ok: false, error: String(e && e.stack || e) }; }
    await fetch('/result', { method: 'POST', body: JSON.stringify(result) });
  }
  await fetch('/done', { method: 'POST', body: navigator.userAgent });
})();
"""

INDEX_HTML = "<!doctype html><meta charset=utf-8><title>tvm-wasm bench</title><script src=bench.js></script>"


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class V8Engine:
    name = "v8"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.browser = chromium()
        self.jobs: list[dict[str, Any]] = []
        self.blobs: dict[str, bytes] = {}
        self.rows: dict[int, Row] = {}
        self.version = "unknown"
        self.user_agent = ""
        if self.browser:
            try:
                out = subprocess.run([self.browser, "--version"], capture_output=True, text=True, timeout=60,
                                     check=False).stdout
                self.version = out.strip().splitlines()[-1] if out.strip() else "unknown"
            except (OSError, subprocess.SubprocessError) as exc:
                self.browser, self.version = None, f"cannot run: {exc}"
        self.note = self._note()

    def _note(self) -> str:
        if not self.browser:
            return "not available: no chromium on this machine (Debian: apt-get install chromium)"
        return (f"{self.version}, headless, TurboFan only (--no-liftoff), page on 127.0.0.1 timed with "
                "performance.now() (cross-origin isolated); "
                "runs m32, m64 and guest; " + "; ".join(f"{v}: {why}" for v, why in WHY_NOT.items()))

    def _blob(self, data: bytes) -> str:
        name = f"/blob/{len(self.blobs)}"
        self.blobs[name] = data
        return name

    def run_kernel(self, kernel: Kernel, progress: Callable[[str], None]) -> list[Row]:
        """Queue the browser variants of ``kernel``; the rows are filled in by ``finish``."""
        rows = []
        cfg = self.cfg
        max_reps = arena_reps(kernel, cfg.arena_limit)
        caps = arena_caps(kernel, max_reps)
        for variant in cfg.variants:
            if variant == "native":
                continue
            row = Row(variant, kernel.cls, kernel.size_bytes, "v8", cfg.seed)
            rows.append(row)
            if not self.browser:
                row.status, row.notes = "unavailable", [self.note]
                continue
            if variant not in BROWSER_VARIANTS:
                row.status, row.notes = "unavailable", [WHY_NOT[variant]]
                continue
            job: dict[str, Any] = {
                "id": len(self.jobs), "samples": cfg.samples, "warmup": cfg.warmup,
                "min_sample_ms": cfg.min_sample_s * 1000, "max_reps": min(max_reps, 1 << 30),
                "expected": str(kernel.expected),
            }
            if variant in ("m32", "m64"):
                lowering = LinearLowering(kernel, caps, memory64=variant == "m64")
                job["wasm"] = self._blob(bytes(wasmtime.wat2wasm(lowering.render())))
                job["linear"] = {
                    "buffers": [{"base": lowering.bases[b.name], "blob": self._blob(b.data)}
                                for b in kernel.buffers if b.data],
                    "arenas": [a.name for a in kernel.arenas],
                }
            else:
                try:
                    from ..guest import build_module
                except ImportError:
                    row.status, row.notes = "unavailable", ["the self-contained guest module is not in this build"]
                    continue
                g = GuestLowering(kernel, caps)
                module = build_module(pools=GUEST_POOLS, user_wat=g.user_wat(), guest_pages=g.end // PAGE)
                job["wasm"] = self._blob(module.wasm)
                job["guest"] = {"buffers": [{
                    "name": b.name, "segments": b.segments, "arena": b.access == "arena",
                    "capacity": caps[b.name] if b.access == "arena" else b.size // b.segments,
                    "kind": int(RegionKind.OBJECT_ARENA if b.access == "arena" else RegionKind.BLOB_ARENA),
                    "blob": self._blob(b.data) if b.data else None,
                    "table_at": g.table_at.get(b.name, 0),
                } for b in kernel.buffers]}
            self.rows[job["id"]] = row
            self.jobs.append(job)
        return rows

    def finish(self, progress: Callable[[str], None]) -> list[Row]:
        """Run every queued job in one browser; rows were returned already and are updated in place."""
        if not self.jobs or not self.browser:
            return []
        progress(f"v8: {len(self.jobs)} kernels in headless Chromium")
        results: dict[int, dict[str, Any]] = {}
        done = threading.Event()
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cross-Origin-Opener-Policy", "same-origin")
                self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path in ("/", "/index.html"):
                    self._send(INDEX_HTML.encode(), "text/html")
                elif self.path == "/bench.js":
                    self._send(PAGE_JS.encode(), "text/javascript")
                elif self.path == "/jobs":
                    self._send(json.dumps(engine.jobs).encode(), "application/json")
                elif self.path in engine.blobs:
                    self._send(engine.blobs[self.path], "application/octet-stream")
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path == "/result":
                    result = json.loads(body)
                    results[int(result["id"])] = result
                    progress(f"v8: {len(results)}/{len(engine.jobs)} kernels")
                elif self.path == "/done":
                    engine.user_agent = body.decode(errors="replace")
                    done.set()
                self._send(b"ok", "text/plain")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        profile = tempfile.mkdtemp(prefix="tvm-bench-chromium-")
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        proc = subprocess.Popen([self.browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        budget = 60 + 30 * len(self.jobs) * max(1, self.cfg.samples // 5)
        start = time.monotonic()
        try:
            while not done.wait(1.0):
                if proc.poll() is not None:
                    break
                if time.monotonic() - start > budget:
                    break
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            server.shutdown()
            shutil.rmtree(profile, ignore_errors=True)
        for job in self.jobs:
            row = self.rows[job["id"]]
            result = results.get(job["id"])
            if result is None:
                row.status, row.notes = "failed", ["no result from the browser (it exited or timed out)"]
            elif not result["ok"]:
                row.status, row.notes = "failed", [f"in the browser: {result['error'][:300]}"]
            else:
                row.raw_ns = [float(x) for x in result["samples"]]
                row.reps_per_sample, row.warmup, row.result = int(result["reps"]), self.cfg.warmup, int(job["expected"])
                row.notes.append("timed in the page with performance.now()")
        if self.user_agent:
            self.note = f"{self.note}; user agent {self.user_agent}"
        return []
