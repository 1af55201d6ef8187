"""Guests compiled from C (freestanding wasm32 and wasm32-wasi) and Rust against the shipped SDK,
run on TvmHost and on the self-contained module with the same results.

The sources are the documented examples (tvm_wasm/sdk/examples, shipped). Compilers are real:
Debian's clang 14 + lld (+ wasi-libc for WASI) and rustc 1.63 with the wasm32
standard library; a test skips only when its compiler is not installed.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest
import wasmtime

from tvm_wasm import OutOfBounds, get_include
from tvm_wasm.sdk import get_rust_bindings

EXAMPLES = Path(__file__).resolve().parents[2] / "tvm_wasm" / "sdk" / "examples"  # shipped in the wheel
RUSTC = "/usr/bin/rustc"
EXPECTED = sum(3 * i for i in range(16))  # what run(16) returns


def clang_can(target: str) -> bool:
    if not shutil.which("clang") or not shutil.which("wasm-ld"):
        return False
    probe = subprocess.run(["clang", f"--target={target}", "-x", "c", "-c", "-o", "/dev/null", "-"],
                           input=b"#include <stdint.h>\nint x;", capture_output=True)
    return probe.returncode == 0


def rustc_can() -> bool:
    return Path(RUSTC).exists() and subprocess.run(
        [RUSTC, "--target", "wasm32-unknown-unknown", "--print", "sysroot"], capture_output=True).returncode == 0 and any(
        Path(subprocess.run([RUSTC, "--print", "sysroot"], capture_output=True, text=True).stdout.strip(),
             "lib/rustlib/wasm32-unknown-unknown/lib").glob("libcore-*"))


C_FLAGS = {
    "wasm32": ["--target=wasm32", "-nostdlib", "-Wl,--no-entry"],
    "wasm32-wasi": ["--target=wasm32-wasi", "-mexec-model=reactor"],
}


@functools.cache
def build_c(target: str, out_dir: str) -> bytes:
    out = Path(out_dir) / f"regions-{target}.wasm"
    cmd = ["clang", *C_FLAGS[target], "-O2", "-Wall", "-Wextra", "-Werror", "-Wl,--import-memory",
           f"-I{get_include()}", str(EXAMPLES / "hello_regions.c"), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out.read_bytes()


@functools.cache
def build_rust(out_dir: str) -> bytes:
    out = Path(out_dir) / "hello-rs.wasm"
    cmd = [RUSTC, "--target", "wasm32-unknown-unknown", "--crate-type", "cdylib", "-O", "-D", "warnings",
           "-C", "link-arg=--import-memory", str(EXAMPLES / "hello_regions.rs"), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out.read_bytes()


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("guests"))


def guest_binary(kind: str, out_dir: str) -> bytes:
    if kind == "rust":
        if not rustc_can():
            pytest.skip(f"{RUSTC} with the wasm32-unknown-unknown standard library is not installed "
                        "(apt-get install rustc libstd-rust-dev-wasm32)")
        return build_rust(out_dir)
    if not clang_can(kind):
        pytest.skip(f"clang cannot build for {kind} here (apt-get install clang lld"
                    f"{' wasi-libc libclang-rt-14-dev-wasm32' if kind.endswith('wasi') else ''})")
    return build_c(kind, out_dir)


KINDS = ["wasm32", "wasm32-wasi", "rust"]


def test_the_rust_example_uses_the_shipped_bindings():
    text = (EXAMPLES / "hello_regions.rs").read_text()
    assert (EXAMPLES / "../rust/tvm.rs").resolve() == Path(get_rust_bindings()).resolve()
    assert '#[path = "../rust/tvm.rs"]' in text  # the same relative place in a checkout and an installed wheel


@pytest.mark.parametrize("kind", KINDS)
def test_guest_runs_on_the_host(kind, out_dir, make_host):
    wasm = guest_binary(kind, out_dir)
    imports = {(i.module, i.name) for i in wasmtime.Module(wasmtime.Engine(), wasm).imports}
    assert {m for m, _ in imports} == {"tvm", "env"}, imports  # tvm.* and env.memory, nothing else
    host = make_host()
    guest = host.instantiate(wasm)
    assert host.call(guest, "run", 16) == EXPECTED
    assert host.list_regions() == []  # the guest destroyed what it created
    # a trap names what was accessed, whoever calls the export
    r = host.create_region(1, 64)
    h = host.alloc(r, 8)
    with pytest.raises(OutOfBounds) as info:
        guest.exports(host.store)["oob"](host.store, h.to_i64())
    assert (info.value.offset, info.value.length, info.value.capacity) == (1 << 20, 4, 64)


@pytest.mark.parametrize("kind", KINDS)
def test_guest_runs_on_the_self_contained_module(kind, out_dir, make_guest):
    wasm = guest_binary(kind, out_dir)
    g = make_guest()
    user = g.link(wasm)
    assert g.call(user, "run", 16) == EXPECTED
    assert g.region_count() == 0
    r = g.create_region(1, 64)
    h = g.alloc(r, 8)
    with pytest.raises(OutOfBounds) as info:
        g.call(user, "oob", h.to_i64())
    assert (info.value.offset, info.value.length, info.value.capacity) == (1 << 20, 4, 64)


def test_a_guest_with_its_own_memory_is_refused_by_the_module(out_dir, make_guest):
    if not clang_can("wasm32"):
        pytest.skip("clang cannot build for wasm32 here (apt-get install clang lld)")
    out = Path(out_dir) / "own-memory.wasm"
    subprocess.run(["clang", *C_FLAGS["wasm32"], "-O2", f"-I{get_include()}", str(EXAMPLES / "hello_regions.c"),
                    "-o", str(out)], check=True, capture_output=True)
    g = make_guest()
    with pytest.raises(ValueError, match="import-memory"):
        g.link(out.read_bytes())


def test_header_compiles_as_cxx_and_without_optimisation(out_dir):
    if not clang_can("wasm32"):
        pytest.skip("clang cannot build for wasm32 here (apt-get install clang lld)")
    src = Path(out_dir) / "all.cc"
    src.write_text('#include <tvm.h>\nTVM_POOL_ACCESSORS(0)\nTVM_POOL_ACCESSORS(3)\n'
                   'extern "C" __attribute__((export_name("f"))) uint32_t f(tvm_handle h) '
                   '{ return tvm_load_u32_p3(h, 0) + (uint32_t)tvm_handle_offset(tvm_handle_add(h, 4)); }\n')
    subprocess.run(["clang++", "--target=wasm32", "-nostdlib", "-Wl,--no-entry", "-O0", "-Wall", "-Wextra",
                    "-Werror", f"-I{get_include()}", str(src), "-o", str(Path(out_dir) / "all.wasm")],
                   check=True, capture_output=True)
    imports = {(i.module, i.name) for i in wasmtime.Module(wasmtime.Engine(), (Path(out_dir) / "all.wasm").read_bytes()).imports}
    assert ("tvm", "load_u32_p3") in imports
