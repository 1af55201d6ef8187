"""A module linked with ``--target guest`` and run with ``tvm-wasm run`` (or ``TvmHost.run_command`` /
``TvmHost.call``) reports a bad access as its typed error, read from the module's trap-cause
globals, as ``GuestInstance`` and a guest on the host do: never a bare ``unreachable`` trap line."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime
from c_guests import TVM_ACCESS_C, clang

from tvm_wasm import OutOfBounds, StaleHandle, TvmHost
from tvm_wasm.linker import link

BAD_ACCESS_C = "#include <stdio.h>\n" + TVM_ACCESS_C + r"""
static int64_t kept;
/* argv[1]: "oob" stores past the region's end, "stale" loads through a destroyed region's handle */
int main(int argc, char **argv) {
  int32_t r = tvm_create_region(1, 4096);
  kept = tvm_alloc(r, 64);
  tvm_store_u32(kept, 0, 7);
  printf("stored %u\n", tvm_load_u32(kept, 0));
  fflush(stdout);
  if (argc > 1 && argv[1][0] == 'o') tvm_store_u32(kept, 5000, 1);
  if (argc > 1 && argv[1][0] == 's') { tvm_destroy_region(r); return (int)tvm_load_u32(kept, 0); }
  if (argc > 1 && argv[1][0] == 'd') { volatile int zero = argc - 2; return 100 / zero; }  /* the program's own trap */
  return 0;
}
__attribute__((export_name("load_stale"))) uint32_t load_stale(void) {
  int32_t r = tvm_create_region(1, 4096);
  int64_t h = tvm_alloc(r, 8);
  tvm_destroy_region(r);
  return tvm_load_u32(h, 0);
}
"""


@functools.cache
def _linked(folder: Path) -> Path:
    wasm = clang(BAD_ACCESS_C, folder / "bad.wasm", target="wasm32-wasi")
    out = folder / "bad.guest.wasm"
    out.write_bytes(link(wasm, target="guest", pools=1, max_pages=16).wasm)
    return out


@pytest.fixture(scope="module")
def linked(binaryen, tmp_path_factory) -> Path:
    return _linked(tmp_path_factory.mktemp("bad-access"))


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tvm_wasm.cli", "run", *map(str, args)], capture_output=True,
                          text=True, check=False, timeout=300)


@pytest.mark.parametrize(("arg", "error", "detail"), [
    ("oob", "OutOfBounds", "accessing 4 byte(s) at offset 0x1388"),
    ("stale", "StaleHandle", "accessing 4 byte(s) at offset 0x0"),
])
def test_tvm_wasm_run_prints_the_typed_error_and_exits_1(linked, arg, error, detail):
    done = run_cli(linked, arg)
    assert done.returncode == 1, done.stderr
    assert done.stdout == "stored 7\n"  # the program ran up to the bad access
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"tvm-wasm: error: {error}: ") and detail in line, line
    assert "unreachable" not in line and "Traceback" not in done.stderr


def test_the_programs_own_traps_stay_traps(linked):
    done = run_cli(linked, "div")
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("tvm-wasm: error: trap: ") and "divide by zero" in line, line


def test_invoke_reports_the_typed_error_too(linked):
    done = run_cli("--invoke", "load_stale", linked)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("tvm-wasm: error: StaleHandle: load_u32("), line


def test_the_python_runner_raises_the_typed_error(linked, tmp_path):
    wasm = linked.read_bytes()
    for arg, error in (("oob", OutOfBounds), ("stale", StaleHandle)):
        config = wasmtime.WasiConfig()
        config.argv = ["bad", arg]
        config.stdout_file = str(tmp_path / "out.txt")
        with TvmHost(pools=1) as host, pytest.raises(error) as caught:
            host.run_command(wasm, wasi=config)
        assert caught.value.region_id == 1 and isinstance(caught.value.__cause__, wasmtime.Trap)
    with TvmHost(pools=1) as host:
        config = wasmtime.WasiConfig()
        config.stdout_file = str(tmp_path / "out.txt")
        instance = host.instantiate(wasm, wasi=config)
        with pytest.raises(StaleHandle):  # host.call, as --invoke uses it
            host.call(instance, "load_stale")
        config = wasmtime.WasiConfig()
        config.argv = ["bad"]
        config.stdout_file = str(tmp_path / "out.txt")
        assert host.run_command(wasm, wasi=config) == 0  # a clean run is a clean run
