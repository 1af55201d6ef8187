"""tvm-guest.js under Node: ``instantiate(source, {imports})`` and the user function in ``guard()``'s errors.

Node 20 (the development machine's) has no multi-memory, so these checks run tvm-guest.js's real
``instantiate`` and ``trapError`` on single-memory modules V8 compiles (a stand-in with the guest module's
ABI globals, a module named as the linker names a linked module's functions) and real V8 traps and stacks;
the linked multi-memory modules run in headless Chromium in ``tests/linker/test_guest_wasi_browser.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest
import wasmtime

from tvm_wasm import Handle, OutOfBounds, RegionKind
from tvm_wasm.abi.trap_cause import trap_cause_error
from tvm_wasm.guest import GuestInstance, build_module
from tvm_wasm.guest.module import ABI_VERSION, abi_fingerprint
from tvm_wasm.guest.module_imports import unsatisfied_message
from tvm_wasm.runtime.link_errors import LinkRefused

# What a linked WASI guest imports, plus the user's own function, memory and a tvm.* function; it carries
# the ABI globals tvm-guest.js checks, so with everything provided it becomes a TvmGuest.
IMPORTING_WAT = f"""(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "env" "report" (func $report (param i32)))
  (import "env" "table" (table 1 funcref))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (global (export "abi_version") i32 (i32.const {ABI_VERSION}))
  (global (export "abi_fingerprint") i32 (i32.const {abi_fingerprint() - (1 << 32) if abi_fingerprint() >= 1 << 31 else abi_fingerprint()}))
  (func (export "go") (param i32) (result i32)
    (call $report (local.get 0))
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 8))))"""

# A module's functions named as `tvm-wasm link --target guest` names them: the runtime's `tvm.*`.
NAMED_WAT = """(module
  (func $tvm.store_u32 (param i64 i32 i32) unreachable)
  (func $tvm.checked (param i64 i32 i32) local.get 0 local.get 1 local.get 2 call $tvm.store_u32)
  (func $scribble_records (export "scribble_records") (param i64)
    local.get 0 i32.const 4096 i32.const 7 call $tvm.checked)
  (func (export "nameless") (param i64) local.get 0 i32.const 4096 i32.const 7 call $tvm.checked)
  (func $plain (export "plain") unreachable))"""


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node binary (Debian's nodejs package)")
    return node


def run_node(tmp_path: Path, body: str, files: dict[str, bytes]) -> object:
    node = node_or_skip()
    (tmp_path / "tvm-guest.mjs").write_text(resources.files("tvm_wasm.guest").joinpath("js/tvm-guest.js").read_text())
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    script = tmp_path / "probe.mjs"
    script.write_text('import * as tvm from "./tvm-guest.mjs";\nimport { readFileSync } from "node:fs";\n'
                      'const read = (name) => readFileSync(new URL(name, import.meta.url));\n' + body)
    done = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_missing_imports_are_refused_before_instantiating_worded_as_guest_instance(tmp_path):
    wasm = bytes(wasmtime.wat2wasm(IMPORTING_WAT))
    found = run_node(tmp_path, """
const outcome = async (fn) => { try { await fn(); return ["ok"]; } catch (e) {
  return [e.name, e.message, e instanceof tvm.TvmError, e.code ?? null]; } };
const table = new WebAssembly.Table({ initial: 1, element: "anyfunc" });
const reported = [];
const wasi = { fd_write: () => 0, proc_exit: () => {} };
const full = { wasi_snapshot_preview1: wasi, env: { report: (v) => reported.push(v), table } };
const g = await tvm.instantiate(read("importing.wasm"), { imports: full });
console.log(JSON.stringify({
  none: await outcome(() => tvm.instantiate(read("importing.wasm"))),
  wasiOnly: await outcome(() => tvm.instantiate(read("importing.wasm"), { imports: { wasi_snapshot_preview1: wasi } })),
  wrongKind: await outcome(() => tvm.instantiate(read("importing.wasm"), { imports: { ...full, env: { report: 5, table } } })),
  badOption: await outcome(() => tvm.instantiate(read("importing.wasm"), { import: full })),
  served: [g instanceof tvm.TvmGuest, g.exports.go(41), reported],
}));
""", {"importing.wasm": wasm})
    every = [("wasi_snapshot_preview1", "fd_write", "function"), ("env", "report", "function"), ("env", "table", "table"),
             ("wasi_snapshot_preview1", "proc_exit", "function")]
    assert found["none"] == ["LinkRefused", unsatisfied_message(every, "tvm-guest.js"), True, 9]
    assert found["wasiOnly"] == ["LinkRefused", unsatisfied_message(every[1:3], "tvm-guest.js"), True, 9]
    assert found["wrongKind"][0] == "LinkRefused"
    assert found["wrongKind"][1].startswith("the module cannot be instantiated with the imports given: ")
    assert found["badOption"][:2] == ["TypeError", "unknown instantiate option import (imports)"]
    assert found["served"] == [True, 0, [41]]  # the imports reached the module
    # GuestInstance names the same imports in the same words; only the advice is in its own API
    with pytest.raises(LinkRefused) as refused:
        GuestInstance(wasm)
    prefix = str(refused.value).split("; ")[0]
    assert prefix == found["none"][1].split("; ")[0]
    assert str(refused.value) == unsatisfied_message(every, "GuestInstance")


def test_guard_names_the_user_function_from_the_stack(tmp_path):
    """A real V8 trap's stack through a module named as a linked one: the innermost frame not named ``tvm.*``,
    as ``abi.trap_cause.user_function`` reads wasmtime's backtrace; appended as GuestInstance appends it."""
    # a real trap cause, recorded by the module for an access past a region's end
    guest = GuestInstance(build_module(pools=1))
    region = guest.create_region(RegionKind.OBJECT_ARENA, 4096)
    with pytest.raises(OutOfBounds):
        guest.raw("store_u32", Handle(region, 1, 0).to_i64(), 4096, 7)
    cause = guest.trap_cause()

    def frames(*names: str) -> SimpleNamespace:
        return SimpleNamespace(frames=[SimpleNamespace(func_name=name) for name in names])

    expected = {
        "scribble_records": str(trap_cause_error(cause, frames("tvm.store_u32", "tvm.checked", "scribble_records"))),
        "nameless": str(trap_cause_error(cause, frames("tvm.store_u32", "tvm.checked", None))),
        "plain": str(trap_cause_error(cause, frames("plain"))),
    }
    assert "(in scribble_records) [" in expected["scribble_records"]
    assert "(in " not in expected["nameless"] and "(in " not in expected["plain"]
    found = run_node(tmp_path, f"""
const cause = {json.dumps(cause)};
const types = {{ trap_handle: "i64", trap_offset: "i64", trap_capacity: "i64" }};
const {{ instance }} = await WebAssembly.instantiate(read("named.wasm"));
const out = {{}};
for (const name of ["scribble_records", "nameless", "plain"]) {{
  const exports = {{}};
  for (const [global, value] of Object.entries(cause)) {{
    const type = types[global] ?? "i32";
    exports[global] = new WebAssembly.Global({{ value: type, mutable: true }}, type === "i64" ? BigInt(value) : value);
  }}
  let trap;
  try {{ instance.exports[name](1n); }} catch (error) {{ trap = error; }}
  const error = tvm.TvmGuest.prototype.trapError.call({{ exports }}, trap, cause.trap_seq - 1);
  out[name] = [error.name, error.message, trap.stack];
}}
console.log(JSON.stringify(out));
""", {"named.wasm": bytes(wasmtime.wat2wasm(NAMED_WAT))})
    for name, text in expected.items():
        assert found[name][:2] == ["OutOfBounds", text], found[name][2]
