"""Kind: a user module's refused import reads the same on every entry point that links it.

``tvm-wasm link`` (both targets), ``TvmHost.instantiate`` (plain and
``inline=True``), ``GuestInstance.link`` and ``tvm-guest.js``'s ``link`` (in
headless Chromium: the module needs multi-memory, which Node 20 lacks) share one
classification (``abi.imports.refused_import``): each row below is refused with
``LinkRefused`` (a ``TvmError``) and one message, the same string everywhere.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources

import pytest
import wasmtime

from tvm_wasm import TvmError, TvmHost
from tvm_wasm.cli import main
from tvm_wasm.guest import BROWSER_MAX_PAGES, BROWSER_META_MAX_PAGES, GuestInstance, build_module
from tvm_wasm.guest.browser import run_in_chromium
from tvm_wasm.linker import link
from tvm_wasm.runtime.link_errors import LinkRefused

POOLS = 2
# (row, user module, the message every entry point gives)
ROWS = [
    ("a runtime internal function", '(module (import "tvm" "copy_in" (func (param i32 i32 i32) (result i32))))',
     "import tvm.copy_in: copy_in is a runtime internal, not an ABI function: user code reaches the runtime only "
     "through the ABI"),
    ("the write barrier", '(module (import "tvm" "write_barrier" (func (param i32))))',
     "import tvm.write_barrier: write_barrier is a runtime internal, not an ABI function: user code reaches the "
     "runtime only through the ABI"),
    ("the bridge table", '(module (import "tvm" "bridge" (table 5 funcref)))',
     "import tvm.bridge: user modules may import functions and their memory only, not a table"),
    ("an ABI function as a global", '(module (import "tvm" "last_error" (global (mut i32))))',
     "import tvm.last_error: user modules may import functions and their memory only, not a global"),
    ("an ABI function with another signature", '(module (import "tvm" "load_u32" (func (param i32 i32) (result i32))))',
     "import tvm.load_u32: signature (i32 i32) -> (i32) does not match the runtime's (i64 i32) -> (i32)"),
    ("a pool", '(module (import "tvm" "mem0" (memory 1)))',
     "import tvm.mem0: a user module may import only its own memory (as env.memory or tvm.memory), never a pool "
     "or the directory"),
    ("a second memory", '(module (import "env" "memory" (memory 1)) (memory 1))',
     "the user module declares 2 memories; a linked module has one user memory (the pools are reached only "
     "through tvm.*)"),
]
# rows whose answer depends on the deployment: the guest side's words (the host serves checkpoint_add)
GUEST_ROWS = [
    ("a host-only function", '(module (import "tvm" "checkpoint_add" (func (param i32) (result i32))))',
     "import tvm.checkpoint_add: checkpoint_add is a host-only ABI function"),
    ("a pool the module lacks", '(module (import "tvm" "load_u8_p5" (func (param i64 i32) (result i32))))',
     "import tvm.load_u8_p5: load_u8_p5 names pool 5, but this module has 2 pool(s), so per-pool functions "
     "_p0.._p1; link or build with --pools 6 or more"),
]
WRONG_SIGNATURE = next(wat for row, wat, _ in ROWS if row == "an ABI function with another signature")
HOST_SKIPS = {"a second memory"}  # TvmHost runs unlinked modules with memories of their own (no rule to share)


def refusal(action) -> str:
    with pytest.raises(LinkRefused) as refused:
        action()
    assert isinstance(refused.value, TvmError)
    return str(refused.value)


@pytest.mark.parametrize("row, wat, message", ROWS, ids=[r[0] for r in ROWS])
def test_python_entry_points_refuse_with_the_same_words(binaryen, tmp_path, capsys, row, wat, message):
    got = {"link guest": refusal(lambda: link(wat, target="guest", pools=POOLS, max_pages=16)),
           "link host": refusal(lambda: link(wat, target="host", pools=POOLS)),
           "link guest --inline": refusal(lambda: link(wat, target="guest", pools=POOLS, max_pages=16,
                                                       inline_runtime=True))}
    with TvmHost(pools=POOLS) as host:
        got["TvmHost.instantiate(inline=True)"] = refusal(lambda: host.instantiate(wat, inline=True))
        if row not in HOST_SKIPS:
            got["TvmHost.instantiate"] = refusal(lambda: host.instantiate(wat))
    g = GuestInstance(build_module(pools=POOLS, max_pages=16))
    try:
        got["GuestInstance.link"] = refusal(lambda: g.link(wat))
        got["GuestInstance.link (binary)"] = refusal(lambda: g.link(bytes(wasmtime.wat2wasm(wat))))
    finally:
        g.close()
    assert got == {entry: message for entry in got}
    user = tmp_path / "user.wasm"
    user.write_bytes(wasmtime.wat2wasm(wat))
    assert main(["link", str(user), "-o", str(tmp_path / "out.wasm"), "--pools", str(POOLS)]) == 1
    assert message in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("row, wat, start", GUEST_ROWS, ids=[r[0] for r in GUEST_ROWS])
def test_guest_side_entry_points_refuse_with_the_same_words(binaryen, row, wat, start):
    static = refusal(lambda: link(wat, target="guest", pools=POOLS, max_pages=16))
    g = GuestInstance(build_module(pools=POOLS, max_pages=16))
    try:
        assert refusal(lambda: g.link(wat)) == static
    finally:
        g.close()
    assert static.startswith(start)


PAGE = """<!doctype html>
<script type="module">
  import { instantiate, LinkRefused, TvmError } from "/tvm-guest.js";
  const report = { refusals: [] };
  try {
    const g = await instantiate("/guest.wasm");
    for (let n = 0; n < COUNT; n++) {
      try { await g.link(`/user-${n}.wasm`); report.refusals.push("linked"); }
      catch (error) {
        const typed = error instanceof LinkRefused && error instanceof TvmError && error.code === 9;
        report.refusals.push(`${typed ? "" : "untyped "}${error.name}: ${error.message}`);
      }
    }
    const own = await g.link("/own.wasm");  // its own memory, no guest pointers: served
    report.own = own.exports.peek();
    // a compiled module shows no import signatures: the engine's refusal comes out typed all the same
    const compiled = await WebAssembly.compile(await (await fetch("/wrong-signature.wasm")).arrayBuffer());
    try { await g.link(compiled); report.compiled = "linked"; }
    catch (error) { report.compiled = `${error instanceof LinkRefused ? "" : "untyped "}${error.name}`; }
  } catch (error) {
    report.error = String(error && error.stack ? error.stack : error);
  }
  await fetch("/result", { method: "POST", body: JSON.stringify(report) });
</script>
"""
OWN_MEMORY_TYPED_ONLY = """(module (import "tvm" "last_error" (func $e (result i32)))
  (memory (export "memory") 1) (data (i32.const 0) "\\07")
  (func (export "peek") (result i32) (i32.add (i32.load8_u (i32.const 0)) (call $e))))"""


def test_tvm_guest_js_link_refuses_with_the_same_words():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium binary found (Debian's chromium package; .ci/run installs it)")
    module = build_module(pools=POOLS, max_pages=BROWSER_MAX_PAGES, meta_max_pages=BROWSER_META_MAX_PAGES).wasm
    rows = [*ROWS, *GUEST_ROWS]
    expected = []
    g = GuestInstance(module)
    try:
        for _, wat, _ in rows:
            expected.append(f"LinkRefused: {refusal(lambda: g.link(wat))}")  # noqa: B023 - called at once
        assert g.call(g.link(OWN_MEMORY_TYPED_ONLY), "peek") == 7
    finally:
        g.close()
    files = {"/": ("text/html", PAGE.replace("COUNT", str(len(rows))).encode()),
             "/tvm-guest.js": ("text/javascript",
                               resources.files("tvm_wasm.guest").joinpath("js/tvm-guest.js").read_bytes()),
             "/guest.wasm": ("application/wasm", module),
             "/own.wasm": ("application/wasm", bytes(wasmtime.wat2wasm(OWN_MEMORY_TYPED_ONLY))),
             "/wrong-signature.wasm": ("application/wasm", bytes(wasmtime.wat2wasm(WRONG_SIGNATURE)))}
    for n, (_, wat, _) in enumerate(rows):
        files[f"/user-{n}.wasm"] = ("application/wasm", bytes(wasmtime.wat2wasm(wat)))
    report = run_in_chromium(chromium, files)
    assert "error" not in report, report["error"]
    assert report["refusals"] == expected, json.dumps(report, indent=1)
    assert report["own"] == 7
    assert report["compiled"] == "LinkRefused"


def test_a_64_bit_memory_is_refused_typed_on_every_python_entry_point(binaryen):
    """Not a bare wasmtime "incompatible import type": the runtime addresses a 32-bit guest memory."""
    wat = '(module (memory (export "memory") i64 1) (func (export "go") (result i32) i64.const 0 i32.load))'
    refusals = [refusal(lambda: link(wat, target="guest", pools=POOLS, max_pages=16))]
    with TvmHost(pools=POOLS) as host:
        refusals.append(refusal(lambda: host.instantiate(wat)))
        refusals.append(refusal(lambda: host.instantiate(wat, inline=True)))
    g = GuestInstance(build_module(pools=POOLS, max_pages=16))
    try:
        refusals.append(refusal(lambda: g.link(wat)))
    finally:
        g.close()
    assert all("the user memory must be an unshared 32-bit memory" in message for message in refusals), refusals
