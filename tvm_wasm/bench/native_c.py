"""The ``native`` variant: the same kernel lowered to C, built with the system compiler at -O2.

It is the physical reference: no sandbox, no bounds checks, the compiler free
to vectorise. The C function times itself (``clock_gettime(CLOCK_MONOTONIC)``
around the repetition loop) and hands back the nanoseconds and the answer; it
is loaded with ctypes, so no process start or parsing sits inside a sample.
An empty ``asm volatile`` memory barrier at the top of every repetition keeps
the compiler from hoisting the kernel out of the repetition loop.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .ir import (
    I32,
    KINDS,
    Alloc,
    Bin,
    Const,
    Expr,
    For,
    If,
    Kernel,
    Load,
    Scan,
    Select,
    Set,
    Stmt,
    Store,
    Un,
    Var,
    While,
)
from .results import Row
from .stats import summarize  # noqa: F401  (re-exported for tests)

if TYPE_CHECKING:
    from .matrix import Config

CFLAGS = ["-O2", "-shared", "-fPIC", "-std=c11"]
C_TYPE = {"i32": "uint32_t", "i64": "uint64_t"}
C_OPS = {"add": "+", "sub": "-", "mul": "*", "and": "&", "or": "|", "xor": "^", "rem_u": "%", "div_u": "/",
         "eq": "==", "ne": "!=", "lt_u": "<", "le_u": "<=", "gt_u": ">", "ge_u": ">="}
MASK64 = (1 << 64) - 1

PRELUDE = """#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
static inline uint32_t ld_u8(const uint8_t *b, uint32_t a) { return b[a]; }
static inline uint32_t ld_u32(const uint8_t *b, uint32_t a) { uint32_t v; memcpy(&v, b + a, 4); return v; }
static inline uint64_t ld_u64(const uint8_t *b, uint32_t a) { uint64_t v; memcpy(&v, b + a, 8); return v; }
static inline void st_u8(uint8_t *b, uint32_t a, uint32_t v) { b[a] = (uint8_t)v; }
static inline void st_u32(uint8_t *b, uint32_t a, uint32_t v) { memcpy(b + a, &v, 4); }
static inline void st_u64(uint8_t *b, uint32_t a, uint64_t v) { memcpy(b + a, &v, 8); }
"""


def compiler() -> str | None:
    return shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


class CLowering:
    def __init__(self, kernel: Kernel, caps: dict[str, int]) -> None:
        self.k = kernel
        self.caps = caps

    def expr(self, e: Expr) -> str:
        if isinstance(e, Const):
            mask = 0xFFFF_FFFF if e.ty == I32 else MASK64
            suffix = "u" if e.ty == I32 else "ull"
            return f"(({C_TYPE[e.ty]}){e.value & mask}{suffix})"
        if isinstance(e, Var):
            return f"v_{e.name}"
        if isinstance(e, Bin):
            a, b = self.expr(e.a), self.expr(e.b)
            t = C_TYPE[e.a.ty]
            if e.op in ("shl", "shr_u"):
                bits = 31 if e.a.ty == I32 else 63
                op = "<<" if e.op == "shl" else ">>"
                return f"(({t})({a} {op} ({b} & {bits})))"
            if e.op in ("eq", "ne", "lt_u", "le_u", "gt_u", "ge_u"):
                return f"((uint32_t)({a} {C_OPS[e.op]} {b}))"
            return f"(({t})({a} {C_OPS[e.op]} {b}))"
        if isinstance(e, Un):
            a = self.expr(e.a)
            return {"extend_u": f"((uint64_t){a})", "wrap": f"((uint32_t){a})", "eqz": f"((uint32_t)({a} == 0))"}[e.op]
        if isinstance(e, Select):
            # Both sides evaluated and no branch, as wasm's ``select``: a C ``?:`` may compile to a branch
            t = C_TYPE[e.a.ty]
            mask = f"(({t})0 - ({t})({self.expr(e.cond)} != 0))"
            return f"((({self.expr(e.a)}) & {mask}) | (({self.expr(e.b)}) & ~{mask}))"
        if isinstance(e, Load):
            return f"ld_{e.kind}(B_{e.buf}, {self.expr(e.addr)})"
        if isinstance(e, Alloc):
            return f"alloc_{e.buf}({e.size}u)"
        raise TypeError(f"cannot lower {e!r}")

    def stmts(self, body: list[Stmt], pad: str) -> list[str]:
        return [line for s in body for line in self.stmt(s, pad)]

    def stmt(self, s: Stmt, pad: str) -> list[str]:
        if isinstance(s, Set):
            return [f"{pad}v_{s.var.name} = {self.expr(s.value)};"]
        if isinstance(s, Store):
            return [f"{pad}st_{s.kind}(B_{s.buf}, {self.expr(s.addr)}, {self.expr(s.value)});"]
        if isinstance(s, For):
            v = f"v_{s.var.name}"
            n = f"n_{id(s)}"
            return [f"{pad}{{ uint32_t {n} = {self.expr(s.count)};",
                    f"{pad}for ({v} = 0; {v} < {n}; {v}++) {{", *self.stmts(s.body, pad + "  "), f"{pad}}} }}"]
        if isinstance(s, While):
            return [f"{pad}while ({self.expr(s.cond)}) {{", *self.stmts(s.body, pad + "  "), f"{pad}}}"]
        if isinstance(s, If):
            lines = [f"{pad}if ({self.expr(s.cond)}) {{", *self.stmts(s.then, pad + "  ")]
            if s.else_:
                lines += [f"{pad}}} else {{", *self.stmts(s.else_, pad + "  ")]
            return [*lines, f"{pad}}}"]
        if isinstance(s, Scan):
            i = f"v_{s.index.name}"
            n = f"n_{id(s)}"
            loads = []
            for buf, kind, var in s.streams:
                width = KINDS[kind][0]
                loads.append(f"{pad}  v_{var.name} = ld_{kind}(B_{buf}, {i} * {width}u);")
            return [f"{pad}{{ uint32_t {n} = {self.expr(s.count)};",
                    f"{pad}for ({i} = 0; {i} < {n}; {i}++) {{", *loads, *self.stmts(s.body, pad + "  "),
                    f"{pad}}} }}"]
        raise TypeError(f"cannot lower {s!r}")

    def render(self) -> str:
        lines = [PRELUDE]
        for a in self.k.arenas:
            lines += [
                f"static uint32_t bump_{a.name};",
                f"static uint8_t *B_{a.name};",
                f"static inline uint32_t alloc_{a.name}(uint32_t size) {{",
                f"  uint32_t p = bump_{a.name}; bump_{a.name} += size;",
                f"  if (bump_{a.name} > {self.caps[a.name]}u) abort();",
                "  return p;",
                "}",
            ]
        lines.append("static uint64_t run(uint8_t **bufs, uint64_t reps) {")
        for k, b in enumerate(self.k.buffers):
            if b.access == "arena":
                lines.append(f"  B_{b.name} = bufs[{k}];")
            else:
                lines.append(f"  uint8_t *const B_{b.name} = bufs[{k}];")
        for name, ty in self.k.locals().items():
            lines.append(f"  {C_TYPE[ty]} v_{name} = 0;")
        lines += ["  uint64_t total = 0;", "  for (uint64_t r = 0; r < reps; r++) {",
                  '    __asm__ volatile("" ::: "memory");',
                  *self.stmts(self.k.body, "    "), f"    total += v_{self.k.result.name};", "  }", "  return total;", "}"]
        resets = " ".join(f"bump_{a.name} = 0;" for a in self.k.arenas)
        lines += [
            "int64_t bench(uint8_t **bufs, uint64_t reps, uint64_t *result) {",
            f"  {resets}",
            "  struct timespec t0, t1;",
            "  clock_gettime(CLOCK_MONOTONIC, &t0);",
            "  *result = run(bufs, reps);",
            "  clock_gettime(CLOCK_MONOTONIC, &t1);",
            "  return (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);",
            "}",
        ]
        return "\n".join(lines) + "\n"


_build_dir: Path | None = None


def build(source: str) -> ctypes.CDLL:
    global _build_dir
    cc = compiler()
    assert cc is not None
    if _build_dir is None:
        _build_dir = Path(tempfile.mkdtemp(prefix="tvm-bench-native-"))
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    src, lib = _build_dir / f"k{digest}.c", _build_dir / f"k{digest}.so"
    if not lib.exists():
        src.write_text(source)
        subprocess.run([cc, *CFLAGS, "-o", str(lib), str(src)], check=True, capture_output=True, text=True)
    dll = ctypes.CDLL(str(lib))
    dll.bench.restype = ctypes.c_int64
    dll.bench.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint64)]
    return dll


def compiler_version() -> str:
    cc = compiler()
    if cc is None:
        return "none"
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
        return out.splitlines()[0].strip() if out else cc
    except (OSError, subprocess.SubprocessError):
        return cc


def run_native(kernel: Kernel, cfg: Config) -> Row:
    from .wasmtime_runner import arena_caps, arena_reps

    row = Row("native", kernel.cls, kernel.size_bytes, "native", cfg.seed)
    if compiler() is None:
        row.status, row.notes = "unavailable", ["no C compiler on this machine (cc/gcc/clang): native reference skipped"]
        return row
    max_reps = arena_reps(kernel, cfg.arena_limit)
    caps = arena_caps(kernel, max_reps)
    try:
        dll = build(CLowering(kernel, caps).render())
    except subprocess.CalledProcessError as exc:
        row.status, row.notes = "failed", [f"C build failed: {exc.stderr.strip()[:300]}"]
        return row
    arrays = []
    for b in kernel.buffers:
        if b.access == "arena":
            arrays.append(np.zeros(caps[b.name] + 8, dtype=np.uint8))
        else:
            arrays.append(np.frombuffer(b.data or bytes(b.size), dtype=np.uint8).copy())
    ptrs = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
    result = ctypes.c_uint64()

    def call(reps: int) -> int:
        ns = int(dll.bench(ptrs, reps, ctypes.byref(result)))
        if result.value != (reps * kernel.expected) & MASK64:
            raise AssertionError(f"native {kernel.cls}: wrong answer {result.value} for {reps} repetitions")
        return ns

    try:
        reps = 1
        while reps < max_reps and call(reps) < cfg.min_sample_s * 1e9:
            reps = min(max_reps, reps * 2)
        for _ in range(cfg.warmup):
            call(reps)
        row.raw_ns = [call(reps) / reps for _ in range(cfg.samples)]
    except AssertionError as exc:
        row.status, row.notes = "failed", [str(exc)]
        return row
    row.warmup, row.reps_per_sample, row.result = cfg.warmup, reps, kernel.expected
    row.call_overhead_pct = 0.0
    row.notes.append(f"C {' '.join(CFLAGS[:1])} ({compiler_version()}), self-timed with clock_gettime")
    return row


PROBE_C = PRELUDE + """
int64_t bench(const uint8_t *ws, const uint64_t *addrs, uint64_t n, uint64_t reps, uint64_t *result) {
  struct timespec t0, t1;
  uint64_t total = 0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (uint64_t r = 0; r < reps; r++) {
    __asm__ volatile("" ::: "memory");
    for (uint64_t i = 0; i < n; i++) { uint64_t v; memcpy(&v, ws + addrs[i], 8); total += v; }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  *result = total;
  return (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
}
"""


def run_native_probes(addrs: np.ndarray, values: np.ndarray, expected: int, size: int, cfg: Config) -> Row:
    """beyond_4gib in C: the same probes over a sparse ``size``-byte allocation (only probed pages touched)."""
    row = Row("native", "beyond_4gib", size, "native", cfg.seed)
    if compiler() is None:
        row.status, row.notes = "unavailable", ["no C compiler on this machine (cc/gcc/clang): native reference skipped"]
        return row
    dll = build(PROBE_C)
    dll.bench.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64,
                          ctypes.POINTER(ctypes.c_uint64)]
    ws = np.zeros(size // 8, dtype=np.uint64)  # calloc: pages are mapped on first touch only
    ws[(addrs // 8).astype(np.int64)] = values
    probe_addrs = np.ascontiguousarray(addrs, dtype=np.uint64)
    result = ctypes.c_uint64()

    def call(reps: int) -> int:
        ns = int(dll.bench(ws.ctypes.data, probe_addrs.ctypes.data, len(probe_addrs), reps, ctypes.byref(result)))
        if result.value != (reps * expected) & MASK64:
            raise AssertionError(f"native beyond_4gib: wrong answer {result.value}")
        return ns

    try:
        reps = 1
        while call(reps) < cfg.min_sample_s * 1e9:
            reps *= 2
        for _ in range(cfg.warmup):
            call(reps)
        row.raw_ns = [call(reps) / reps for _ in range(cfg.samples)]
    except AssertionError as exc:
        row.status, row.notes = "failed", [str(exc)]
        return row
    row.warmup, row.reps_per_sample, row.result, row.call_overhead_pct = cfg.warmup, reps, expected, 0.0
    row.notes.append(f"C {CFLAGS[0]} ({compiler_version()}): one sparse 6 GiB allocation, self-timed")
    return row
