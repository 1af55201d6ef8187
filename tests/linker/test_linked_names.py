"""A linked module keeps a name section: traps, tracebacks and typed errors name the user's and the runtime's functions.

Binaryen drops names unless asked (``--debuginfo``); the linker asks, and names the runtime's functions
``tvm.<name>`` before the merge, so a typed error read from the trap-cause globals can name the user
function the bad access happened in (``abi.trap_cause.user_function``), and a trap of the program's own
names its function rather than ``wasm function 220``: both targets, ``tvm-wasm run`` and Python.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from c_guests import clang

from tvm_wasm import OutOfBounds, TvmHost
from tvm_wasm.abi.trap_cause import RUNTIME_FUNCTION_PREFIX
from tvm_wasm.guest import GuestInstance
from tvm_wasm.linker import link
from tvm_wasm.linker.names import function_names, prefix_function_names

SCRIBBLE_C = r"""
#include <stdint.h>
#define TVM(name) __attribute__((import_module("tvm"), import_name(#name)))
TVM(create_region) int32_t tvm_create_region(int32_t kind, int32_t capacity);
TVM(alloc) int64_t tvm_alloc(int32_t region, int32_t size);
TVM(store_u32) void tvm_store_u32(int64_t h, int32_t off, uint32_t v);
/* writes n u32s from the block's start: past the 4096-byte region when n > 1024 */
__attribute__((noinline)) void scribble_records(int64_t h, int n) { for (int i = 0; i < n; i++) tvm_store_u32(h, i * 4, i); }
__attribute__((noinline)) int divide_counts(int a, int b) { return a / b; }
int main(int argc, char **argv) {
  int32_t r = tvm_create_region(1, 4096);
  int64_t h = tvm_alloc(r, 64);
  if (argc > 1 && argv[1][0] == 'd') { volatile int zero = argc - 2; return divide_counts(100, zero); }
  scribble_records(h, 2000 + argc);
  return 0;
}
__attribute__((export_name("scribble"))) void scribble(int n) {
  int32_t r = tvm_create_region(1, 4096);
  scribble_records(tvm_alloc(r, 64), n);
}
"""


@pytest.fixture(scope="module")
def user(tmp_path_factory) -> bytes:
    return clang(SCRIBBLE_C, tmp_path_factory.mktemp("names") / "scribble.wasm", target="wasm32-wasi")


@pytest.fixture(scope="module")
def guest(binaryen, user, tmp_path_factory):
    path = tmp_path_factory.mktemp("linked") / "scribble.guest.wasm"
    path.write_bytes(link(user, target="guest", pools=1, max_pages=16).wasm)
    return path


def run_cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tvm_wasm.cli", "run", *map(str, args)], capture_output=True,
                          text=True, check=False, timeout=300)


@pytest.mark.parametrize("target", ["guest", "host"])
def test_the_linked_module_names_user_and_runtime_functions(binaryen, user, target):
    names = set(function_names(link(user, target=target, pools=1, inline_runtime=False).wasm).values())
    assert {"scribble_records", "divide_counts"} <= names
    assert {f"{RUNTIME_FUNCTION_PREFIX}alloc", f"{RUNTIME_FUNCTION_PREFIX}check_handle"} <= names
    assert not any(n.startswith(RUNTIME_FUNCTION_PREFIX) for n in function_names(user).values())


def test_tvm_wasm_run_names_the_user_function_of_a_bad_access(guest):
    done = run_cli(guest)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("tvm-wasm: error: OutOfBounds: store_u32(") and "(in scribble_records) [region=1" in line, line


def test_a_programs_own_trap_names_its_function_on_both_targets(guest, user, tmp_path):
    done = run_cli(guest, "div")
    assert done.returncode == 1 and done.stderr.strip().endswith("integer divide by zero (in divide_counts)"), done.stderr
    source = tmp_path / "scribble.wasm"
    source.write_bytes(user)
    done = run_cli("--inline", source, "div")  # the host target, linked and inlined by TvmHost
    assert done.returncode == 1 and "integer divide by zero (in " in done.stderr
    assert "wasm function" not in done.stderr, done.stderr


SCRIBBLE_WAT = """(module
  (import "tvm" "create_region" (func $create_region (param i32 i32) (result i32)))
  (import "tvm" "alloc" (func $alloc (param i32 i32) (result i64)))
  (import "tvm" "store_u32" (func $store_u32 (param i64 i32 i32)))
  (func $scribble_records (param $h i64) (param $n i32) (local $i i32)
    (loop $next
      (call $store_u32 (local.get $h) (i32.shl (local.get $i) (i32.const 2)) (local.get $i))
      (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n)))))
  (func (export "scribble") (param $n i32)
    (call $scribble_records (call $alloc (call $create_region (i32.const 1) (i32.const 4096)) (i32.const 64))
                            (local.get $n))))"""


def test_python_embedders_name_it_too(guest, binaryen):
    with TvmHost(pools=1) as host:
        instance = host.instantiate(guest.read_bytes(), wasi=True)
        with pytest.raises(OutOfBounds, match=r"\(in scribble_records\) \[region="):
            host.call(instance, "scribble", 2000)
    g = GuestInstance(link(SCRIBBLE_WAT, target="guest", pools=1, max_pages=16).wasm)
    try:
        with pytest.raises(OutOfBounds, match=r"\(in scribble_records\) \[region="):
            g.raw("scribble", 2000)
        assert g.raw("scribble", 1000) is None  # in bounds: no error
    finally:
        g.close()


def test_prefixing_names_keeps_every_other_byte():
    import wasmtime

    wasm = bytes(wasmtime.wat2wasm('(module (func $a) (func $b (export "b")) (memory 1))'))
    renamed = prefix_function_names(wasm)
    assert function_names(renamed) == {0: f"{RUNTIME_FUNCTION_PREFIX}a", 1: f"{RUNTIME_FUNCTION_PREFIX}b"}
    assert prefix_function_names(bytes(wasmtime.wat2wasm("(module)"))) == bytes(wasmtime.wat2wasm("(module)"))
