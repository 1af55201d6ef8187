"""One component guest's failure never takes down the process, the host or other guests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from wasmtime.component import Component
from wit_guests import RAW_WAT, Wit, ok

from tvm_wasm import Handle, RegionKind
from tvm_wasm.host.component_build import build_component
from tvm_wasm.host.component_errors import GuestTrapped

TRAP_WIT = """package tvm:test;

world trapper {
    include tvm:memory/imports@0.1.0;
    export boom: func();
    export deep: func();
    export fine: func() -> u32;
}
"""
TRAP_WAT = """(module
  (memory (export "cm32p2_memory") 1)
  (func (export "cm32p2||boom") unreachable)
  (func $deep (export "cm32p2||deep") call $deep)
  (func (export "cm32p2||fine") (result i32) (i32.const 7))
)"""


@pytest.fixture(scope="module")
def trapper(build_dir: Path, engine) -> Component:
    return Component(engine, build_component(TRAP_WAT, "trapper", build_dir / "trapper", extra_wit=TRAP_WIT))


def test_a_trap_disables_only_the_guest_that_trapped(host, trapper, make_wit):
    before = make_wit(host)  # a guest created before the trap
    rid = ok(before.manager("create-region", "blob-arena", 64))
    h = ok(before.manager("alloc", rid, 4))
    ok(before.bytes("write", h, b"kept"))
    bad = host.instantiate_component(trapper)
    sibling = host.instantiate_component(trapper)  # same component, other instance
    assert bad.call("fine") == 7
    with pytest.raises(GuestTrapped, match="boom trapped: .*unreachable") as trapped:
        bad.call("boom")
    assert "unreachable" in trapped.value.trap
    with pytest.raises(GuestTrapped, match="trapped earlier"):
        bad.call("fine")  # the trapped guest stays closed, with a typed error
    assert sibling.call("fine") == 7
    assert ok(before.bytes("read", h, 4)) == b"kept"
    after = make_wit(host)  # and guests created afterwards
    assert ok(after.bytes("read", h, 4)) == b"kept"
    assert host.read(Handle.unpack(Handle(rid, 1, 0).to_i64()), 4) == b"kept"  # the Python API
    raw = host.instantiate(RAW_WAT)  # and raw-ABI guests
    assert host.call(raw, "read_sum", Handle(rid, 1, 0).to_i64(), 4) == 0x100 | (sum(b"kept") & 0xFF)
    assert host.create_region(RegionKind.SCRATCH, 16) > 0


def test_stack_exhaustion_ends_only_that_guest(host, trapper, make_wit):
    neighbour = make_wit(host)
    deep = host.instantiate_component(trapper)
    with pytest.raises(GuestTrapped, match="stack"):
        deep.call("deep")
    assert host.instantiate_component(trapper).call("fine") == 7
    assert ok(neighbour.manager("create-region", "scratch", 16)) > 0


def test_a_template_guest_carries_on_after_another_guest_traps(host, trapper, python_guest):
    guest = host.instantiate_component(python_guest, wasi=True)
    with pytest.raises(GuestTrapped):
        host.instantiate_component(trapper).call("boom")
    stashed = guest.call("stash", b"alive", raise_errors=True)
    assert guest.call("repeat", "read", stashed, stashed, 5, 1, raise_errors=True) == ord("a")


SCRIPT = """
import sys
import wasmtime
from tvm_wasm import TvmHost
from tvm_wasm.host.component_errors import WasiNotConfigured

path, cache = sys.argv[1], sys.argv[2]
host = TvmHost()
linker = host.component_linker()
linker.add_wasip2()  # WASI in the linker, none configured for the store
try:
    guest = host.instantiate_component(path, linker=linker, cache_dir=cache)
    guest.call("stash", b"x")
    print("ran without WASI configured")
except WasiNotConfigured as exc:
    print("refused:", exc)
guest = host.instantiate_component(path, linker=linker, wasi=True, cache_dir=cache)  # the host sets up what it added
handle = guest.call("stash", b"ok", raise_errors=True)
print("called:", host.read(handle, 2))
"""


def test_wasi_in_the_linker_without_a_configuration_is_refused_not_an_abort(python_guest_path, compiled_dir, tmp_path):
    """Once: the process aborted (exit 134) inside wasmtime's C API. Run apart, so a regression
    cannot take pytest down with it."""
    script = tmp_path / "abort_probe.py"
    script.write_text(textwrap.dedent(SCRIPT))
    done = subprocess.run(
        [sys.executable, str(script), str(python_guest_path), str(compiled_dir)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    lines = done.stdout.splitlines()
    assert lines[0].startswith("refused:") and "wasi=True" in lines[0], lines
    assert lines[1] == "called: b'ok'", lines


def test_proxy_guests_in_one_host_have_stores_of_their_own(host, make_wit):
    first, second = make_wit(host), make_wit(host)
    assert first.guest.store is not second.guest.store and first.guest.store is not host.store
    assert isinstance(first, Wit)


def test_an_uncaught_exception_in_a_python_guest_ends_only_that_guest(host, crasher, python_guest, make_wit):
    """The field report's input: a componentize-py guest raises; other guests and regions carry on,
    and the error says what the guest printed (its traceback) before it trapped."""
    neighbour = host.instantiate_component(python_guest, wasi=True)
    kept = neighbour.call("stash", b"neighbour", raise_errors=True)
    doomed = host.instantiate_component(crasher, wasi=True)
    with pytest.raises(GuestTrapped) as trapped:
        doomed.call("crash", "deliberate failure")
    assert "about to fail: deliberate failure" in trapped.value.stderr
    assert "RuntimeError: deliberate failure" in trapped.value.stderr  # the guest's own traceback
    assert "RuntimeError: deliberate failure" in str(trapped.value)
    with pytest.raises(GuestTrapped, match="trapped earlier"):
        doomed.call("region-count")
    assert host.read(kept, 9) == b"neighbour"  # regions carry on, including the one the guest made
    assert len(host.list_regions()) == 2
    assert neighbour.call("repeat", "read", kept, kept, 1, 1, raise_errors=True) == ord("n")
    again = host.instantiate_component(crasher, wasi=True)  # the same component, instantiated anew
    assert again.call("region-count") == 2
    assert ok(make_wit(host).bytes("read", kept, 9)) == b"neighbour"
