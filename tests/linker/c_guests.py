"""C guests for the linker tests, built with the real clang (skipped, saying why, when it is missing)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FILL_SUM_C = r"""
#include <stdint.h>
#define TVM(name) __attribute__((import_module("tvm"), import_name(#name)))
TVM(alloc) int64_t tvm_alloc(int32_t region, int32_t size);
TVM(write) int32_t tvm_write(int64_t h, int32_t src, int32_t len);
TVM(read) int32_t tvm_read(int64_t h, int32_t dst, int32_t len);
TVM(load_u32) uint32_t tvm_load_u32(int64_t h, int32_t off);
static uint8_t buf[65536];
static uint8_t back[65536];
static uint8_t big[1 << 20];   /* .bss: makes the module declare 18+ pages */
const char greeting[] = "linked";

/* Fill n bytes, write them into a new block of `region`, sum them back as u32 loads; ~0 on error. */
__attribute__((export_name("fill_sum"))) uint32_t fill_sum(int32_t region, int32_t n) {
  int64_t h = tvm_alloc(region, n);
  if (h == 0) return 0xFFFFFFFEu;
  for (int i = 0; i < n; i++) buf[i] = (uint8_t)(i * 7 + greeting[i % 6]);
  big[n] = 1;
  if (tvm_write(h, (int32_t)(uintptr_t)buf, n)) return 0xFFFFFFFFu;
  uint32_t s = 0;
  for (int i = 0; i + 4 <= n; i += 4) s += tvm_load_u32(h, i);
  return s;
}
/* read the block back into guest memory and compare with what was written */
__attribute__((export_name("round_trip"))) int32_t round_trip(int64_t h, int32_t n) {
  if (tvm_read(h, (int32_t)(uintptr_t)back, n)) return -1;
  for (int i = 0; i < n; i++) if (back[i] != buf[i]) return i + 1;
  return 0;
}
__attribute__((export_name("greeting_byte"))) int32_t greeting_byte(int32_t i) { return greeting[i]; }
"""

# A freestanding C guest's region lifecycle and u32 access through handles (five raw ABI imports).
TVM_ACCESS_C = r"""
#include <stdint.h>
#define TVM(name) __attribute__((import_module("tvm"), import_name(#name)))
TVM(create_region) int32_t tvm_create_region(int32_t kind, int32_t capacity);
TVM(destroy_region) int32_t tvm_destroy_region(int32_t id);
TVM(alloc) int64_t tvm_alloc(int32_t region, int32_t size);
TVM(store_u32) void tvm_store_u32(int64_t h, int32_t off, uint32_t v);
TVM(load_u32) uint32_t tvm_load_u32(int64_t h, int32_t off);
"""

# What a WASI C command needs to make a region and reach it through handles (the four raw ABI imports).
WASI_PRELUDE_C = r"""
#include <stdint.h>
#include <stdio.h>
#define TVM(name) __attribute__((import_module("tvm"), import_name(#name)))
TVM(create_region) int32_t tvm_create_region(int32_t kind, int32_t capacity);
TVM(alloc) int64_t tvm_alloc(int32_t region, int32_t size);
TVM(store_u32) void tvm_store_u32(int64_t h, int32_t off, uint32_t v);
TVM(load_u32) uint32_t tvm_load_u32(int64_t h, int32_t off);
"""

WASI_C = WASI_PRELUDE_C + r"""
int main(void) {
  int32_t r = tvm_create_region(1, 4096);
  int64_t h = tvm_alloc(r, 64);
  uint32_t s = 0;
  for (int i = 0; i < 16; i++) tvm_store_u32(h, 4 * i, i * i);
  for (int i = 0; i < 16; i++) s += tvm_load_u32(h, 4 * i);
  printf("region %d sum %u\n", r, s);
  return 0;
}
"""

# A WASI command with an import of its own: argv[1] records summed through handles, reported through
# env.report and printed; exit status argv[2]
WASI_COMMAND_C = WASI_PRELUDE_C + r"""
#include <stdlib.h>
__attribute__((import_module("env"), import_name("report"))) void report(uint32_t value);
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 4;
  int32_t r = tvm_create_region(1, 1 << 16);
  int64_t h = tvm_alloc(r, 4 * n);
  uint32_t s = 0;
  for (int i = 0; i < n; i++) tvm_store_u32(h, 4 * i, 3 * i + 1);
  for (int i = 0; i < n; i++) s += tvm_load_u32(h, 4 * i);
  report(s);
  printf("records %d sum %u\n", n, s);
  return argc > 2 ? atoi(argv[2]) : 0;
}
"""


def expected_fill_sum(n: int) -> int:
    data = bytes((i * 7 + b"linked"[i % 6]) & 0xFF for i in range(n))
    return sum(int.from_bytes(data[i : i + 4], "little") for i in range(0, n - 3, 4)) & 0xFFFF_FFFF


def clang(source: str, out: Path, *flags: str, target: str = "wasm32") -> bytes:
    compiler = shutil.which("clang")
    if compiler is None:
        pytest.skip("clang is not installed (Debian's clang and lld build the C guests)")
    src = out.with_suffix(".c")
    src.write_text(source)
    base = [compiler, f"--target={target}", "-O2", "-o", str(out), str(src)]
    if target == "wasm32":
        base += ["-nostdlib", "-Wl,--no-entry"]
    done = subprocess.run([*base, *flags], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        if target != "wasm32" and "wasi" in done.stderr.lower():
            pytest.skip(f"no wasm32-wasi sysroot (Debian's wasi-libc): {done.stderr[:200]}")
        raise RuntimeError(done.stderr)
    return out.read_bytes()
