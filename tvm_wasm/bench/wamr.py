"""The WAMR engine (PyPI ``wamr-bin`` + ``wamrc-bin``, AOT): what it can run, timed inside wasm.

This ``wamr`` build is AOT-only and runs WASI commands, so the kernel goes in
a command module: the m32 lowering, its buffers as data segments, and a
``_start`` that calibrates ``reps`` (doubling until a call lasts
``min_sample_s``), runs the warm-up calls, then times each sample with WASI
``clock_time_get`` (monotonic) and writes ``reps`` and every (duration,
answer) pair to stdout as little-endian u64s. Python checks every answer.

What it cannot run, and why, is stated in the rows:
- m32-checked: WAMR has no guard-page mode to turn off; its m32 already
  checks every access explicitly (the cost the seed issue measures);
- m64: this build rejects memory64 modules;
- tvm, tvm-bulk, tvm-mm: the host-side ABI is served by the Python host;
- guest: probed at start-up: this wamrc crashes (SIGSEGV) compiling the
  self-contained module, so there is nothing to run (the note says what the
  probe found on the machine at hand);
- native: not an engine row.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import wasmtime

from .ir import Kernel
from .lower_wat import LinearLowering
from .results import Row
from .wasmtime_runner import arena_caps, arena_reps

if TYPE_CHECKING:
    from .matrix import Config

MASK64 = (1 << 64) - 1
OUT = 1024  # page 0 of the m32 layout is free: results go here
CLOCK = 64

WHY_NOT = {
    "m32-checked": "WAMR has no guard-page memory model to switch off: its m32 row already checks every access",
    "m64": "this WAMR build rejects memory64 modules (\"unsupported active offset expression\")",
    "tvm": "the host-side raw ABI is served by the Python host (wasmtime)",
    "tvm-bulk": "the host-side raw ABI is served by the Python host (wasmtime)",
    "tvm-mm": "imported regions are memories of the Python host (wasmtime)",
    "guest": "not probed",
    "native": "",
}


def tools() -> tuple[str, str] | None:
    """(wamrc, wamr) next to this interpreter or on PATH."""
    here = Path(sys.executable).parent
    found = []
    for name in ("wamrc", "wamr"):
        local = here / name
        path = str(local) if local.exists() else shutil.which(name)
        if path is None:
            return None
        found.append(path)
    return found[0], found[1]


def _escape(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


def command_wat(kernel: Kernel, caps: dict[str, int], *, samples: int, warmup: int, min_sample_ns: int,
                max_reps: int) -> str:
    lowering = LinearLowering(kernel, caps)
    text = lowering.render()
    head, rest = text.split("\n", 1)
    imports = [
        '(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))',
        '(import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))',
    ]
    data = [f'(data (i32.const {lowering.bases[b.name]}) "{_escape(b.data)}")' for b in kernel.buffers if b.data]
    resets = [c for a in kernel.arenas for c in ("i32.const 0", f"global.set $bump_{a.name}")]
    timed = [
        *resets,
        "call $now", "local.set $t0",
        "local.get $reps", "call $run", "local.set $r",
        "call $now", "local.get $t0", "i64.sub", "local.set $dt",
    ]
    out_bytes = 8 + 16 * samples
    start = f"""
(func $now (result i64)
  (drop (call $clock (i32.const 1) (i64.const 1) (i32.const {CLOCK})))
  (i64.load (i32.const {CLOCK})))
(func (export "_start")
  (local $reps i32) (local $t0 i64) (local $dt i64) (local $r i64) (local $i i32)
  i32.const 1
  local.set $reps
  block $calibrated
    loop $calibrate
      {' '.join(timed)}
      local.get $dt
      i64.const {min_sample_ns}
      i64.ge_u
      br_if $calibrated
      local.get $reps
      i32.const {max_reps}
      i32.ge_u
      br_if $calibrated
      local.get $reps
      i32.const 1
      i32.shl
      local.tee $reps
      i32.const {max_reps}
      i32.gt_u
      if
        i32.const {max_reps}
        local.set $reps
      end
      br $calibrate
    end
  end
  i32.const {OUT}
  local.get $reps
  i64.extend_i32_u
  i64.store
  i32.const 0
  local.set $i
  block $warm_done
    loop $warm
      local.get $i
      i32.const {warmup}
      i32.ge_u
      br_if $warm_done
      {' '.join(timed)}
      i32.const {OUT + 8}
      local.get $r
      i64.store
      local.get $i
      i32.const 1
      i32.add
      local.set $i
      br $warm
    end
  end
  i32.const 0
  local.set $i
  block $done
    loop $sample
      local.get $i
      i32.const {samples}
      i32.ge_u
      br_if $done
      {' '.join(timed)}
      local.get $i
      i32.const 4
      i32.shl
      i32.const {OUT + 8}
      i32.add
      local.get $dt
      i64.store
      local.get $i
      i32.const 4
      i32.shl
      i32.const {OUT + 16}
      i32.add
      local.get $r
      i64.store
      local.get $i
      i32.const 1
      i32.add
      local.set $i
      br $sample
    end
  end
  (i32.store (i32.const 0) (i32.const {OUT}))
  (i32.store (i32.const 4) (i32.const {out_bytes}))
  (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
"""
    assert out_bytes + OUT < 65536, "too many samples for page 0"
    body = rest.rstrip()
    assert body.endswith(")")
    return "\n".join([head, *imports, *data, body[:-1], start, ")"])


class WamrEngine:
    name = "wamr"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.tools = tools()
        self.dir = Path(tempfile.mkdtemp(prefix="tvm-bench-wamr-"))
        self.version = "unavailable"
        if self.tools is not None:
            try:
                out = subprocess.run([self.tools[1], "version"], capture_output=True, text=True, timeout=30,
                                     check=False).stdout
                self.version = out.strip() or "unknown"
            except (OSError, subprocess.SubprocessError) as exc:
                self.tools, self.version = None, f"cannot run: {exc}"
        if self.tools is not None and "guest" in cfg.variants:
            self.why_not = {**WHY_NOT, "guest": self._probe_guest()}
        else:
            self.why_not = dict(WHY_NOT)
        self.note = self._note()

    def _probe_guest(self) -> str:
        """Can wamrc compile the self-contained guest module at all? Say what happened."""
        assert self.tools is not None
        try:
            from ..guest import build_module
        except ImportError:
            return "the self-contained guest module is not in this build"
        wasm, cwasm = self.dir / "guest-probe.wasm", self.dir / "guest-probe.cwasm"
        wasm.write_bytes(build_module(pools=4).wasm)
        try:
            done = subprocess.run([self.tools[0], "compile", str(wasm), "-o", str(cwasm)], capture_output=True,
                                  text=True, timeout=300, check=False)
        except subprocess.TimeoutExpired:
            return "wamrc did not finish compiling the self-contained guest module within 5 minutes"
        if done.returncode != 0 or not cwasm.exists():
            how = "crashed with SIGSEGV" if done.returncode in (-11, 139) else f"failed (exit {done.returncode})"
            return f"wamrc {how} compiling the self-contained guest module (multi-memory, SIMD), so it cannot run here"
        return "wamrc compiles the guest module, but the WASI harness that creates its regions is not written yet"

    def _note(self) -> str:
        if self.tools is None:
            return ("not available: the wamr and wamrc commands (PyPI wamr-bin, wamrc-bin, both marked deprecated) "
                    "are not installed; pip install 'tvm-wasm[engines]'")
        return (f"{self.version} (PyPI wamr-bin/wamrc-bin 3.0.0.dev5, deprecated upstream), AOT via wamrc; runs m32 "
                "only: " + "; ".join(f"{v}: {why}" for v, why in self.why_not.items() if why))

    def run_kernel(self, kernel: Kernel, progress: Callable[[str], None]) -> list[Row]:
        rows = []
        for variant in self.cfg.variants:
            if variant == "native":
                continue
            row = Row(variant, kernel.cls, kernel.size_bytes, "wamr", self.cfg.seed)
            if self.tools is None:
                row.status, row.notes = "unavailable", [self.note]
            elif variant != "m32":
                row.status, row.notes = "unavailable", [self.why_not[variant]]
            else:
                progress(f"{kernel.cls} {kernel.size_bytes}: wamr m32")
                self._measure(kernel, row)
            rows.append(row)
        return rows

    def _measure(self, kernel: Kernel, row: Row) -> None:
        assert self.tools is not None
        cfg = self.cfg
        max_reps = min(arena_reps(kernel, cfg.arena_limit), 1 << 30)
        caps = arena_caps(kernel, max_reps)
        wat = command_wat(kernel, caps, samples=cfg.samples, warmup=cfg.warmup,
                          min_sample_ns=int(cfg.min_sample_s * 1e9), max_reps=max_reps)
        stem = self.dir / f"{kernel.cls}-{kernel.size_bytes}"
        wasm, cwasm = stem.with_suffix(".wasm"), stem.with_suffix(".cwasm")
        wasm.write_bytes(wasmtime.wat2wasm(wat))
        try:
            subprocess.run([self.tools[0], "compile", str(wasm), "-o", str(cwasm)], check=True, capture_output=True,
                           text=True, timeout=600)
            done = subprocess.run([self.tools[1], "run", str(cwasm)], check=True, capture_output=True, timeout=1800)
        except subprocess.CalledProcessError as exc:
            err = (exc.stderr or b"")
            err = err.decode(errors="replace") if isinstance(err, bytes) else err
            row.status, row.notes = "failed", [f"wamr failed: {err.strip()[:300]}"]
            return
        except subprocess.TimeoutExpired:
            row.status, row.notes = "failed", ["wamr timed out"]
            return
        out = done.stdout
        if len(out) != 8 + 16 * cfg.samples:
            row.status, row.notes = "failed", [f"wamr wrote {len(out)} bytes, expected {8 + 16 * cfg.samples}"]
            return
        reps = struct.unpack_from("<Q", out, 0)[0]
        pairs = [struct.unpack_from("<QQ", out, 8 + 16 * i) for i in range(cfg.samples)]
        want = (reps * kernel.expected) & MASK64
        wrong = [r for _, r in pairs if r != want]
        if wrong:
            row.status, row.notes = "failed", [f"wamr: wrong answer {wrong[0]} (expected {want})"]
            return
        row.raw_ns = [dt / reps for dt, _ in pairs]
        row.reps_per_sample, row.warmup, row.result = reps, cfg.warmup, kernel.expected
        row.notes.append("AOT (wamrc), timed inside wasm with WASI clock_time_get; explicit bounds checks")

    def finish(self, progress: Callable[[str], None]) -> list[Row]:
        shutil.rmtree(self.dir, ignore_errors=True)
        return []
